//! `fieldgrid device ...` run as a QA engineer runs it: real processes
//! against a real server on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

use fieldgrid_core::Catalogue;
use fieldgrid_protocol::GridInfo;
use fieldgrid_server::{Config, RunningServer, auth};

const PASSWORD: &str = "qa password 2026";

fn fieldgrid(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_fieldgrid"))
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn server(dir: &std::path::Path) -> RunningServer {
    let server = RunningServer::start(Config::new(dir.join("server")), "127.0.0.1:0".parse().unwrap()).unwrap();
    let admin = server.admin();
    admin
        .add_grid(&GridInfo {
            id: "g1".into(),
            code: "370502001".into(),
            name: "一网格".into(),
            community: "汇泉社区".into(),
            sub_district: "黄河路街道".into(),
        })
        .unwrap();
    admin
        .add_worker("qa", PASSWORD, &["g1".to_owned()], &auth::cheap_hasher())
        .unwrap();
    server
}

fn id_for(date: &str, seq: &str) -> String {
    let mut s = format!("370502{date}{seq}");
    s.push(fieldgrid_core::validate::id_number::check_character(s.as_bytes()) as char);
    s
}

#[test]
fn csv_import_takes_good_rows_and_reports_each_bad_one_by_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let store = dir.path().join("qa.db");
    let store = store.to_str().unwrap();
    let key = "ab".repeat(32);
    assert!(fieldgrid(&["device", "init", "--store", store, "--key-hex", &key]).0);
    let (ok, out, err) = fieldgrid(&[
        "device",
        "login",
        "--store",
        store,
        "--key-hex",
        &key,
        "--server",
        &server.url(),
        "--username",
        "qa",
        "--password",
        PASSWORD,
    ]);
    assert!(ok, "{out}{err}");

    // A valid number with its check character changed.
    let mut bad_check = id_for("19800101", "021");
    let last = bad_check.pop().unwrap();
    bad_check.push(if last == '0' { '1' } else { '0' });
    let csv = format!(
        "name,sex,id_number,phone,residence,care_tags,notes\n\
         张伟,男,{},13800000001,户籍,elderly_living_alone,\n\
         王芳,女,{},14000000002,户籍,,\n\
         李娜,女,{},14000000003,实有,disabled;subsistence_allowance,\"住3楼, 行动不便\"\n\
         赵敏,女,{},1380000,流动,,\n\
         刘洋,未知,{},,户籍,,\n\
         陈静,女,{},,户籍,vip,\n\
         周桂英,女,{},0546-8123456,户籍,elderly_living_alone,\n",
        id_for("19450101", "011"),
        bad_check,
        id_for("19800101", "022"),
        id_for("19900101", "042"),
        id_for("19920202", "051"),
        id_for("19930303", "062"),
        id_for("19380505", "024"),
    );
    let file = dir.path().join("residents.csv");
    std::fs::write(&file, csv).unwrap();
    let (ok, out, err) = fieldgrid(&[
        "device",
        "import-residents",
        "--store",
        store,
        "--key-hex",
        &key,
        "--grid",
        "g1",
        file.to_str().unwrap(),
    ]);
    assert!(ok, "{out}{err}");
    for expected in [
        "line 3: id_number has a wrong check character",
        "line 5: phone has an invalid format",
        "line 6: sex has an invalid format (男/女 or male/female)",
        "line 7: care_tags has an invalid format (separated by ';': elderly_living_alone,",
        "line 4: phone is a mobile number in a segment no operator has: saved; check it",
        "imported 3 residents, refused 4 rows",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
    assert!(!out.contains(&bad_check), "errors never echo the value");
    assert!(!out.contains("line 3: phone"), "a refused line warns of nothing");
    let (ok, exported, _) = fieldgrid(&["device", "export", "residents", "--store", store, "--key-hex", &key]);
    assert!(ok);
    assert_eq!(exported.lines().count(), 1 + 3, "{exported}");
    assert!(exported.contains("住3楼, 行动不便"));
    let (_, listed, _) = fieldgrid(&[
        "device",
        "list",
        "residents",
        "--store",
        store,
        "--key-hex",
        &key,
        "--care-tag",
        "elderly_living_alone",
    ]);
    assert!(listed.contains("2 shown"), "{listed}");
    assert!(!listed.contains("张伟"), "lists are masked: {listed}");
    // A wrong key is refused clearly, and nothing changes.
    let (ok, _, err) = fieldgrid(&["device", "status", "--store", store, "--key-hex", &"cd".repeat(32)]);
    assert!(!ok);
    assert!(err.contains("cannot be opened with this key"), "{err}");
}

#[test]
fn status_after_a_refused_operation_shows_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    // The district retired a category the phone still knows.
    let mut newer = Catalogue::builtin();
    newer.version = 2;
    newer.categories.retain(|c| c.code != "neighbour_dispute");
    server.admin().publish_catalogue(&newer, 0).unwrap();
    let store = dir.path().join("qa.db");
    let store = store.to_str().unwrap();
    assert!(
        fieldgrid(&[
            "device",
            "login",
            "--store",
            store,
            "--server",
            &server.url(),
            "--username",
            "qa",
            "--password",
            PASSWORD
        ])
        .0
    );
    let (ok, out, err) = fieldgrid(&[
        "device",
        "report-incident",
        "--store",
        store,
        "--grid",
        "g1",
        "--category",
        "neighbour_dispute",
        "--description",
        "楼上漏水引发纠纷",
    ]);
    assert!(ok, "{out}{err}");
    let (ok, out, err) = fieldgrid(&["device", "sync", "--store", store, "--server", &server.url()]);
    assert!(ok, "{out}{err}");
    // The incident, and its "reported" event whose incident the server lacks.
    assert!(out.contains("refused 2"), "{out}");
    let (ok, status, _) = fieldgrid(&["device", "status", "--store", store]);
    assert!(ok);
    assert!(status.contains("outbox: 0 waiting, 0 sending, 2 refused"), "{status}");
    assert!(status.contains("refused: incident"), "{status}");
    assert!(status.contains("[unknown_category, field category]"), "{status}");
    assert!(status.contains("last sync: "), "{status}");
}

