//! Stored means readable (SYNC.md invariant 13, issue 21 item 1): the
//! server stores a record only in a shape every phone reads; a phone that
//! still meets one it cannot read (stored by an older server) sets it aside,
//! reports it, and applies the rest; district IT repairs what is stored.
//! Real server on loopback, real encrypted phone stores, both engines.

use fieldgrid_core::*;
use fieldgrid_tests::{District, PASSWORD, T0};
use serde_json::{Value, json};

use crate::helpers::*;

fn push(d: &District, token: &str, ops: Vec<Value>) -> Vec<Value> {
    push_raw(d, token, Value::Array(ops))
}

fn op(entity: &str, id: &str, patch: Value) -> Value {
    json!({"op_id": new_id(), "entity": entity, "entity_id": id, "kind": "create", "patch": patch,
           "base_version": null, "created_at_ms": T0})
}

/// A draft incident of grid-a pushed raw, then its `reported` event
/// without a note: what stopped every phone of the grid before.
fn incident_and_bare_event(d: &District, token: &str) -> (String, String) {
    let (incident, event) = (new_id(), new_id());
    let receipts = push(
        d,
        token,
        vec![
            op(
                "incident",
                &incident,
                json!({"grid_id": "grid-a", "category": "hornets_nest", "occurred_at_ms": T0 - 60_000,
                       "location": {"latitude": 37.45, "longitude": 118.5, "accuracy_m": 5.0, "crs": "wgs84"}}),
            ),
            op(
                "incident_event",
                &event,
                json!({"incident_id": incident, "kind": "reported"}),
            ),
        ],
    );
    for r in &receipts {
        assert_eq!(r["outcome"], "applied", "{r}");
    }
    (incident, event)
}

/// Rewrites a stored record's fields behind the server's back, as an
/// older server would have stored them (same version and sequence).
fn store_raw(d: &District, id: &str, fields: &Value) {
    let text = fields.to_string().replace('\'', "''");
    match &d.database {
        Some(url) => {
            fieldgrid_tests::postgres_execute(url, &format!("UPDATE records SET fields = '{text}' WHERE id = '{id}'"))
        }
        None => {
            let conn = rusqlite::Connection::open(d.dir.path().join("server").join("server.db")).unwrap();
            conn.execute("UPDATE records SET fields = ?1 WHERE id = ?2", [&text, id])
                .unwrap();
        }
    }
}

fn department_account(d: &District) {
    d.server
        .admin()
        .add_department_account("gas", PASSWORD, "dept-gas")
        .unwrap();
}

#[test]
fn an_event_pushed_without_a_note_is_stored_whole_and_every_phone_of_the_grid_reads_it() {
    let d = District::new();
    let hostile = token(&d, "wa1");
    let (incident, event) = incident_and_bare_event(&d, &hostile);
    let stored = server_record(&d, &event);
    assert_eq!(stored.fields["note"], "", "the note is stored, empty");
    for (name, user) in [("fresh", "wa2"), ("other", "wa1")] {
        let phone = d.device(name, user, &d.server.url());
        let report = phone.sync().expect("the grid's phones keep syncing");
        assert_eq!(report.set_aside, 0);
        let timeline = phone.store.incident_timeline(&incident).unwrap();
        assert_eq!(timeline.len(), 1);
        assert_eq!(timeline[0].note.as_str(), "");
        assert_eq!(
            phone.store.get_incident(&incident).unwrap().status,
            IncidentStatus::Reported
        );
    }
}

/// Every record the server writes for a device's operation reads in its
/// wire shape: one that would not is refused, naming the field, and
/// changes nothing.
#[test]
fn a_record_phones_could_not_read_is_refused_and_nothing_is_stored() {
    let d = District::new();
    let hostile = token(&d, "wa1");
    // A photo whose owner names no kind a phone knows cannot be stored.
    let id = new_id();
    let receipts = push(
        &d,
        &hostile,
        vec![op(
            "photo",
            &id,
            json!({"owner": {"kind": "resident", "id": new_id()}, "sha256": "a".repeat(64), "size": 10,
                   "mime": "image/jpeg"}),
        )],
    );
    assert_eq!(receipts[0]["outcome"], "rejected", "{}", receipts[0]);
    assert!(d.server.admin().record(&id).unwrap().is_none());
}

