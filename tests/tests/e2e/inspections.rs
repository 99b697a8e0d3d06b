//! Inspections end to end: a phone records one, its failed item raises an
//! incident the centre sees; the server applies the phone's rules to what
//! devices send and refuses what a hostile client makes up; another phone
//! of the grid receives the inspection with its photos.

use fieldgrid_core::*;
use fieldgrid_tests::{District, T0};
use serde_json::{Value, json};

use crate::helpers::*;

fn jpeg(seed: u8) -> NewPhoto {
    NewPhoto {
        source: PhotoSource::Bytes([vec![0xFF, 0xD8, 0xFF, 0xE0], vec![seed; 64]].concat()),
        taken_at_ms: None,
        location: None,
    }
}

pub(crate) fn gas(place: &str, detector: bool) -> NewInspection {
    let yes_no = |item: &str, v: bool| ItemAnswer {
        item: item.into(),
        answer: Answer::YesNo(v),
    };
    NewInspection {
        grid_id: "grid-a".into(),
        place_id: Some(place.into()),
        checklist: "gas_safety".into(),
        answers: vec![
            yes_no("detector_installed", detector),
            yes_no("nothing_on_pipes", true),
            yes_no("ventilation_ok", true),
            ItemAnswer {
                item: "hose_years".into(),
                answer: Answer::Number(2.0),
            },
        ],
        photos: vec![
            ItemPhoto {
                item: "meter_photo".into(),
                photo: jpeg(1),
            },
            ItemPhoto {
                item: "detector_installed".into(),
                photo: jpeg(2),
            },
        ],
        location: incident("grid-a", "gas_no_alarm", T0).location,
        notes: String::new(),
        occurred_at_ms: Some(T0 - 60_000),
    }
}

fn push(d: &District, token: &str, ops: Value) -> Value {
    push_raw(d, token, ops).swap_remove(0)
}

#[test]
fn an_inspection_reaches_the_centre_and_the_grid_s_other_phone() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let b = d.device("b", "wa2", &d.server.url());
    let h = household(&a.store, "grid-a");
    let unit = h.unit_id.clone().unwrap();
    let report = a.store.record_inspection(&gas(&unit, false)).unwrap();
    let raised = &report.raised[0];
    a.sync().unwrap();
    assert_eq!(
        a.store.get_inspection(&report.inspection.id).unwrap().meta.sync,
        SyncStatus::OnServer
    );

    let stored = server_record(&d, &report.inspection.id);
    assert_eq!(
        stored.fields["inspector"],
        server_record(&d, &raised.id).fields["reporter"]
    );
    assert_eq!(stored.fields["answers"]["detector_installed"], false);
    assert_eq!(stored.fields["raised_incidents"], json!([raised.id]));
    let centre = token(&d, "centre");
    let (_, list) = call(&d, &centre, "GET", "/v1/centre/incidents?category=gas_no_alarm", None);
    let ids: Vec<&str> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, [raised.id.as_str()], "the hazard is in the centre's queue");

    b.sync().unwrap();
    let seen = b.store.get_inspection(&report.inspection.id).unwrap();
    assert_eq!(
        (seen.answers.clone(), seen.photos.len()),
        (report.inspection.answers.clone(), 2)
    );
    assert_eq!(seen.raised_incidents, report.inspection.raised_incidents);
    let sent = a.store.get_inspection(&report.inspection.id).unwrap();
    assert!(
        sent.photos.iter().all(|p| p.uploaded),
        "the server confirmed every photo's bytes"
    );
}