#[test]
fn a_draft_gets_a_photo_and_is_submitted_only_when_complete() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("qa.db");
    let store = store.to_str().unwrap();
    let server = server(dir.path());
    assert!(
        fieldgrid(&[
            "device",
            "login",
            "--store",
            store,
            "--server",
            &server.url(),
            "--username",
            "qa",
            "--password",
            PASSWORD
        ])
        .0
    );
    let (ok, out, _) = fieldgrid(&[
        "device",
        "draft-incident",
        "--store",
        store,
        "--grid",
        "g1",
        "--category",
        "gas_no_alarm",
    ]);
    assert!(ok);
    let id = out.trim().strip_prefix("draft ").unwrap().to_owned();
    let (ok, _, err) = fieldgrid(&["device", "submit", "--store", store, "--incident", &id]);
    assert!(!ok);
    assert!(err.contains("photos is required"), "{err}");
    let photo = dir.path().join("alarm.jpg");
    std::fs::write(&photo, [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3, 4]).unwrap();
    let (ok, out, err) = fieldgrid(&[
        "device",
        "add-photo",
        "--store",
        store,
        "--incident",
        &id,
        photo.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(out.contains("image/jpeg"), "{out}");
    let (ok, out, err) = fieldgrid(&["device", "submit", "--store", store, "--incident", &id]);
    assert!(ok, "{err}");
    assert!(out.contains("OnlyOnDevice"), "{out}");
    let (ok, out, _) = fieldgrid(&["device", "sync", "--store", store, "--server", &server.url()]);
    assert!(ok);
    assert!(out.contains("confirmed 3, refused 0, photos 1"), "{out}");
}

#[test]
fn an_inspection_from_the_command_line_raises_its_incident_and_syncs() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let store = dir.path().join("qa.db");
    let store = store.to_str().unwrap();
    let url = server.url();
    assert!(fieldgrid(&["device", "init", "--store", store]).0);
    let (ok, _, err) = fieldgrid(&[
        "device",
        "login",
        "--store",
        store,
        "--server",
        &url,
        "--username",
        "qa",
        "--password",
        PASSWORD,
    ]);
    assert!(ok, "{err}");
    let (ok, out, _) = fieldgrid(&["device", "checklists", "--store", store]);
    assert!(
        ok && out.contains("gas_safety") && out.contains("detector_installed"),
        "{out}"
    );
    let photo = dir.path().join("detector.jpg");
    std::fs::write(&photo, [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[7; 64]].concat()).unwrap();
    let photo_arg = format!("detector_installed={}", photo.display());
    let base = [
        "device",
        "inspect",
        "--store",
        store,
        "--grid",
        "g1",
        "--checklist",
        "gas_safety",
        "--lat",
        "37.46",
        "--lon",
        "118.49",
        "--answer",
        "detector_installed=no",
        "--answer",
        "nothing_on_pipes=yes",
        "--answer",
        "ventilation_ok=yes",
    ];
    let (ok, _, err) = fieldgrid(&[&base[..], &["--answer", "hose_years=80"]].concat());
    assert!(!ok && err.contains("answers.hose_years"), "{err}");
    let (ok, out, err) = fieldgrid(&[&base[..], &["--answer", "hose_years=3", "--photo", &photo_arg]].concat());
    assert!(ok, "{err}");
    assert!(
        out.contains("1 incidents raised") && out.contains("(gas_no_alarm)"),
        "{out}"
    );
    let (ok, _, err) = fieldgrid(&["device", "sync", "--store", store, "--server", &url]);
    assert!(ok, "{err}");
    assert_eq!(server.admin().records_of("inspection", None).unwrap().len(), 1);
}