#[test]
fn a_record_a_phone_cannot_read_is_set_aside_reported_seen_by_the_centre_and_repaired() {
    let d = District::new();
    let worker = d.device("worker", "wa1", &d.server.url());
    let photo = NewPhoto {
        source: PhotoSource::Bytes(vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]),
        taken_at_ms: None,
        location: None,
    };
    let reported = worker
        .store
        .report_incident(&incident("grid-a", "hornets_nest", T0 - 60_000), &[photo])
        .unwrap();
    let note = worker
        .store
        .add_incident_event(
            &reported.id,
            &NewIncidentEvent {
                kind: EventKind::Note,
                note: "蜂窝已扩大".into(),
                photos: vec![],
            },
        )
        .unwrap();
    worker.sync().unwrap();
    // As an older server stored it: no note, and a kind no phone knows on
    // another record.
    let mut bare = server_record(&d, &note.id).fields;
    bare.remove("note");
    store_raw(&d, &note.id, &Value::Object(bare));
    let household = household(&worker.store, "grid-a");
    worker.sync().unwrap();
    let mut odd = server_record(&d, &household.id).fields;
    odd.insert("room".into(), json!({"not": "a room"}));
    store_raw(&d, &household.id, &Value::Object(odd));

    // A new phone of the grid: the pull finishes, the rest is applied, the
    // two records are set aside and reported.
    let phone = d.device("phone", "wa2", &d.server.url());
    let report = phone.sync().expect("one bad record never stops a pull");
    assert_eq!(report.set_aside, 2);
    assert_eq!(phone.store.get_incident(&reported.id).unwrap().id, reported.id);
    assert_eq!(
        phone.store.incident_timeline(&reported.id).unwrap().len(),
        1,
        "the reported event"
    );
    let aside = phone.store.set_aside().unwrap();
    let mut found: Vec<(String, String, Option<String>, bool)> = aside
        .iter()
        .map(|a| (a.entity.clone(), a.code.clone(), a.field.clone(), a.reported))
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("household".into(), "unreadable".into(), Some("room".into()), true),
            ("incident_event".into(), "unreadable".into(), Some("note".into()), true),
        ]
    );
    // A second sync: nothing new, nothing reported twice, nothing stuck.
    assert_eq!(phone.sync().unwrap().set_aside, 0);
    assert_eq!(phone.store.set_aside().unwrap().len(), 2);

    // The centre sees them, once per record, with the reporting devices.
    let centre = token(&d, "centre");
    let (status, problems) = call(&d, &centre, "GET", "/v1/centre/problems", None);
    assert_eq!(status, 200, "{problems}");
    let problems = problems.as_array().unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    let event_problem = problems.iter().find(|p| p["entity_id"] == note.id.as_str()).unwrap();
    assert_eq!(event_problem["devices"], 1);
    assert_eq!(event_problem["field"], "note");
    assert_eq!(event_problem["current_version"], event_problem["version"]);
    // Not for workers or departments.
    department_account(&d);
    for user in ["wa1", "gas"] {
        let (status, _) = call(&d, &token(&d, user), "GET", "/v1/centre/problems", None);
        assert_eq!(status, 403, "{user}");
    }

    // District IT repairs: a dry run changes nothing; the repair completes
    // the event as a new version and lists the household it cannot fix.
    let admin = d.server.admin();
    let dry = admin.repair_records(T0, true).unwrap();
    assert_eq!(dry.repaired, std::slice::from_ref(&note.id));
    assert_eq!(server_record(&d, &note.id).version, 1);
    let repair = admin.repair_records(T0, false).unwrap();
    assert_eq!(repair.repaired, std::slice::from_ref(&note.id));
    assert_eq!(
        repair.unreadable,
        [("household".to_owned(), household.id.clone(), "room".to_owned())]
    );
    let repaired = server_record(&d, &note.id);
    assert_eq!((repaired.version, repaired.fields["note"].clone()), (2, json!("")));
    assert!(
        admin.repair_records(T0, false).unwrap().repaired.is_empty(),
        "a second repair finds nothing"
    );

    // The phone pulls the repaired version, reads it, and it leaves the list.
    phone.sync().unwrap();
    assert_eq!(phone.store.incident_timeline(&reported.id).unwrap().len(), 2);
    let aside = phone.store.set_aside().unwrap();
    assert_eq!(aside.len(), 1);
    assert_eq!(aside[0].entity_id, household.id);
    let (_, problems) = call(&d, &centre, "GET", "/v1/centre/problems", None);
    let event_problem = problems
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["entity_id"] == note.id.as_str())
        .unwrap()
        .clone();
    assert_eq!(event_problem["current_version"], 2, "the centre sees it repaired");
}

