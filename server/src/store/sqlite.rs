//! The embedded engine: `server.db` (SQLite, WAL) in the data folder. One
//! writer connection (every write is one short transaction on it) and a pool
//! of reader connections, so the centre's lists and statistics, sign-ins and
//! pulls never wait for a push, and a push never waits for them. Each call
//! runs on a blocking thread; an abandoned request stops its work (a call not
//! yet started never starts; one running is interrupted by SQLite).

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::{Connection, OptionalExtension, params};
use tokio::sync::Semaphore;

use super::checks;
use super::sql::Lite;
use super::{BACKED, Metrics, StoredReceipt, Tx, TxJob, run_ready};
use fieldgrid_sqlite::migrate::{MigrateError, Migrations};

use super::error::{Stoppable, StoreError, StoreResult};
use crate::decide::{PhotoRef, Write};
use crate::records::{IncidentRow, Record, month_deltas};

/// Schema migrations, append-only, one numbered file each in
/// `server/migrations/sqlite/`; `user_version` counts those applied. Run by
/// the runner the phone's store uses (`fieldgrid_sqlite::migrate`).
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/sqlite/01_base.sql"),
    include_str!("../../migrations/sqlite/02_photo_refs.sql"),
    include_str!("../../migrations/sqlite/03_four_roles.sql"),
    include_str!("../../migrations/sqlite/04_open_incidents.sql"),
    include_str!("../../migrations/sqlite/05_statistics.sql"),
    include_str!("../../migrations/sqlite/06_timeline.sql"),
    include_str!("../../migrations/sqlite/07_monthly_statistics.sql"),
    include_str!("../../migrations/sqlite/08_visit_coverage.sql"),
    include_str!("../../migrations/sqlite/09_record_problems.sql"),
    include_str!("../../migrations/sqlite/10_photo_senders.sql"),
    include_str!("../../migrations/sqlite/11_rule_indexes.sql"),
    include_str!("../../migrations/sqlite/12_one_schema.sql"),
];

/// Rebuilds the visit-coverage rows of the records with ids `?1` (a JSON
/// array), as the migration above first built them. (`+r.entity`: found by
/// id; the entity index would read every resident for each write.)
const REFRESH_CARE: [&str; 4] = [
    "DELETE FROM care_residents WHERE resident_id IN (SELECT value FROM json_each(?1))",
    "INSERT OR IGNORE INTO care_residents (resident_id, tag, grid_id)
     SELECT r.id, t.value, r.grid_id FROM records r, json_each(r.fields, '$.care_tags') t
     WHERE r.id IN (SELECT value FROM json_each(?1)) AND +r.entity = 'resident' AND r.deleted = 0
       AND json_type(r.fields, '$.care_tags') = 'array'",
    "DELETE FROM visits WHERE log_id IN (SELECT value FROM json_each(?1))",
    "INSERT OR IGNORE INTO visits (log_id, resident_id, grid_id, kind, visited_at)
     SELECT r.id, j.value, r.grid_id, json_extract(r.fields, '$.kind'),
         max(min(json_extract(r.fields, '$.occurred_at_ms'), r.created_at), r.created_at - 259200000)
     FROM records r, json_each(r.fields, '$.resident_ids') j
     WHERE r.id IN (SELECT value FROM json_each(?1)) AND +r.entity = 'service_log' AND r.deleted = 0
       AND json_type(r.fields, '$.resident_ids') = 'array'
       AND json_type(r.fields, '$.occurred_at_ms') = 'integer' AND json_type(r.fields, '$.kind') = 'text'",
];

/// Reader connections in the pool.
const READERS: usize = 8;

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    Ok(conn)
}

pub(super) fn migrate(conn: &mut Connection) -> Result<(), String> {
    // Rebuilding a table other tables refer to needs foreign keys off
    // (SQLite's own procedure); the runner checks them before each step commits.
    let runner = Migrations {
        steps: MIGRATIONS,
        check_foreign_keys: true,
    };
    runner.run(conn).map(|_| ()).map_err(|e| match e {
        MigrateError::Newer { .. } => format!("{e}: use a newer server"),
        e => e.to_string(),
    })
}

/// Where a database call stands, for a request that gives up on it.
enum Call {
    /// Waiting for a connection.
    Waiting,
    /// Running on a connection, which this handle interrupts.
    Running(rusqlite::InterruptHandle),
    /// Finished, or never to start.
    Over,
}

