//! Stores written by earlier versions open and upgrade: each frozen snapshot
//! (core/tests/fixtures/schema/, written by scripts/freeze-schemas.py from
//! the migrations as they were when that version shipped, with data) becomes
//! a store whose schema is exactly a fresh store's and whose records all
//! read back through the API.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use fieldgrid_core::*;

use crate::common::*;

fn schema_of(path: &Path) -> Vec<(String, String, String)> {
    migrate::schema(&rusqlite::Connection::open(path).unwrap()).unwrap()
}

const RESIDENT: &str = "0190f1d2-8c1a-7b3e-9f00-000000000005";
const INCIDENT: &str = "0190f1d2-8c1a-7b3e-9f00-000000000006";
const LOG: &str = "0190f1d2-8c1a-7b3e-9f00-000000000008";
const BUILDING: &str = "0190f1d2-8c1a-7b3e-9f00-000000000002";

fn restore(snapshot: &str, path: &Path) {
    let sql = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/schema")
            .join(snapshot),
    )
    .unwrap();
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(&sql).unwrap();
}

fn upgrades(snapshot: &str, version: i64) {
    let dir = tempfile::tempdir().unwrap();
    let (old, fresh) = (dir.path().join("old.db"), dir.path().join("fresh.db"));
    restore(snapshot, &old);
    let v: i64 = rusqlite::Connection::open(&old)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(v, version);

    let clock = Arc::new(TestClock(AtomicI64::new(NOW_MS)));
    let store = open(&old, None, &clock).unwrap();
    drop(open(&fresh, None, &clock).unwrap());
    assert_eq!(
        schema_of(&old),
        schema_of(&fresh),
        "{snapshot}: upgraded schema = fresh schema"
    );

    // Every record reads back.
    let r = store.get_resident(RESIDENT).unwrap();
    assert_eq!(r.name.as_str(), "王秀英");
    assert_eq!(r.care_tags, vec![CareTag::ElderlyLivingAlone]);
    let by_name = store
        .search_residents(
            &ResidentQuery {
                name: Some("秀英".into()),
                building_id: Some(BUILDING.into()),
                ..ResidentQuery::default()
            },
            &PageRequest::default(),
        )
        .unwrap();
    assert_eq!(by_name.items.len(), 1, "the search rows came along");
    let incident = store.get_incident(INCIDENT).unwrap();
    assert_eq!(incident.status, IncidentStatus::Dispatched);
    assert_eq!(incident.photos.len(), 1);
    assert_eq!(store.incident_timeline(INCIDENT).unwrap().len(), 1);
    assert_eq!(
        store.get_service_log(LOG).unwrap().resident_ids,
        vec![RESIDENT.to_owned()]
    );
    // The outbox still sends what it held, as the records now stand.
    let ops = store.pending_operations(100).unwrap();
    assert_eq!(ops.len(), 5);
    let resident_op = ops.iter().find(|o| o.entity == Entity::Resident).unwrap();
    assert_eq!(store.payload(resident_op).unwrap()["name"], "王秀英");
    assert_eq!(store.pull_cursor().unwrap(), 42);
    assert!(!store.grids().unwrap().is_empty());
}

#[test]
fn a_version_1_store_upgrades_with_every_record() {
    upgrades("store-v1.sql", 1);
}

#[test]
fn a_version_2_store_upgrades_with_every_record() {
    upgrades("store-v2.sql", 2);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("v2.db");
    restore("store-v2.sql", &path);
    let clock = Arc::new(TestClock(AtomicI64::new(NOW_MS)));
    let store = open(&path, None, &clock).unwrap();
    let conflicts = store.conflicts_of(BUILDING).unwrap();
    assert_eq!(conflicts.len(), 1, "the conflict kept");
    assert_eq!(conflicts[0].0, "name");
}