/// What the phone refuses, the server refuses too: a hostile client's
/// inspection is checked item by item against the catalogue in force, and
/// its raised incidents are the ones its failed items report.
#[test]
fn the_server_applies_the_checklist_rules_to_what_devices_send() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let h = household(&a.store, "grid-a");
    let report = |store: &Store, grid: &str, category: &str, seed: u8| {
        store
            .report_incident(&incident(grid, category, T0 - 60_000), &[jpeg(seed)])
            .unwrap()
    };
    let raised = report(&a.store, "grid-a", "gas_no_alarm", 3);
    let raised_too = report(&a.store, "grid-a", "gas_no_alarm", 8);
    let pipes = report(&a.store, "grid-a", "gas_pipe_objects", 5);
    let hornets = report(&a.store, "grid-a", "hornets_nest", 6);
    let draft = a
        .store
        .create_incident_draft(&incident("grid-a", "gas_no_alarm", T0 - 60_000))
        .unwrap();
    a.sync().unwrap();
    let other_grid = {
        let b = d.device("b", "wb", &d.server.url());
        let x = report(&b.store, "grid-b", "gas_no_alarm", 4);
        b.sync().unwrap();
        x.id
    };
    let colleague = {
        let c = d.device("c", "wa2", &d.server.url());
        let x = report(&c.store, "grid-a", "gas_no_alarm", 7);
        c.sync().unwrap();
        x.id
    };
    let worker = token(&d, "wa1");
    let good = json!({"grid_id": "grid-a", "place_id": h.unit_id, "checklist": "gas_safety",
        "answers": {"detector_installed": false, "nothing_on_pipes": true, "ventilation_ok": true},
        "item_photos": {}, "raised_incidents": [raised.id], "notes": "",
        "location": {"latitude": 37.45, "longitude": 118.5, "accuracy_m": 5.0, "crs": "wgs84"},
        "occurred_at_ms": T0 - 60_000});
    let op = |patch: &Value| {
        json!([{"op_id": new_id(), "entity": "inspection", "entity_id": new_id(), "kind": "create", "patch": patch,
                "base_version": null, "created_at_ms": T0}])
    };
    let with = |path: &[&str], v: Value| {
        let mut p = good.clone();
        let mut at = &mut p;
        for k in &path[..path.len() - 1] {
            at = &mut at[*k];
        }
        at[path[path.len() - 1]] = v;
        p
    };
    let mut two_on_one = with(&["raised_incidents"], json!([raised.id, raised.id]));
    two_on_one["answers"]["nothing_on_pipes"] = json!(false);
    let cases = [
        (
            with(&["checklist"], json!("fire_drill")),
            "checklist",
            "a checklist the catalogue lacks",
        ),
        (
            with(&["answers", "detector_installed"], json!("no")),
            "answers.detector_installed",
            "a yes/no in text",
        ),
        (
            with(&["answers", "张三 13812345678"], json!(true)),
            "answers",
            "an item the checklist lacks (not echoed)",
        ),
        (
            with(&["answers", "hose_years"], json!(99)),
            "answers.hose_years",
            "a number out of range",
        ),
        (
            with(&["raised_incidents"], json!([])),
            "raised_incidents",
            "a failed item that raised nothing",
        ),
        (
            with(&["raised_incidents"], json!([other_grid])),
            "raised_incidents",
            "another grid's incident",
        ),
        (
            with(&["raised_incidents"], json!([new_id()])),
            "raised_incidents",
            "an incident the server lacks",
        ),
        (
            with(&["raised_incidents"], json!([hornets.id])),
            "raised_incidents",
            "an incident of another category",
        ),
        (
            with(&["raised_incidents"], json!([colleague])),
            "raised_incidents",
            "a colleague's report",
        ),
        (
            with(&["raised_incidents"], json!([draft.id])),
            "raised_incidents",
            "a draft the centre never sees",
        ),
        (two_on_one, "raised_incidents", "one incident for two hazards"),
        (
            with(&["inspector"], json!("acct-centre")),
            "inspector",
            "the server's field",
        ),
        (with(&["location"], Value::Null), "location", "no GPS"),
    ];
    for (patch, field, why) in cases {
        let r = push(&d, &worker, op(&patch));
        assert_eq!(
            (r["outcome"].as_str(), r["field"].as_str()),
            (Some("rejected"), Some(field)),
            "{why}: {r}"
        );
        assert!(
            !r.to_string().contains("13812345678"),
            "nothing the device sent is repeated"
        );
    }
    let id = new_id();
    let first = json!([{"op_id": new_id(), "entity": "inspection", "entity_id": id, "kind": "create",
        "patch": good, "base_version": null, "created_at_ms": T0}]);
    let r = push(&d, &worker, first);
    assert_eq!(r["outcome"], "applied", "{r}");
    assert_eq!(
        server_record(&d, &raised.id).fields["inspection_id"],
        json!(id),
        "the incident names it"
    );
    let r = push(&d, &worker, op(&good));
    assert_eq!(
        (r["outcome"].as_str(), r["field"].as_str()),
        (Some("rejected"), Some("raised_incidents")),
        "an incident another inspection raised: {r}"
    );
    let mut two = good.clone();
    two["answers"]["nothing_on_pipes"] = json!(false);
    two["raised_incidents"] = json!([pipes.id, raised_too.id]);
    assert_eq!(
        push(&d, &worker, op(&two))["outcome"],
        "applied",
        "two hazards, two incidents, any order"
    );
    // Inspections do not change once recorded.
    let r = push(
        &d,
        &worker,
        json!([{"op_id": new_id(), "entity": "inspection", "entity_id": id, "kind": "update",
        "patch": {"notes": "改过"}, "base_version": 1, "created_at_ms": T0}]),
    );
    assert_eq!(r["outcome"], "rejected", "{r}");
    // A photo owned by an inspection is one it lists under an item.
    let r = push(
        &d,
        &worker,
        json!([{"op_id": new_id(), "entity": "photo", "entity_id": new_id(), "kind": "create",
        "patch": {"owner": {"kind": "inspection", "id": id}, "sha256": "ab".repeat(32), "size": 10, "mime": "image/jpeg"},
        "base_version": null, "created_at_ms": T0}]),
    );
    assert_eq!(
        (r["outcome"].as_str(), r["field"].as_str()),
        (Some("rejected"), Some("owner")),
        "{r}"
    );
}