/// Stops a call's database work when the request future is dropped before
/// the call finished: a call not yet started never starts; one running is
/// interrupted (SQLite stops at its next step; the transaction rolls back).
struct StopOnDrop {
    call: Arc<Mutex<Call>>,
    store: Arc<SqliteStore>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let mut call = self.call.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *call, Call::Over) {
            Call::Waiting => {
                self.store.metrics.stopped_calls.fetch_add(1, Ordering::Relaxed);
            }
            Call::Running(handle) => {
                // Still under the lock: the call cannot finish and hand its
                // connection to another request before this lands.
                handle.interrupt();
                tracing::info!("request abandoned: its database work is interrupted");
            }
            Call::Over => {}
        }
    }
}

/// The SQLite engine.
pub struct SqliteStore {
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    reader_slots: Semaphore,
    /// Counters.
    pub metrics: Metrics,
}

fn begin(conn: &Connection, how: &str) -> StoreResult<()> {
    conn.execute_batch(how)?;
    Ok(())
}

/// Runs `f` in a transaction begun with `how` (`BEGIN IMMEDIATE` for
/// writes, `BEGIN` for a read snapshot): committed when it succeeds, rolled
/// back when it fails.
fn in_transaction<T, E: From<StoreError>>(
    conn: &mut Connection,
    how: &str,
    f: impl FnOnce(&mut Connection) -> Result<T, E>,
) -> Result<T, E> {
    begin(conn, how)?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("COMMIT").map_err(StoreError::from)?;
            Ok(v)
        }
        Err(e) => {
            let _ = conn.execute_batch("ROLLBACK");
            Err(e)
        }
    }
}

impl SqliteStore {
    /// Opens (creating or upgrading) `<dir>/server.db`.
    pub fn open(dir: &Path) -> Result<SqliteStore, String> {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("server.db");
        let mut writer = open_connection(&path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        migrate(&mut writer)?;
        let readers = (0..READERS)
            .map(|_| {
                let c = open_connection(&path)?;
                c.pragma_update(None, "query_only", true)?;
                Ok(c)
            })
            .collect::<rusqlite::Result<Vec<_>>>()
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers: Mutex::new(readers),
            reader_slots: Semaphore::new(READERS),
            metrics: Metrics::default(),
        })
    }

    /// Runs `f` on the writer or a reader, on a blocking thread. Its error
    /// type is storage's or one built from it (a push's policy answers).
    async fn call<T, E, F>(self: &Arc<Self>, write: bool, f: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: Stoppable + Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    {
        let permit = if write {
            None
        } else {
            Some(
                self.reader_slots
                    .acquire()
                    .await
                    .map_err(|_| StoreError::internal("reader pool closed"))?,
            )
        };
        let call = Arc::new(Mutex::new(Call::Waiting));
        let guard = StopOnDrop {
            call: call.clone(),
            store: self.clone(),
        };
        let store = self.clone();
        let result = tokio::task::spawn_blocking(move || {
            let run = |conn: &mut Connection| {
                {
                    let mut c = call.lock().unwrap_or_else(PoisonError::into_inner);
                    if !matches!(*c, Call::Waiting) {
                        return Err(E::from(StoreError::Stopped));
                    }
                    *c = Call::Running(conn.get_interrupt_handle());
                }
                let result = f(conn);
                *call.lock().unwrap_or_else(PoisonError::into_inner) = Call::Over;
                if result.as_ref().is_err_and(Stoppable::stopped) {
                    store.metrics.stopped_calls.fetch_add(1, Ordering::Relaxed);
                }
                result
            };
            if write {
                let mut conn = store.writer.lock().unwrap_or_else(PoisonError::into_inner);
                run(&mut conn)
            } else {
                let mut conn = store
                    .readers
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .pop()
                    .ok_or_else(|| E::from(StoreError::internal("no reader connection free")))?;
                let result = run(&mut conn);
                // A connection interrupted mid-transaction is rolled back before reuse.
                if !conn.is_autocommit() {
                    let _ = conn.execute_batch("ROLLBACK");
                }
                store.readers.lock().unwrap_or_else(PoisonError::into_inner).push(conn);
                result
            }
        })
        .await;
        drop(guard);
        drop(permit);
        result.map_err(|e| E::from(StoreError::internal(e)))?
    }

    /// A write: one IMMEDIATE transaction on the writer.
    pub(super) async fn write<T: Send + 'static, E: Stoppable + Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        self.call(true, move |conn| in_transaction(conn, "BEGIN IMMEDIATE", f))
            .await
    }

    /// A read: one snapshot on a reader.
    pub(super) async fn read<T: Send + 'static, E: Stoppable + Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&mut Connection) -> Result<T, E> + Send + 'static,
    ) -> Result<T, E> {
        self.call(false, move |conn| in_transaction(conn, "BEGIN", f)).await
    }

    pub(super) async fn transact<J: TxJob>(self: &Arc<Self>, job: J) -> Result<J::Output, J::Error> {
        self.write(move |conn| {
            let mut tx = SqliteTx { conn };
            run_ready(job.run(&mut tx))?
        })
        .await
    }

    pub(super) async fn save_records(self: &Arc<Self>, records: Vec<Record>, now: i64) -> StoreResult<()> {
        self.write(move |conn| {
            let mut tx = SqliteTx { conn };
            for r in records {
                tx.save(&r, now)?;
            }
            Ok(())
        })
        .await
    }

    pub(super) async fn analyze(self: &Arc<Self>) -> StoreResult<()> {
        self.call(true, |c| Ok::<_, StoreError>(c.execute_batch("ANALYZE")?))
            .await
    }
}

