//! The storage layer, through the real server on either engine (SQLite by
//! default, PostgreSQL with `FIELDGRID_TEST_POSTGRES`): the pull cursor under
//! concurrent writers, receipt retention, schema versions.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use fieldgrid_core::new_id;
use fieldgrid_server::admin::AdminSession;
use fieldgrid_server::store::Location;
use fieldgrid_tests::{District, T0};
use serde_json::{Value, json};

use crate::helpers::*;

fn place_op(grid: &str, name: &str) -> (Value, String) {
    let id = new_id();
    let op = json!({"op_id": new_id(), "entity": "place", "entity_id": id, "kind": "create",
        "patch": {"grid_id": grid, "kind": "compound", "parent_id": null, "name": name},
        "base_version": null, "created_at_ms": T0});
    (op, id)
}

/// The cursor stays exact with many writers: two server instances on the
/// same storage, pushes committing in any order while pullers follow the
/// cursor page by page on either; every record committed reaches every
/// puller (a cursor that ran past a change still in flight would lose it
/// for good: with seqs taken at insert instead of stamped at commit, this
/// fails on PostgreSQL).
#[test]
fn concurrent_pushes_and_pulls_lose_no_change() {
    let d = Arc::new(District::new());
    let second = Arc::new(
        fieldgrid_server::RunningServer::start(d.server.state.config.clone(), "127.0.0.1:0".parse().unwrap()).unwrap(),
    );
    let urls = [d.server.url(), second.url()];
    let writers = 6;
    let batches = 12;
    let per_batch = 40;
    let committed = Arc::new(Mutex::new(BTreeSet::new()));
    let done = Arc::new(AtomicBool::new(false));
    let pullers: Vec<_> = (0..3)
        .map(|p| {
            let (d, done, url) = (d.clone(), done.clone(), urls[p % 2].clone());
            std::thread::spawn(move || {
                let t = token(&d, if p % 2 == 0 { "wa1" } else { "wa2" });
                let mut after = 0;
                let mut seen = BTreeSet::new();
                let mut last_seq = 0;
                loop {
                    let finished = done.load(Ordering::SeqCst);
                    // Drain to the end of what is committed now.
                    loop {
                        let (status, page) = call_at(
                            &url,
                            &t,
                            "GET",
                            &format!("/v1/sync/changes?after={after}&limit=7&grid=grid-a"),
                            None,
                        );
                        assert_eq!(status, 200, "{page}");
                        for c in page["changes"].as_array().unwrap() {
                            let seq = c["seq"].as_i64().unwrap();
                            assert!(seq > last_seq, "seqs increase along the cursor");
                            last_seq = seq;
                            seen.insert(c["entity_id"].as_str().unwrap().to_owned());
                        }
                        after = page["next_after"].as_i64().unwrap();
                        if !page["more"].as_bool().unwrap() {
                            break;
                        }
                    }
                    if finished {
                        return seen;
                    }
                }
            })
        })
        .collect();
    let pushers: Vec<_> = (0..writers)
        .map(|w| {
            let (d, committed, url) = (d.clone(), committed.clone(), urls[w % 2].clone());
            std::thread::spawn(move || {
                let t = token(&d, if w % 2 == 0 { "wa1" } else { "wa2" });
                for b in 0..batches {
                    let (ops, ids): (Vec<Value>, Vec<String>) = (0..per_batch)
                        .map(|i| place_op("grid-a", &format!("小区{w}-{b}-{i}")))
                        .unzip();
                    let (status, answer) = call_at(
                        &url,
                        &t,
                        "POST",
                        "/v1/sync/push",
                        Some(json!({"device_id": format!("w{w}"), "operations": ops})),
                    );
                    assert_eq!(status, 200, "{answer}");
                    assert!(
                        answer["receipts"]
                            .as_array()
                            .unwrap()
                            .iter()
                            .all(|r| r["outcome"] == "applied")
                    );
                    committed.lock().unwrap().extend(ids);
                }
            })
        })
        .collect();
    for p in pushers {
        p.join().unwrap();
    }
    done.store(true, Ordering::SeqCst);
    let committed = committed.lock().unwrap().clone();
    assert_eq!(committed.len(), writers * batches * per_batch);
    let names: Vec<String> = d
        .server
        .admin()
        .records_of("place", Some("grid-a"))
        .unwrap()
        .iter()
        .map(|r| {
            r.str("name")
                .unwrap_or_default()
                .split('-')
                .next()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    let switches = names.windows(2).filter(|w| w[0] != w[1]).count();
    println!(
        "writer switches along seq: {switches} (of {} batches)",
        writers * batches
    );
    for p in pullers {
        let seen = p.join().unwrap();
        let missing = committed.difference(&seen).count();
        assert_eq!(missing, 0, "every committed change reached the puller");
    }
}

/// Receipts are kept for their retention, then purged in batches; a purge
/// never touches younger ones.
#[test]
fn receipts_are_purged_after_their_retention() {
    let d = District::new();
    let t = token(&d, "wa1");
    let push = |n: usize| {
        let ops: Vec<Value> = (0..n).map(|i| place_op("grid-a", &format!("小区{i}")).0).collect();
        let (status, _) = call(
            &d,
            &t,
            "POST",
            "/v1/sync/push",
            Some(json!({"device_id": "x", "operations": ops})),
        );
        assert_eq!(status, 200);
    };
    push(30);
    d.server_clock.advance(2 * 3_600_000);
    push(12);
    assert_eq!(server_receipts(&d), 42);
    let purged = d.server.admin().purge_receipts(T0 + 3_600_000).unwrap();
    assert_eq!(purged, 30);
    assert_eq!(server_receipts(&d), 12);
}

/// A database written by a newer server is refused, not "upgraded" or used.
#[test]
fn a_database_from_a_newer_server_is_refused() {
    let d = District::new();
    let location = d.server.state.config.location();
    match &location {
        Location::Sqlite(dir) => {
            let conn = rusqlite::Connection::open(dir.join("server.db")).unwrap();
            let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            conn.pragma_update(None, "user_version", v + 1).unwrap();
        }
        Location::Postgres(url) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                client
                    .batch_execute("UPDATE schema_version SET version = version + 1")
                    .await
                    .unwrap();
            });
        }
    }
    let err = AdminSession::open(&location).err().expect("refused");
    assert!(err.contains("newer server"), "{err}");
}

