//! District databases written by earlier server versions upgrade in place:
//! each frozen snapshot (tests/fixtures/schema/server-v<N>.sql, written by
//! scripts/freeze-schemas.py from the migrations as that version shipped
//! them, with a grid's records) is opened by today's server on loopback,
//! which migrates it to a fresh database's schema; the centre then sees the
//! incident in its queue and statistics, and a new phone's first sync brings
//! the grid's records. On SQLite every earlier version; on PostgreSQL (when
//! the suite runs on it) version 4, the last before its statistics step was
//! rewritten.

use std::path::Path;
use std::sync::Arc;

use fieldgrid_core::{IncidentStatus, Store, StoreOptions};
use fieldgrid_server::{Config, RunningServer};
use fieldgrid_tests::{ManualClock, PASSWORD, T0, postgres_admin, postgres_execute, test_database, test_postgres};
use serde_json::{Value, json};

use crate::helpers::*;

const RESIDENT: &str = "0190f1d2-8c1a-7b3e-9f00-000000000005";
const INCIDENT: &str = "0190f1d2-8c1a-7b3e-9f00-000000000006";

fn schema_of(path: &Path) -> Vec<(String, String, String)> {
    fieldgrid_core::migrate::schema(&rusqlite::Connection::open(path).unwrap()).unwrap()
}

fn server(data: &Path, database_url: Option<String>) -> RunningServer {
    let mut config = Config::new(data);
    let clock = ManualClock::at(T0 + 3_600_000);
    config.clock = Arc::new(move || clock.now());
    config.database_url = database_url;
    RunningServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap()
}

fn sign_in(base: &str, user: &str) -> String {
    let (status, body) = call_at(
        base,
        "",
        "POST",
        "/v1/session",
        Some(json!({"username": user, "password": PASSWORD, "device_id": "tester"})),
    );
    assert_eq!(
        status, 200,
        "{user} signs in with the password kept across versions: {body}"
    );
    body["token"].as_str().unwrap().to_owned()
}

fn upgrades(version: i64) {
    let dir = tempfile::tempdir().unwrap();
    let (old, fresh) = (dir.path().join("old"), dir.path().join("fresh"));
    std::fs::create_dir_all(&old).unwrap();
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("fixtures/schema/server-v{version}.sql"));
    let conn = rusqlite::Connection::open(old.join("server.db")).unwrap();
    conn.execute_batch(&std::fs::read_to_string(snapshot).unwrap()).unwrap();
    assert_eq!(
        conn.query_row("PRAGMA user_version", [], |r| r.get::<_, i64>(0))
            .unwrap(),
        version
    );
    drop(conn);

    let s = server(&old, None);
    drop(server(&fresh, None));
    assert_eq!(
        schema_of(&old.join("server.db")),
        schema_of(&fresh.join("server.db")),
        "version {version} upgraded = a fresh database"
    );
    works(&s, dir.path(), version);
}

