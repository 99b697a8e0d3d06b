//! The PostgreSQL engine, for a district past one machine: a pool of
//! connections (deadpool-postgres over tokio-postgres), several server
//! processes may share the database.
//!
//! The pull cursor stays exact with many writers. A sequence's values commit
//! out of order, so rows are written with no `seq`, and just before commit a
//! transaction takes a transaction-scoped advisory lock and stamps its rows
//! from the sequence: stamping and committing are serialised, so seq order is
//! commit order, and a reader that sees seq `n` committed sees every lower
//! seq that will ever commit. Pulls read in one REPEATABLE READ snapshot.
//! Conflicting pushes (the same op sent to two processes, the same record
//! edited at once) lock the rows they change and are retried whole on a
//! unique violation, serialization failure or deadlock.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::checks;
use super::lookups::RECORD_COLUMNS;
use super::sql::{Pg, pg_row};

use super::error::{StoreError, StoreResult};
use super::{BACKED, Metrics, StoredReceipt, Tx, TxJob};
use crate::decide::{PhotoRef, Write};
use crate::records::{Contribution, IncidentRow, Record, month_deltas};

/// Schema migrations, append-only, one numbered file each in
/// `server/migrations/postgres/`; `schema_version` holds how many ran.
/// (No migration library supports both engines at our rusqlite version;
/// this is the same loop as the SQLite engine's, in transactional DDL.)
pub(super) const MIGRATIONS: &[&str] = &[
    include_str!("../../migrations/postgres/01_base.sql"),
    include_str!("../../migrations/postgres/02_four_roles.sql"),
    include_str!("../../migrations/postgres/03_open_incidents.sql"),
    include_str!("../../migrations/postgres/04_statistics.sql"),
    include_str!("../../migrations/postgres/05_timeline.sql"),
    include_str!("../../migrations/postgres/06_monthly_statistics.sql"),
    include_str!("../../migrations/postgres/07_visit_coverage.sql"),
    include_str!("../../migrations/postgres/08_record_problems.sql"),
    include_str!("../../migrations/postgres/09_photo_senders.sql"),
    include_str!("../../migrations/postgres/10_rule_indexes.sql"),
    include_str!("../../migrations/postgres/11_one_schema.sql"),
];

/// Rebuilds the visit-coverage rows of the records with ids `$1`, as the
/// SQLite engine's `REFRESH_CARE` (the migration runs them over every id).
const REFRESH_CARE: [&str; 4] = [
    "DELETE FROM care_residents WHERE resident_id = ANY($1)",
    "INSERT INTO care_residents (resident_id, tag, grid_id)
     SELECT r.id, t.tag, r.grid_id FROM records r
     CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(r.fields::jsonb -> 'care_tags') = 'array'
         THEN r.fields::jsonb -> 'care_tags' ELSE '[]' END) AS t(tag)
     WHERE r.id = ANY($1) AND r.entity = 'resident' AND NOT r.deleted
     ON CONFLICT DO NOTHING",
    "DELETE FROM visits WHERE log_id = ANY($1)",
    "INSERT INTO visits (log_id, resident_id, grid_id, kind, visited_at)
     SELECT r.id, j.resident_id, r.grid_id, r.fields::jsonb ->> 'kind',
         greatest(least((r.fields::jsonb ->> 'occurred_at_ms')::bigint, r.created_at), r.created_at - 259200000)
     FROM records r
     CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(r.fields::jsonb -> 'resident_ids') = 'array'
         THEN r.fields::jsonb -> 'resident_ids' ELSE '[]' END) AS j(resident_id)
     WHERE r.id = ANY($1) AND r.entity = 'service_log' AND NOT r.deleted
       AND jsonb_typeof(r.fields::jsonb -> 'occurred_at_ms') = 'number'
       AND jsonb_typeof(r.fields::jsonb -> 'kind') = 'string'
     ON CONFLICT DO NOTHING",
];

/// The advisory lock key under which rows are stamped with their seq.
const STAMP_LOCK: i64 = 0x6669_656c_6467; // "fieldg"

/// Times a push is tried when it collides with a concurrent one.
const ATTEMPTS: usize = 5;