/// Statistics from per-grid rows (sub-district, counts): the grids, and
/// their sums per sub-district, each with its on-time rate.
fn record_of_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Record> {
    let fields: String = r.get(5)?;
    let fv: String = r.get(6)?;
    Ok(Record::from_columns(
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get::<_, i64>(4)? != 0,
        &fields,
        &fv,
    ))
}

fn load(c: &Connection, ids: &[String]) -> StoreResult<Vec<Record>> {
    let mut stmt = c.prepare_cached(
        "SELECT id, entity, grid_id, version, deleted, fields, field_versions FROM records WHERE id = ?1",
    )?;
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(r) = stmt.query_row([id], record_of_row).optional()? {
            out.push(r);
        }
    }
    Ok(out)
}

/// A push or a centre action on the writer, inside its IMMEDIATE
/// transaction (begun and ended by [`SqliteStore::write`]).
struct SqliteTx<'a> {
    conn: &'a mut Connection,
}

impl SqliteTx<'_> {
    fn next_seq(&self) -> StoreResult<i64> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq' RETURNING CAST(value AS INTEGER)",
            )?
            .query_row([], |r| r.get(0))?)
    }

    fn save(&mut self, rec: &Record, now: i64) -> StoreResult<()> {
        let seq = self.next_seq()?;
        self.conn
            .prepare_cached(
                "INSERT INTO records (id, entity, grid_id, version, seq, deleted, fields, field_versions, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
                 ON CONFLICT (id) DO UPDATE SET version = ?4, seq = ?5, deleted = ?6, fields = ?7, field_versions = ?8,
                   updated_at = ?9",
            )?
            .execute(params![
                rec.id,
                rec.entity,
                rec.grid_id,
                rec.version,
                seq,
                rec.deleted as i64,
                rec.fields_json(),
                rec.field_versions_json(),
                now
            ])?;
        if rec.entity == "resident" || rec.entity == "service_log" {
            let ids = serde_json::to_string(&[&rec.id])?;
            for sql in REFRESH_CARE {
                self.conn.prepare_cached(sql)?.execute([&ids])?;
            }
        }
        if rec.entity == "incident" {
            // The monthly statistics move by this write's change.
            let old: Option<IncidentRow> = self
                .conn
                .prepare_cached(
                    "SELECT grid_id, category, status, department, deadline_at, reported_at, finished_at
                     FROM incidents WHERE id = ?1",
                )?
                .query_row([&rec.id], |r| {
                    Ok(IncidentRow {
                        id: rec.id.clone(),
                        grid_id: r.get(0)?,
                        category: r.get(1)?,
                        status: r.get(2)?,
                        department: r.get(3)?,
                        deadline_at: r.get(4)?,
                        reported_at: r.get(5)?,
                        finished_at: r.get(6)?,
                    })
                })
                .optional()?;
            let new = (!rec.deleted).then(|| IncidentRow::of(rec));
            for (month, grid, category, d) in month_deltas(old.as_ref(), new.as_ref()) {
                for (table, column, key) in [
                    ("incident_months", "grid_id", &grid),
                    ("incident_category_months", "category", &category),
                ] {
                    self.conn
                        .prepare_cached(&format!(
                            "INSERT INTO {table} (month, {column}, reported, finished_with_deadline, finished_on_time)
                             VALUES (?1, ?2, ?3, ?4, ?5)
                             ON CONFLICT (month, {column}) DO UPDATE SET reported = reported + ?3,
                               finished_with_deadline = finished_with_deadline + ?4,
                               finished_on_time = finished_on_time + ?5"
                        ))?
                        .execute(params![
                            month,
                            key,
                            d.reported,
                            d.finished_with_deadline,
                            d.finished_on_time
                        ])?;
                }
            }
            if rec.deleted {
                self.conn
                    .prepare_cached("DELETE FROM incidents WHERE id = ?1")?
                    .execute([&rec.id])?;
            } else {
                let row = IncidentRow::of(rec);
                self.conn
                    .prepare_cached(
                        "INSERT INTO incidents (id, grid_id, sub_district, community, category, status, department,
                           deadline_at, reported_at, finished_at)
                         SELECT ?1, ?2, coalesce(g.sub_district, ''), coalesce(g.community, ''), ?3, ?4, ?5, ?6, ?7, ?8
                         FROM (SELECT 1) LEFT JOIN grids g ON g.id = ?2
                         ON CONFLICT (id) DO UPDATE SET category = ?3, status = ?4, department = ?5, deadline_at = ?6,
                           reported_at = ?7, finished_at = ?8",
                    )?
                    .execute(params![
                        row.id,
                        row.grid_id,
                        row.category,
                        row.status,
                        row.department,
                        row.deadline_at,
                        row.reported_at,
                        row.finished_at
                    ])?;
            }
        }
        Ok(())
    }

    fn photo_ref(&mut self, p: &PhotoRef) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO photo_refs (photo_id, sha256, grid_id, size, incident_id, account_id, owner_id)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) ON CONFLICT DO NOTHING",
            )?
            .execute(params![
                p.photo_id,
                p.sha256,
                p.grid_id,
                p.size,
                p.incident_id,
                p.account_id,
                p.owner_id
            ])?;
        if let Some(incident) = &p.incident_id {
            self.conn
                .prepare_cached(
                    &format!("UPDATE incidents SET complete = 0 WHERE id = ?1 AND NOT (SELECT {BACKED} FROM photo_refs p WHERE p.photo_id = ?2)"),
                )?
                .execute(params![incident, p.photo_id])?;
        }
        Ok(())
    }
}