/// What a district needs of its upgraded database: the centre's queue and
/// statistics, and a phone's first sync of the grid.
fn works(s: &RunningServer, dir: &Path, version: i64) {
    // The centre: the incident in its queue, its timeline, the statistics.
    let base = s.url();
    let centre = sign_in(&base, "centre");
    let (status, list) = call_at(&base, &centre, "GET", "/v1/centre/incidents?status=dispatched", None);
    assert_eq!(status, 200);
    let ids: Vec<&str> = list["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["id"].as_str())
        .collect();
    assert_eq!(ids, [INCIDENT], "version {version}");
    let (_, stats) = call_at(&base, &centre, "GET", "/v1/centre/stats?from=2026-11&to=2026-11", None);
    let grid: &Value = &stats["grids"][0];
    assert_eq!(
        (grid["key"].as_str(), grid["reported"].as_u64(), grid["open"].as_u64()),
        (Some("grid-a"), Some(1), Some(1)),
        "{stats}"
    );

    // Visit coverage counts the residents stored before it existed.
    let (status, c) = call_at(
        &base,
        &centre,
        "GET",
        "/v1/centre/coverage?rule=elderly_alone_monthly_visit&at=2026-11-26",
        None,
    );
    assert_eq!(status, 200, "{c}");
    assert_eq!(c["district"]["residents"], 1, "version {version}: {c}");

    // A new phone's first sync brings the grid.
    let phone = Store::open_with(
        dir.join(format!("phone-{version}.db")),
        None,
        StoreOptions {
            clock: Arc::new(ManualClock::at(T0 + 3_600_000)),
        },
    )
    .unwrap();
    sign_in_and_sync(&phone, &base, "wa1");
    assert_eq!(phone.get_resident(RESIDENT).unwrap().name.as_str(), "王秀英");
    let incident = phone.get_incident(INCIDENT).unwrap();
    assert_eq!(incident.status, IncidentStatus::Dispatched);
    assert_eq!(incident.photos.len(), 1);
    assert_eq!(phone.incident_timeline(INCIDENT).unwrap().len(), 2);
}

#[test]
fn server_databases_of_every_earlier_version_upgrade_in_place() {
    for version in 1..=5 {
        upgrades(version);
    }
}

#[test]
fn a_postgresql_database_of_version_4_upgrades_in_place() {
    let (Some(pg), Some(url)) = (test_postgres(), test_database()) else {
        return; // the suite runs on SQLite: covered above
    };
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schema/postgres-v4.sql");
    let sql = std::fs::read_to_string(snapshot).unwrap();
    postgres_execute(&url, &sql);
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir.path().join("server"), Some(url.clone()));
    works(&s, dir.path(), 4);
    drop(s);
    if let Some(name) = url.rsplit('/').next() {
        postgres_admin(&pg, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
    }
}

/// Issue 21 item 1: a district whose version-5 server stored a worker's
/// `reported` event without its note (which stopped every phone of the
/// grid) upgrades; a new phone's first sync sets the event aside and takes
/// the rest; district IT's `repair-records`, with the server stopped,
/// completes it as a new version, and the phone's next sync reads it.
/// Frozen snapshot: tests/fixtures/schema/server-v5-unreadable.sql.
#[test]
fn a_version_5_database_holding_an_unreadable_event_is_repaired() {
    const EVENT: &str = "0190f1d2-8c1a-7b3e-9f00-000000000007";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("server");
    std::fs::create_dir_all(&data).unwrap();
    let snapshot = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/schema/server-v5-unreadable.sql");
    rusqlite::Connection::open(data.join("server.db"))
        .unwrap()
        .execute_batch(&std::fs::read_to_string(snapshot).unwrap())
        .unwrap();
    let phone = Store::open_with(
        dir.path().join("phone.db"),
        None,
        StoreOptions {
            clock: Arc::new(ManualClock::at(T0 + 3_600_000)),
        },
    )
    .unwrap();
    let sync = |base: &str| sign_in_and_sync(&phone, base, "wa1");

    let s = server(&data, None);
    let report = sync(&s.url());
    assert_eq!(report.set_aside, 1);
    assert_eq!(phone.set_aside().unwrap()[0].entity_id, EVENT);
    assert_eq!(phone.get_incident(INCIDENT).unwrap().status, IncidentStatus::Dispatched);
    assert_eq!(phone.incident_timeline(INCIDENT).unwrap().len(), 1, "the dispatch");
    drop(s);

    let session = fieldgrid_server::admin::AdminSession::open(&fieldgrid_server::store::location(&data, None)).unwrap();
    let repair = session.admin().repair_records(T0 + 3_600_000, false).unwrap();
    assert_eq!(
        (repair.repaired.as_slice(), repair.unreadable.len()),
        ([EVENT.to_owned()].as_slice(), 0)
    );
    drop(session);

    let s = server(&data, None);
    assert_eq!(sync(&s.url()).set_aside, 0);
    assert!(phone.set_aside().unwrap().is_empty());
    let timeline = phone.incident_timeline(INCIDENT).unwrap();
    assert_eq!(timeline.len(), 2);
    assert!(timeline.iter().all(|e| e.note.as_str().is_empty()));
}