/// The statistics the migration builds from an existing district's
/// incidents equal those kept as the incidents changed: month by month, per
/// grid and per category, on both engines (the two compute China-time
/// months in their own SQL).
#[test]
fn the_statistics_migration_counts_what_the_writes_kept() {
    use fieldgrid_server::service::Period;
    // Sessions outlive the months the server clock crosses.
    let d = District::with_config(|c| c.token_ttl_ms = 365 * 24 * 3_600_000);
    let a = d.device("a", "wa1", &d.server.url());
    let b = d.device("b", "wb", &d.server.url());
    let centre = token(&d, "centre");
    // Incidents over three months (server time), some finished on time,
    // some late, some open; a reported-at just before a China-time month
    // boundary (2026-11-30 23:30 China time is still November).
    let mut months = BTreeSet::new();
    let mut n = 0;
    for minutes in [0i64, (4 * 24 + 11) * 60 + 30, 35 * 24 * 60, 66 * 24 * 60] {
        let at = T0 + minutes * 60_000;
        d.server_clock.0.store(at, Ordering::SeqCst);
        months.insert(fieldgrid_server::records::month_of(at));
        for (p, grid, category) in [(&a, "grid-a", "neighbour_dispute"), (&b, "grid-b", "resident_request")] {
            let i = p
                .store
                .report_incident(&incident(grid, category, T0 - 60_000), &[])
                .unwrap();
            p.sync().unwrap();
            n += 1;
            let deadline = d.server_clock.now() + 3_600_000;
            let dispatch = json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": deadline});
            let path = format!("/v1/centre/incidents/{}/events", i.id);
            if n % 3 != 0 {
                assert_eq!(call(&d, &centre, "POST", &path, Some(dispatch)).0, 200);
            }
            if n % 3 == 1 {
                d.server_clock
                    .advance(if n % 2 == 0 { 30 * 60_000 } else { 2 * 3_600_000 });
                assert_eq!(
                    call(&d, &centre, "POST", &path, Some(json!({"kind": "resolved"}))).0,
                    200
                );
            }
        }
    }
    assert!(months.len() >= 3, "{months:?}");
    let location = d.server.state.config.location();
    let stats_of = |session: &AdminSession| {
        let mut all = Vec::new();
        for m in months.iter().map(Some).chain([None]) {
            let period = Period::parse(m.map(String::as_str), m.map(String::as_str)).unwrap();
            let mut s = session.block_on(session.store().stats(&period, T0)).unwrap();
            s.server_time_ms = 0;
            all.push(s);
        }
        all
    };
    let kept = stats_of(&AdminSession::open(&location).unwrap());
    assert!(kept.iter().any(|s| s.grids.iter().any(|g| g.finished_on_time > 0)));

    // Back to before the statistics step (visit coverage, the phones'
    // problem reports and photo senders came after it), then forward again.
    roll_back(
        &location,
        &format!(
            "{}; DROP TABLE care_residents; DROP TABLE visits; \
             DROP TABLE incident_months; DROP TABLE incident_category_months; DROP INDEX incidents_open;",
            UNDO_SINCE_COVERAGE
        ),
        STEPS_SINCE_COVERAGE + 2,
    );
    let migrated = stats_of(&AdminSession::open(&location).unwrap());
    assert_eq!(migrated, kept);
}