fn pg(e: tokio_postgres::Error) -> StoreError {
    super::sql::pg_error(e)
}

fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    StoreError::internal(format!("postgres pool: {e}"))
}

/// Whether a failed transaction should simply be run again.
fn retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::T_R_SERIALIZATION_FAILURE
            || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Runs `$body` (which uses `$tx`, a [`PgTx`]) in a read-write transaction,
/// again when it collides with a concurrent one; the records it wrote get
/// their seq just before commit.
macro_rules! in_transaction {
    ($store:expr, $tx:ident => $body:expr) => {{
        let mut client = $store.client().await?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let tx = client.transaction().await.map_err(pg)?;
            let mut $tx = PgTx {
                tx,
                written: Vec::new(),
                collided: false,
            };
            let result = $body;
            let collided = $tx.collided;
            match result {
                Ok(v) => match $tx.stamp_and_commit().await {
                    Ok(()) => break Ok(v),
                    Err(e) if retryable(&e) && attempt < ATTEMPTS => {
                        tracing::debug!(attempt, "commit collided with another transaction; again");
                    }
                    Err(e) => break Err(pg(e).into()),
                },
                Err(_) if collided && attempt < ATTEMPTS => {
                    tracing::debug!(attempt, "transaction collided with another; again");
                }
                Err(e) => break Err(e),
            }
        }
    }};
}

/// Cancels the running statement of a request abandoned mid-way (the
/// statement timeout bounds it anyway).
pub(super) struct CancelOnDrop<'a> {
    token: Option<tokio_postgres::CancelToken>,
    metrics: &'a Metrics,
}

impl CancelOnDrop<'_> {
    pub(super) fn done(mut self) {
        self.token = None;
    }
}

impl Drop for CancelOnDrop<'_> {
    fn drop(&mut self) {
        if let Some(token) = self.token.take() {
            self.metrics.stopped_calls.fetch_add(1, Ordering::Relaxed);
            tracing::info!("request abandoned: its database work is cancelled");
            tokio::spawn(async move {
                let _ = token.cancel_query(NoTls).await;
            });
        }
    }
}

/// The PostgreSQL engine.
pub struct PgStore {
    pool: Pool,
    /// Counters.
    pub metrics: Metrics,
}

/// A record from a row of [`RECORD_COLUMNS`], read without panics.
fn record_of(r: &Row) -> StoreResult<Record> {
    super::lookups::record_of(&pg_row(r)?)
}