/// A device reports only records it may read, at versions the server
/// stored: the centre's list cannot be filled with made-up or other grids'
/// records, and a bad report is refused whole.
#[test]
fn problem_reports_name_only_records_the_device_may_read() {
    let d = District::new();
    let a = token(&d, "wa1");
    let b = token(&d, "wb");
    let (incident, event) = incident_and_bare_event(&d, &a);
    let report = |token: &str, problems: Value| {
        call(
            &d,
            token,
            "POST",
            "/v1/sync/problems",
            Some(json!({ "problems": problems })),
        )
    };
    let problem = |id: &str, entity: &str, version: i64| json!({"entity": entity, "entity_id": id, "version": version, "code": "unreadable", "field": "note"});
    // Another grid's worker, a made-up id, a version never stored, the
    // wrong entity: nothing kept.
    assert_eq!(report(&b, json!([problem(&event, "incident_event", 1)])).1["kept"], 0);
    assert_eq!(
        report(&a, json!([problem(&new_id(), "incident_event", 1)])).1["kept"],
        0
    );
    assert_eq!(report(&a, json!([problem(&event, "incident_event", 9)])).1["kept"], 0);
    assert_eq!(report(&a, json!([problem(&event, "resident", 1)])).1["kept"], 0);
    // Malformed: refused whole, naming no value.
    for bad in [
        json!([{"entity": "incident_event", "entity_id": "x", "version": 1, "code": "unreadable"}]),
        json!([{"entity": "incident_event", "entity_id": event, "version": 1, "code": "made_up"}]),
        json!([{"entity": "incident_event", "entity_id": event, "version": 1, "code": "unreadable",
                "field": "370502198001011589 张三"}]),
        json!([{"entity": "incident_event", "entity_id": event, "version": 9_007_199_254_740_993i64,
                "code": "unreadable"}]),
    ] {
        let (status, body) = report(&a, bad);
        assert_eq!(status, 400, "{body}");
        assert!(!body.to_string().contains("370502"), "{body}");
    }
    let many: Vec<Value> = (0..101).map(|_| problem(&event, "incident_event", 1)).collect();
    assert_eq!(report(&a, Value::Array(many)).0, 413);
    // Not for the centre's roles.
    assert_eq!(report(&token(&d, "centre"), json!([])).0, 403);
    // The worker's own record, reported twice: kept once.
    assert_eq!(report(&a, json!([problem(&incident, "incident", 1)])).1["kept"], 1);
    assert_eq!(report(&a, json!([problem(&incident, "incident", 1)])).1["kept"], 1);
    let (_, problems) = call(&d, &token(&d, "centre"), "GET", "/v1/centre/problems", None);
    assert_eq!(problems.as_array().unwrap().len(), 1, "{problems}");
}

/// Whether an optional field is left out, sent as null, or given.
#[derive(Clone, Copy, Debug)]
enum Opt {
    Absent,
    Null,
    Given,
}

/// The fields of one record, built from the case's choices.
struct Fields<'b, 'a> {
    map: serde_json::Map<String, Value>,
    choices: &'b mut std::slice::Iter<'a, Opt>,
}

impl<'b, 'a> Fields<'b, 'a> {
    fn new(choices: &'b mut std::slice::Iter<'a, Opt>, required: Value) -> Fields<'b, 'a> {
        Fields {
            map: required.as_object().cloned().unwrap(),
            choices,
        }
    }
    /// An optional field: the next choice says whether and how it is sent.
    fn opt(mut self, key: &str, value: Value) -> Self {
        match self.choices.next().copied().unwrap_or(Opt::Given) {
            Opt::Absent => {}
            Opt::Null => {
                self.map.insert(key.into(), Value::Null);
            }
            Opt::Given => {
                self.map.insert(key.into(), value);
            }
        }
        self
    }
    fn done(self) -> Value {
        Value::Object(self.map)
    }
}