/// Undoes the schema steps after visit coverage (the phones' problem
/// reports, photo senders and owners, the indexes of the rules that look at
/// other records, one `blobs` for both engines), for tests that take a
/// database back.
pub const UNDO_SINCE_COVERAGE: &str = "ALTER TABLE blobs ADD COLUMN received INTEGER NOT NULL DEFAULT 0; \
     ALTER TABLE blobs ADD COLUMN complete INTEGER NOT NULL DEFAULT 1; DROP INDEX IF EXISTS tokens_expires; \
     DROP INDEX records_resident_household; DROP INDEX records_household_unit; \
     DROP INDEX records_place_parent; DROP INDEX records_resident_id_number; \
     DROP INDEX photo_refs_owner; ALTER TABLE photo_refs DROP COLUMN owner_id; \
     DROP TABLE blob_senders; ALTER TABLE photo_refs DROP COLUMN account_id; DROP TABLE record_problems";

/// How many schema steps [`UNDO_SINCE_COVERAGE`] undoes.
pub const STEPS_SINCE_COVERAGE: i64 = 4;

/// Takes a district's database back by its last `steps` schema steps, which
/// `undo` reverses, as if written by the server before them; the next open
/// runs them again.
pub fn roll_back(location: &Location, undo: &str, steps: i64) {
    match location {
        Location::Sqlite(dir) => {
            let conn = rusqlite::Connection::open(dir.join("server.db")).unwrap();
            let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            conn.execute_batch(undo).unwrap();
            conn.pragma_update(None, "user_version", v - steps).unwrap();
        }
        Location::Postgres(url) => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
                tokio::spawn(conn);
                client
                    .batch_execute(&format!(
                        "{undo}; UPDATE schema_version SET version = version - {steps}"
                    ))
                    .await
                    .unwrap();
            });
        }
    }
}

/// Issue 21 item 7: receipts of refused operations are kept a week, not the
/// 180 days of applied ones (a phone quarantines a refused operation once it
/// has the answer; twenty pushes of refusals left 10,000 rows for half a
/// year). Applied receipts of the same age stay.
#[test]
fn receipts_of_refused_operations_go_after_a_week() {
    let d = District::new();
    let t = token(&d, "wa1");
    let push = |ops: Vec<Value>| {
        let (status, _) = call(
            &d,
            &t,
            "POST",
            "/v1/sync/push",
            Some(json!({"device_id": "x", "operations": ops})),
        );
        assert_eq!(status, 200);
    };
    push((0..5).map(|i| place_op("grid-a", &format!("小区{i}")).0).collect());
    push((0..20).map(|i| place_op("grid-b", &format!("别处{i}")).0).collect()); // not wa1's grid
    assert_eq!(server_receipts(&d), 25);
    let week = fieldgrid_server::store::REJECTED_RECEIPT_RETENTION_MS;
    assert_eq!(
        d.server.admin().purge_rejected_receipts(T0 - week).unwrap(),
        0,
        "not yet"
    );
    assert_eq!(d.server.admin().purge_rejected_receipts(T0 + 1).unwrap(), 20);
    assert_eq!(server_receipts(&d), 5, "the applied ones stay");
}