impl PgStore {
    /// Connects (a pool sized for the machine), creates or upgrades the
    /// schema, refuses a database made by a newer server. Every statement is
    /// bounded by `timeout` (a request that times out stops its work).
    pub async fn open(url: &str, timeout: Duration) -> Result<PgStore, String> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| format!("bad database URL: {e}"))?;
        // No JIT: the server's statements are short and index-driven, and
        // PostgreSQL compiles whenever its row estimate is high (an
        // expression index without statistics yet made a 4 ms timeline
        // query take 64 ms, 60 of them compiling).
        // Statements are prepared once per connection and planned for each
        // call's arguments (store/sql.rs: `Pg`).
        config.options(format!(
            "-c statement_timeout={} -c jit=off -c plan_cache_mode=force_custom_plan",
            timeout.as_millis()
        ));
        config.application_name("fieldgrid-server");
        let manager = Manager::from_config(
            config,
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let size = std::thread::available_parallelism().map_or(4, |n| n.get() * 4).max(8);
        let pool = Pool::builder(manager)
            .max_size(size)
            .build()
            .map_err(|e| format!("cannot build the database pool: {e}"))?;
        let store = PgStore {
            pool,
            metrics: Metrics::default(),
        };
        store.migrate().await?;
        Ok(store)
    }

    async fn migrate(&self) -> Result<(), String> {
        let mut client = self
            .pool
            .get()
            .await
            .map_err(|e| format!("cannot reach the database: {e}"))?;
        let tx = client.transaction().await.map_err(|e| e.to_string())?;
        // One server process migrates at a time.
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&(STAMP_LOCK + 1)])
            .await
            .map_err(|e| e.to_string())?;
        tx.batch_execute("CREATE TABLE IF NOT EXISTS schema_version (version integer NOT NULL)")
            .await
            .map_err(|e| e.to_string())?;
        let row = tx
            .query_opt("SELECT version FROM schema_version", &[])
            .await
            .map_err(|e| e.to_string())?;
        let mut version: i32 = match row {
            Some(r) => r.try_get(0).map_err(|e| e.to_string())?,
            None => {
                tx.execute("INSERT INTO schema_version VALUES (0)", &[])
                    .await
                    .map_err(|e| e.to_string())?;
                0
            }
        };
        if version as usize > MIGRATIONS.len() {
            return Err(format!(
                "the database has schema version {version}; this server knows up to {}: use a newer server",
                MIGRATIONS.len()
            ));
        }
        while let Some(step) = MIGRATIONS.get(version as usize) {
            tracing::info!(from = version, to = version + 1, "migrating the server database");
            tx.batch_execute(step).await.map_err(|e| e.to_string())?;
            version += 1;
        }
        tx.execute("UPDATE schema_version SET version = $1", &[&version])
            .await
            .map_err(|e| e.to_string())?;
        tx.commit().await.map_err(|e| e.to_string())
    }

    pub(super) async fn client(&self) -> StoreResult<deadpool_postgres::Object> {
        self.pool.get().await.map_err(pool_error)
    }

    pub(super) fn guard<'a>(&'a self, c: &deadpool_postgres::Object) -> CancelOnDrop<'a> {
        CancelOnDrop {
            token: Some(c.cancel_token()),
            metrics: &self.metrics,
        }
    }

    pub(super) async fn transact<J: TxJob>(&self, job: J) -> Result<J::Output, J::Error> {
        in_transaction!(self, tx => job.run(&mut tx).await)
    }

    pub(super) async fn save_records(&self, records: Vec<Record>, now: i64) -> StoreResult<()> {
        // In batches, each one statement per table (bulk building writes
        // millions of records).
        for batch in records.chunks(5_000) {
            in_transaction!(self, tx => tx.save_many(batch, now).await)?;
        }
        Ok(())
    }

    pub(super) async fn analyze(&self) -> StoreResult<()> {
        self.client().await?.batch_execute("ANALYZE").await.map_err(pg)
    }
}

/// A push or a centre action inside a PostgreSQL transaction.
struct PgTx<'t> {
    tx: deadpool_postgres::Transaction<'t>,
    /// Records written, stamped with their seq before commit.
    written: Vec<String>,
    /// A statement failed because a concurrent transaction got there first:
    /// the whole transaction is worth running again.
    collided: bool,
}