impl Tx for SqliteTx<'_> {
    async fn records(&mut self, ids: &[String]) -> StoreResult<Vec<Record>> {
        load(self.conn, ids)
    }

    async fn receipt(&mut self, op_id: &str) -> StoreResult<Option<StoredReceipt>> {
        checks::receipt(&mut Lite(self.conn), op_id).await
    }

    async fn save_receipt(&mut self, r: &StoredReceipt, now: i64) -> StoreResult<()> {
        self.conn
            .prepare_cached(
                "INSERT INTO receipts (op_id, account_id, device_id, receipt, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(params![
                r.receipt.op_id,
                r.account_id,
                r.device_id,
                serde_json::to_string(&r.receipt)?,
                now
            ])?;
        Ok(())
    }

    async fn write(&mut self, w: &Write, now: i64) -> StoreResult<()> {
        match w {
            Write::Record(r) => self.save(r, now),
            Write::PhotoRef(p) => self.photo_ref(p),
        }
    }

    async fn photos_of(&mut self, owner_id: &str) -> StoreResult<i64> {
        checks::photos_of(&mut Lite(self.conn), owner_id).await
    }

    async fn live_children(&mut self, id: &str) -> StoreResult<i64> {
        checks::live_children(&mut Lite(self.conn), id).await
    }

    async fn id_number_taken(&mut self, grid: &str, id_number: &str, except: &str) -> StoreResult<bool> {
        checks::id_number_taken(&mut Lite(self.conn), grid, id_number, except).await
    }

    async fn department_exists(&mut self, id: &str) -> StoreResult<bool> {
        checks::department_exists(&mut Lite(self.conn), id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Keeping the coverage rows on a write finds the record by its id: by
    /// the entity index it read every resident of the district for each
    /// resident pushed (a 20-grid bulk build took three times as long).
    #[test]
    fn coverage_rows_are_kept_by_id_not_by_scanning_an_entity() {
        // No planner statistics: a database growing before its first
        // `ANALYZE`, as a bulk build or a young district's is.
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn).unwrap();
        for sql in REFRESH_CARE.iter().filter(|s| s.contains("FROM records")) {
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .unwrap()
                .query_map(["[\"x\"]"], |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let plan = plan.join("; ");
            assert!(
                plan.contains("SEARCH r USING INDEX sqlite_autoindex_records_1 (id=?)"),
                "{plan}"
            );
        }
    }

    /// The backdating allowance in the SQL is the domain's.
    #[test]
    fn the_coverage_sql_counts_visits_as_the_domain_does() {
        let allowance = fieldgrid_domain::visits::BACKDATE_ALLOWANCE_MS.to_string();
        assert!(REFRESH_CARE[3].contains(&allowance));
        assert!(MIGRATIONS.iter().any(|m| m.contains(&allowance)));
    }
}