/// A schema as names: each table's columns and its own indexes (not those
/// the engine makes for a primary key or a unique column).
type Schema = std::collections::BTreeMap<String, (Vec<String>, BTreeSet<String>)>;

fn sqlite_schema(dir: &std::path::Path) -> Schema {
    let conn = rusqlite::Connection::open(dir.join("server.db")).unwrap();
    let names = |sql: &str, table: &str| -> Vec<String> {
        let params: &[&dyn rusqlite::ToSql] = if sql.contains("?1") { &[&table] } else { &[] };
        conn.prepare(sql)
            .unwrap()
            .query_map(params, |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    };
    names(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name",
        "",
    )
    .into_iter()
    .map(|t| {
        let columns = names("SELECT name FROM pragma_table_info(?1) ORDER BY cid", &t);
        let indexes = names(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = ?1 AND sql IS NOT NULL",
            &t,
        );
        (t, (columns, indexes.into_iter().collect()))
    })
    .collect()
}

fn postgres_schema(url: &str) -> Schema {
    fieldgrid_tests::with_postgres(url, |client| async move {
        let mut schema = Schema::new();
        for r in client
            .query(
                "SELECT table_name::text, column_name::text FROM information_schema.columns
                 WHERE table_schema = 'public' ORDER BY table_name, ordinal_position",
                &[],
            )
            .await
            .unwrap()
        {
            schema.entry(r.get(0)).or_default().0.push(r.get(1));
        }
        // Indexes that back no constraint: the ones a migration created.
        for r in client
            .query(
                "SELECT t.relname::text, i.relname::text FROM pg_index x
                   JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_class t ON t.oid = x.indrelid
                   JOIN pg_namespace n ON n.oid = t.relnamespace
                 WHERE n.nspname = 'public' AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.oid)",
                &[],
            )
            .await
            .unwrap()
        {
            schema.entry(r.get(0)).or_default().1.insert(r.get(1));
        }
        schema
    })
}

/// Issue 22: the two engines keep one schema, so a statement written once
/// means the same on both: the same tables, each with the same columns and
/// the same indexes, except where an engine cannot
/// (named here). Runs in the PostgreSQL pass, against a fresh database and
/// a fresh SQLite file, both made by the server's migrations.
#[test]
fn both_engines_keep_one_schema() {
    let Some(server) = fieldgrid_tests::test_postgres() else {
        return; // the SQLite pass has no PostgreSQL to compare with
    };
    let url = fieldgrid_tests::test_database().unwrap();
    let dir = tempfile::tempdir().unwrap();
    drop(AdminSession::open(&Location::Sqlite(dir.path().to_path_buf())).unwrap());
    drop(AdminSession::open(&Location::Postgres(url.clone())).unwrap());
    let mut lite = sqlite_schema(dir.path());
    let mut pg = postgres_schema(&url);
    let name = url.rsplit('/').next().unwrap().to_owned();
    fieldgrid_tests::postgres_admin(&server, &format!("DROP DATABASE {name}"));
    // Each engine counts its schema steps its own way: SQLite in
    // `PRAGMA user_version` (and `meta` keeps the change sequence),
    // PostgreSQL in `schema_version` (and a sequence).
    let only_lite = lite.remove("meta");
    let only_pg = pg.remove("schema_version");
    assert!(only_lite.is_some() && only_pg.is_some());
    let mut differences = Vec::new();
    let tables = |s: &Schema| s.keys().cloned().collect::<BTreeSet<_>>();
    for t in tables(&lite).symmetric_difference(&tables(&pg)) {
        differences.push(format!("table {t} is in one engine only"));
    }
    for (table, (columns, indexes)) in &lite {
        let Some((pg_columns, pg_indexes)) = pg.get(table) else {
            continue;
        };
        // By name: shared statements name their columns.
        let (columns, pg_columns): (BTreeSet<_>, BTreeSet<_>) = (columns.iter().collect(), pg_columns.iter().collect());
        for c in columns.symmetric_difference(&pg_columns) {
            differences.push(format!("column {table}.{c} is in one engine only"));
        }
        for i in indexes.symmetric_difference(pg_indexes) {
            differences.push(format!("index {i} of {table} is in one engine only"));
        }
    }
    assert!(differences.is_empty(), "{differences:#?}");
}