impl PgTx<'_> {
    /// Rebuilds the visit-coverage rows of these residents and service logs.
    async fn refresh_care(&mut self, ids: &[String]) -> StoreResult<()> {
        for sql in REFRESH_CARE {
            self.tx.execute(sql, &[&ids]).await.map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    fn fail(&mut self, e: tokio_postgres::Error) -> StoreError {
        if retryable(&e) {
            self.collided = true;
        }
        pg(e)
    }

    /// Stamps the rows written with their seq, in commit order, and commits.
    async fn stamp_and_commit(self) -> Result<(), tokio_postgres::Error> {
        if !self.written.is_empty() {
            self.tx
                .execute("SELECT pg_advisory_xact_lock($1)", &[&STAMP_LOCK])
                .await?;
            self.tx
                .execute(
                    "UPDATE records SET seq = nextval('records_seq') WHERE id = ANY($1)",
                    &[&self.written],
                )
                .await?;
        }
        self.tx.commit().await
    }
}

impl Tx for PgTx<'_> {
    async fn records(&mut self, ids: &[String]) -> StoreResult<Vec<Record>> {
        let ids = ids.to_vec();
        let rows = self
            .tx
            .query(
                &format!("SELECT {RECORD_COLUMNS} FROM records WHERE id = ANY($1) FOR UPDATE"),
                &[&ids],
            )
            .await
            .map_err(|e| self.fail(e))?;
        rows.iter().map(record_of).collect()
    }

    async fn receipt(&mut self, op_id: &str) -> StoreResult<Option<StoredReceipt>> {
        checks::receipt(&mut Pg::Tx(&self.tx), op_id).await
    }

    async fn save_receipt(&mut self, r: &StoredReceipt, now: i64) -> StoreResult<()> {
        let json = serde_json::to_string(&r.receipt)?;
        self.tx
            .execute(
                "INSERT INTO receipts (op_id, account_id, device_id, receipt, created_at) VALUES ($1, $2, $3, $4, $5)",
                &[&r.receipt.op_id, &r.account_id, &r.device_id, &json, &now],
            )
            .await
            .map_err(|e| self.fail(e))?;
        Ok(())
    }

    async fn write(&mut self, w: &Write, now: i64) -> StoreResult<()> {
        match w {
            Write::Record(rec) => {
                self.tx
                    .execute(
                        "INSERT INTO records (id, entity, grid_id, version, seq, deleted, fields, field_versions, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, NULL, $5, $6, $7, $8, $8)
                         ON CONFLICT (id) DO UPDATE SET version = $4, seq = NULL, deleted = $5, fields = $6,
                           field_versions = $7, updated_at = $8",
                        &[
                            &rec.id,
                            &rec.entity,
                            &rec.grid_id,
                            &rec.version,
                            &rec.deleted,
                            &rec.fields_json(),
                            &rec.field_versions_json(),
                            &now,
                        ],
                    )
                    .await
                    .map_err(|e| self.fail(e))?;
                if !self.written.contains(&rec.id) {
                    self.written.push(rec.id.clone());
                }
                if rec.entity == "resident" || rec.entity == "service_log" {
                    self.refresh_care(std::slice::from_ref(&rec.id)).await?;
                }
                if rec.entity == "incident" {
                    let new = (!rec.deleted).then(|| IncidentRow::of(rec));
                    self.move_months(std::slice::from_ref(&rec.id), new.into_iter().collect())
                        .await?;
                    if rec.deleted {
                        self.tx
                            .execute("DELETE FROM incidents WHERE id = $1", &[&rec.id])
                            .await
                            .map_err(|e| self.fail(e))?;
                    } else {
                        let row = IncidentRow::of(rec);
                        self.tx
                            .execute(
                                "INSERT INTO incidents (id, grid_id, sub_district, community, category, status, department,
                                   deadline_at, reported_at, finished_at)
                                 SELECT $1, $2, coalesce(g.sub_district, ''), coalesce(g.community, ''), $3, $4, $5, $6, $7, $8
                                 FROM (SELECT 1) one LEFT JOIN grids g ON g.id = $2
                                 ON CONFLICT (id) DO UPDATE SET category = $3, status = $4, department = $5,
                                   deadline_at = $6, reported_at = $7, finished_at = $8",
                                &[
                                    &row.id,
                                    &row.grid_id,
                                    &row.category,
                                    &row.status,
                                    &row.department,
                                    &row.deadline_at,
                                    &row.reported_at,
                                    &row.finished_at,
                                ],
                            )
                            .await
                            .map_err(|e| self.fail(e))?;
                    }
                }
                Ok(())
            }
            Write::PhotoRef(p) => self.photo_ref(p).await,
        }
    }

    async fn live_children(&mut self, id: &str) -> StoreResult<i64> {
        checks::live_children(&mut Pg::Tx(&self.tx), id).await
    }

    async fn id_number_taken(&mut self, grid: &str, id_number: &str, except: &str) -> StoreResult<bool> {
        checks::id_number_taken(&mut Pg::Tx(&self.tx), grid, id_number, except).await
    }

    async fn photos_of(&mut self, owner_id: &str) -> StoreResult<i64> {
        checks::photos_of(&mut Pg::Tx(&self.tx), owner_id).await
    }

    async fn department_exists(&mut self, id: &str) -> StoreResult<bool> {
        checks::department_exists(&mut Pg::Tx(&self.tx), id).await
    }
}