/// Property (SYNC.md invariant 13): every record a device may send, of
/// every entity, with each optional field left out, sent as null or given,
/// is applied by the real server and read by a real phone store: nothing
/// set aside, every record there. Bounded: 32 generated cases of every
/// entity, each one push and one pull.
#[test]
fn every_record_a_device_may_send_reads_on_every_phone() {
    use proptest::test_runner::{Config, TestRunner};
    let d = District::new();
    let sender = token(&d, "wa1");
    let phone = d.device("reader", "wa2", &d.server.url());
    let cases = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let choice = proptest::prop_oneof![
        proptest::strategy::Just(Opt::Absent),
        proptest::strategy::Just(Opt::Null),
        proptest::strategy::Just(Opt::Given),
    ];
    let location = json!({"latitude": 37.45, "longitude": 118.5, "accuracy_m": 5.0, "crs": "wgs84"});
    runner
        .run(&proptest::collection::vec(choice, 64), |choices| {
            // A birth date of its own each case: a grid has one live
            // resident per ID number.
            let n = cases.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let born = chrono::NaiveDate::from_ymd_opt(1940, 1, 1).unwrap() + chrono::Days::new(n as u64 * 37);
            let mut iter = choices.iter();
            let it = &mut iter;
            let ids: Vec<String> = (0..14).map(|_| new_id()).collect();
            let [
                compound,
                building,
                unit,
                household,
                resident,
                incident,
                reported,
                note,
                log,
                inspection,
            ] = std::array::from_fn(|i| ids[i].clone());
            let photos = [ids[10].clone(), ids[11].clone(), ids[12].clone()];
            let place = |name: &str, kind: &str| json!({"grid_id": "grid-a", "kind": kind, "name": name});
            let mut ops = Vec::new();
            let mut records = |entity: &str, id: &str, fields: Value| ops.push(op(entity, id, fields));
            records(
                "place",
                &compound,
                Fields::new(it, place("格林盛景小区", "compound"))
                    .opt("parent_id", Value::Null)
                    .opt("extra", json!({}))
                    .done(),
            );
            let mut b = place("3号楼", "building");
            b["parent_id"] = json!(compound);
            records("place", &building, b);
            let mut u = place("2单元", "unit");
            u["parent_id"] = json!(building);
            records("place", &unit, u);
            records(
                "household",
                &household,
                Fields::new(it, json!({"grid_id": "grid-a", "room": "301"}))
                    .opt("unit_id", json!(unit))
                    .opt("address", json!("东营区格林盛景小区3号楼2单元301"))
                    .opt("notes", json!("独居老人"))
                    .opt("extra", json!({}))
                    .done(),
            );
            let with_id = matches!(it.next(), Some(Opt::Given));
            let mut r = Fields::new(
                it,
                json!({"grid_id": "grid-a", "name": "王秀英", "sex": "female", "residence": "registered"}),
            )
            .opt("household_id", json!(household))
            .opt("phone", json!("13812345678"))
            .opt("care_tags", json!(["elderly_living_alone"]))
            .opt("notes", json!("腿脚不便"))
            .opt("extra", json!({}));
            if with_id {
                r.map.insert(
                    "id_number".into(),
                    json!(id_for(&born.format("%Y%m%d").to_string(), "042")),
                );
                r = r.opt("birth_date", json!(born.to_string()));
            } else {
                r = r
                    .opt("id_number", Value::Null)
                    .opt("birth_date", json!(born.to_string()));
            }
            records("resident", &resident, r.done());
            records(
                "incident",
                &incident,
                Fields::new(
                    it,
                    json!({"grid_id": "grid-a", "category": "hornets_nest", "occurred_at_ms": T0 - 60_000,
                           "location": location}),
                )
                .opt("title", json!("楼道马蜂窝"))
                .opt("description", json!("三楼窗外"))
                .opt("address", json!("3号楼"))
                .opt("involved_residents", json!([resident]))
                .opt("extra", json!({}))
                .done(),
            );
            for (event, kind) in [(&reported, "reported"), (&note, "note")] {
                records(
                    "incident_event",
                    event,
                    Fields::new(it, json!({"incident_id": incident, "kind": kind}))
                        .opt("note", json!("已通知物业"))
                        .done(),
                );
            }
            records(
                "service_log",
                &log,
                Fields::new(
                    it,
                    json!({"grid_id": "grid-a", "kind": "visit", "occurred_at_ms": T0 - 60_000}),
                )
                .opt("resident_ids", json!([resident]))
                .opt("notes", json!("上门走访"))
                .done(),
            );
            let answers = json!({"indoor_charging": false, "bikes_in_corridor": 3});
            records(
                "inspection",
                &inspection,
                Fields::new(
                    it,
                    json!({"grid_id": "grid-a", "checklist": "ebike_charging", "answers": answers,
                           "location": location, "occurred_at_ms": T0 - 60_000}),
                )
                .opt("place_id", json!(unit))
                .opt("item_photos", json!({}))
                .opt("raised_incidents", json!([]))
                .opt("notes", json!("无异常"))
                .done(),
            );
            for (photo, (kind, owner)) in photos.iter().zip([
                ("incident", &incident),
                ("incident_event", &note),
                ("service_log", &log),
            ]) {
                records(
                    "photo",
                    photo,
                    Fields::new(
                        it,
                        json!({"owner": {"kind": kind, "id": owner}, "sha256": hex_of(photo), "size": 1234,
                               "mime": "image/jpeg"}),
                    )
                    .opt("taken_at_ms", json!(T0 - 120_000))
                    .opt("location", location.clone())
                    .done(),
                );
            }
            for r in push(&d, &sender, ops) {
                proptest::prop_assert_eq!(&r["outcome"], "applied", "{}", r);
            }
            let report = phone.sync().unwrap();
            proptest::prop_assert_eq!(report.set_aside, 0, "{:?}", phone.store.set_aside().unwrap());
            proptest::prop_assert!(phone.store.get_place(&compound).is_ok());
            proptest::prop_assert!(phone.store.get_household(&household).is_ok());
            proptest::prop_assert!(phone.store.get_resident(&resident).is_ok());
            proptest::prop_assert_eq!(phone.store.incident_timeline(&incident).unwrap().len(), 2);
            Ok(())
        })
        .unwrap();
}

/// A photo address of its own for each photo record.
fn hex_of(id: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(id.as_bytes()))
}