#[test]
fn the_districts_fields_are_listed_and_set_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let server = server(dir.path());
    let mut catalogue = fieldgrid_core::Catalogue::builtin();
    catalogue.version = 2;
    catalogue.field_defs = fieldgrid_core::catalogue::demo_field_defs();
    server.admin().publish_catalogue(&catalogue, 0).unwrap();
    let store = dir.path().join("qa.db");
    let store = store.to_str().unwrap();
    let url = server.url();
    let login = [
        "device",
        "login",
        "--store",
        store,
        "--server",
        &url,
        "--username",
        "qa",
        "--password",
        PASSWORD,
    ];
    assert!(fieldgrid(&login).0);
    assert!(fieldgrid(&["device", "sync", "--store", store, "--server", &url]).0);
    let (ok, out, _) = fieldgrid(&["device", "fields", "--store", store]);
    assert!(
        ok && out.contains("gas_supplier") && out.contains("people_affected"),
        "{out}"
    );
    let (ok, out, err) = fieldgrid(&[
        "device",
        "draft-incident",
        "--store",
        store,
        "--grid",
        "g1",
        "--category",
        "neighbour_dispute",
        "--description",
        "楼上漏水",
    ]);
    assert!(ok, "{err}");
    let id = out.trim().trim_start_matches("draft ").to_owned();
    let set = |value: &str| {
        fieldgrid(&[
            "device",
            "set-fields",
            "--store",
            store,
            "--kind",
            "incident",
            "--id",
            &id,
            "--value",
            value,
        ])
    };
    let (ok, _, err) = set("people_affected=-5");
    assert!(!ok && err.contains("extra.people_affected"), "{err}");
    let (ok, _, err) = set("people_affected=many");
    assert!(!ok && err.contains("a number"), "{err}");
    let (ok, out, err) = set("people_affected=6");
    assert!(ok && out.contains("1 of the district's fields"), "{out}{err}");
    assert!(fieldgrid(&["device", "submit", "--store", store, "--incident", &id]).0);
    assert!(fieldgrid(&["device", "sync", "--store", store, "--server", &url]).0);
    let stored = server.admin().records_of("incident", None).unwrap();
    assert_eq!(stored[0].fields["extra"], serde_json::json!({"people_affected": 6}));
    // A spreadsheet's own columns go in and come out again.
    let csv = dir.path().join("residents.csv");
    std::fs::write(
        &csv,
        "name,sex,extra.monthly_allowance,extra.disability_grade\n陈芳,女,1200,二级\n",
    )
    .unwrap();
    let (ok, _, err) = fieldgrid(&[
        "device",
        "import-residents",
        "--store",
        store,
        "--grid",
        "g1",
        csv.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let (ok, out, err) = fieldgrid(&["device", "export", "--store", store, "residents"]);
    assert!(ok, "{err}");
    assert!(
        out.lines()
            .next()
            .unwrap()
            .ends_with("extra.disability_grade,extra.monthly_allowance")
            && out.contains(",二级,1200"),
        "{out}"
    );
    // Reported in one step, with the fields' values.
    let (ok, out, err) = fieldgrid(&[
        "device",
        "report-incident",
        "--store",
        store,
        "--grid",
        "g1",
        "--category",
        "resident_request",
        "--description",
        "求助",
        "--value",
        "people_affected=3",
    ]);
    assert!(ok, "{out}{err}");
}