impl PgTx<'_> {
    /// Moves the monthly statistics by the change these incidents' writes
    /// make (their rows as stored now, against `new`), before the rows are
    /// written. Keys are applied in order, so concurrent writers lock them
    /// in the same order.
    async fn move_months(&mut self, ids: &[String], new: Vec<IncidentRow>) -> StoreResult<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let old: Vec<IncidentRow> = self
            .tx
            .query(
                "SELECT id, grid_id, category, status, department, deadline_at, reported_at, finished_at
                 FROM incidents WHERE id = ANY($1)",
                &[&ids],
            )
            .await
            .map_err(|e| self.fail(e))?
            .iter()
            .map(|r| {
                let r = pg_row(r)?;
                Ok(IncidentRow {
                    id: r.text(0)?,
                    grid_id: r.text(1)?,
                    category: r.text(2)?,
                    status: r.text(3)?,
                    department: r.opt_text(4)?,
                    deadline_at: r.opt_int(5)?,
                    reported_at: r.int(6)?,
                    finished_at: r.opt_int(7)?,
                })
            })
            .collect::<StoreResult<_>>()?;
        // Per grid and per category, each in key order (concurrent writers
        // lock rows in the same order).
        let old: HashMap<&str, &IncidentRow> = old.iter().map(|r| (r.id.as_str(), r)).collect();
        let new: HashMap<&str, &IncidentRow> = new.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut by_grid: BTreeMap<(String, String), Contribution> = BTreeMap::new();
        let mut by_category: BTreeMap<(String, String), Contribution> = BTreeMap::new();
        for id in ids {
            let (before, after) = (old.get(id.as_str()).copied(), new.get(id.as_str()).copied());
            for (month, grid, category, d) in month_deltas(before, after) {
                let g = by_grid.entry((month.clone(), grid)).or_default();
                *g = g.plus(d);
                let c = by_category.entry((month, category)).or_default();
                *c = c.plus(d);
            }
        }
        for (table, column, sums) in [
            ("incident_months", "grid_id", by_grid),
            ("incident_category_months", "category", by_category),
        ] {
            let sums: Vec<_> = sums.into_iter().filter(|(_, d)| !d.is_zero()).collect();
            if sums.is_empty() {
                continue;
            }
            let months: Vec<&str> = sums.iter().map(|((m, _), _)| m.as_str()).collect();
            let keys: Vec<&str> = sums.iter().map(|((_, k), _)| k.as_str()).collect();
            let reported: Vec<i64> = sums.iter().map(|(_, d)| d.reported).collect();
            let fwd: Vec<i64> = sums.iter().map(|(_, d)| d.finished_with_deadline).collect();
            let fot: Vec<i64> = sums.iter().map(|(_, d)| d.finished_on_time).collect();
            self.tx
                .execute(
                    &format!(
                        "INSERT INTO {table} AS m (month, {column}, reported, finished_with_deadline, finished_on_time)
                         SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::int8[], $5::int8[])
                         ON CONFLICT (month, {column}) DO UPDATE SET reported = m.reported + excluded.reported,
                           finished_with_deadline = m.finished_with_deadline + excluded.finished_with_deadline,
                           finished_on_time = m.finished_on_time + excluded.finished_on_time"
                    ),
                    &[&months, &keys, &reported, &fwd, &fot],
                )
                .await
                .map_err(|e| self.fail(e))?;
        }
        Ok(())
    }

    /// Saves records as they are, a statement per table.
    async fn save_many(&mut self, records: &[Record], now: i64) -> StoreResult<()> {
        let ids: Vec<&str> = records.iter().map(|r| r.id.as_str()).collect();
        let entities: Vec<&str> = records.iter().map(|r| r.entity.as_str()).collect();
        let grids: Vec<&str> = records.iter().map(|r| r.grid_id.as_str()).collect();
        let versions: Vec<i64> = records.iter().map(|r| r.version).collect();
        let deleted: Vec<bool> = records.iter().map(|r| r.deleted).collect();
        let fields: Vec<String> = records.iter().map(Record::fields_json).collect();
        let versions_of_fields: Vec<String> = records.iter().map(Record::field_versions_json).collect();
        self.tx
            .execute(
                "INSERT INTO records (id, entity, grid_id, version, seq, deleted, fields, field_versions, created_at, updated_at)
                 SELECT u.id, u.entity, u.grid_id, u.version, NULL, u.deleted, u.fields, u.fv, $8, $8
                 FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::bool[], $6::text[], $7::text[])
                   AS u(id, entity, grid_id, version, deleted, fields, fv)
                 ON CONFLICT (id) DO UPDATE SET version = excluded.version, seq = NULL, deleted = excluded.deleted,
                   fields = excluded.fields, field_versions = excluded.field_versions, updated_at = excluded.updated_at",
                &[&ids, &entities, &grids, &versions, &deleted, &fields, &versions_of_fields, &now],
            )
            .await
            .map_err(|e| self.fail(e))?;
        let rows: Vec<IncidentRow> = records
            .iter()
            .filter(|r| r.entity == "incident" && !r.deleted)
            .map(IncidentRow::of)
            .collect();
        let incident_ids: Vec<String> = records
            .iter()
            .filter(|r| r.entity == "incident")
            .map(|r| r.id.clone())
            .collect();
        self.move_months(&incident_ids, rows.clone()).await?;
        let care_ids: Vec<String> = records
            .iter()
            .filter(|r| r.entity == "resident" || r.entity == "service_log")
            .map(|r| r.id.clone())
            .collect();
        if !care_ids.is_empty() {
            self.refresh_care(&care_ids).await?;
        }
        if !rows.is_empty() {
            let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
            let grids: Vec<&str> = rows.iter().map(|r| r.grid_id.as_str()).collect();
            let categories: Vec<&str> = rows.iter().map(|r| r.category.as_str()).collect();
            let statuses: Vec<&str> = rows.iter().map(|r| r.status.as_str()).collect();
            let departments: Vec<Option<&str>> = rows.iter().map(|r| r.department.as_deref()).collect();
            let deadlines: Vec<Option<i64>> = rows.iter().map(|r| r.deadline_at).collect();
            let reported: Vec<i64> = rows.iter().map(|r| r.reported_at).collect();
            let finished: Vec<Option<i64>> = rows.iter().map(|r| r.finished_at).collect();
            self.tx
                .execute(
                    "INSERT INTO incidents (id, grid_id, sub_district, community, category, status, department,
                       deadline_at, reported_at, finished_at)
                     SELECT u.id, u.grid_id, coalesce(g.sub_district, ''), coalesce(g.community, ''), u.category, u.status,
                       u.department, u.deadline_at, u.reported_at, u.finished_at
                     FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::int8[], $7::int8[], $8::int8[])
                       AS u(id, grid_id, category, status, department, deadline_at, reported_at, finished_at)
                     LEFT JOIN grids g ON g.id = u.grid_id
                     ON CONFLICT (id) DO UPDATE SET category = excluded.category, status = excluded.status,
                       department = excluded.department, deadline_at = excluded.deadline_at,
                       reported_at = excluded.reported_at, finished_at = excluded.finished_at",
                    &[
                        &ids,
                        &grids,
                        &categories,
                        &statuses,
                        &departments,
                        &deadlines,
                        &reported,
                        &finished,
                    ],
                )
                .await
                .map_err(|e| self.fail(e))?;
        }
        self.written.extend(records.iter().map(|r| r.id.clone()));
        Ok(())
    }

    async fn photo_ref(&mut self, p: &PhotoRef) -> StoreResult<()> {
        self.tx
            .execute(
                "INSERT INTO photo_refs (photo_id, sha256, grid_id, size, incident_id, account_id, owner_id)
                 VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
                &[
                    &p.photo_id,
                    &p.sha256,
                    &p.grid_id,
                    &p.size,
                    &p.incident_id,
                    &p.account_id,
                    &p.owner_id,
                ],
            )
            .await
            .map_err(|e| self.fail(e))?;
        if let Some(incident) = &p.incident_id {
            self.tx
                .execute(
                    &format!(
                        "UPDATE incidents SET complete = false
                         WHERE id = $1 AND NOT (SELECT {BACKED} FROM photo_refs p WHERE p.photo_id = $2)"
                    ),
                    &[incident, &p.photo_id],
                )
                .await
                .map_err(|e| self.fail(e))?;
        }
        Ok(())
    }
}