/// A record another client sent with its optional fields left out (no
/// notes, nothing raised, no residents served) reaches every phone of the
/// grid: the server stores it whole, and a phone reads what it gets.
#[test]
fn records_sent_without_their_optional_fields_never_stop_a_grid_s_pulls() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let worker = token(&d, "wa1");
    let inspection = new_id();
    let log = new_id();
    let incident_id = new_id();
    let ops = json!([
        {"op_id": new_id(), "entity": "inspection", "entity_id": inspection, "kind": "create", "base_version": null,
         "created_at_ms": T0, "patch": {"grid_id": "grid-a", "checklist": "gas_safety",
            "answers": {"detector_installed": true, "nothing_on_pipes": true, "ventilation_ok": true},
            "location": {"latitude": 37.45, "longitude": 118.5}, "occurred_at_ms": T0 - 60_000}},
        {"op_id": new_id(), "entity": "service_log", "entity_id": log, "kind": "create", "base_version": null,
         "created_at_ms": T0, "patch": {"grid_id": "grid-a", "kind": "visit", "occurred_at_ms": T0 - 60_000}},
        {"op_id": new_id(), "entity": "incident", "entity_id": incident_id, "kind": "create", "base_version": null,
         "created_at_ms": T0, "patch": {"grid_id": "grid-a", "category": "hornets_nest",
            "location": {"latitude": 37.45, "longitude": 118.5}, "occurred_at_ms": T0 - 60_000}}
    ]);
    let (status, body) = call(
        &d,
        &worker,
        "POST",
        "/v1/sync/push",
        Some(json!({"device_id": "other", "operations": ops})),
    );
    assert_eq!(status, 200, "{body}");
    assert!(
        body["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "applied"),
        "{body}"
    );
    let stored = server_record(&d, &inspection);
    assert_eq!(
        (
            stored.fields["notes"].clone(),
            stored.fields["raised_incidents"].clone()
        ),
        (json!(""), json!([]))
    );
    a.sync().unwrap();
    assert!(a.store.get_inspection(&inspection).unwrap().raised_incidents.is_empty());
    assert!(a.store.get_service_log(&log).unwrap().resident_ids.is_empty());
    assert!(a.store.get_incident(&incident_id).unwrap().title.is_empty());
}

/// A checklist phones may be filling in offline does not change under them:
/// a changed checklist is published under a new code.
#[test]
fn a_published_checklist_changes_only_under_a_new_code() {
    let d = District::new();
    let mut next = Catalogue::builtin();
    next.version = 2;
    next.checklists[0].items[3].max = Some(30.0);
    let err = d.server.admin().publish_catalogue(&next, T0).unwrap_err();
    assert!(err.contains("gas_safety") && err.contains("new code"), "{err}");
    next.checklists[0].code = "gas_safety_2027".into();
    d.server.admin().publish_catalogue(&next, T0).unwrap();
    assert_eq!(
        d.server.admin().catalogue().unwrap().checklists[0].code,
        "gas_safety_2027"
    );
}
