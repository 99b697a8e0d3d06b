//! The one storage layer the handlers use, with two engines run by the same
//! end-to-end suite: SQLite (embedded, the default: one writer and a pool of
//! readers over WAL) and PostgreSQL (a connection pool; several server
//! processes may share one database). SQL lives here, not in handlers.
//!
//! What the server decides is engine-free (`decide.rs`); the pieces both
//! engines share are the [`Tx`] trait a push or a centre action runs
//! against, and the loops over it ([`push_in`], [`centre_event_in`]). The
//! SQLite transaction answers at once (its work runs on a blocking thread and
//! is polled to completion there); the PostgreSQL one awaits the network.

mod accounts;
mod error;
pub use error::{Stoppable, StoreError, StoreResult};
mod checks;
mod incidents;
mod lookups;
mod photos;
pub mod postgres;
mod reads;
pub mod sql;
pub mod sqlite;

use std::future::Future;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

use fieldgrid_domain::catalogue::Catalogue;
use fieldgrid_domain::model::IncidentStatus;
use fieldgrid_protocol::{CentreIncident, Receipt, Role};
use serde_json::Value;

use crate::decide::{self, Write};
use crate::records::Record;

/// Grid id of records every worker receives (the catalogue).
pub const ALL_GRIDS: &str = "*";
/// Id of the catalogue record.
pub const CATALOGUE_ID: &str = "catalogue";

/// A receipt as stored, with its sender.
#[derive(Clone, Debug)]
pub struct StoredReceipt {
    /// The sending account.
    pub account_id: String,
    /// The sending device.
    pub device_id: String,
    /// The answer given.
    pub receipt: Receipt,
}

/// An account's sign-in details.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// Account id.
    pub account_id: String,
    /// Argon2 hash (PHC string).
    pub password_hash: String,
    /// Role.
    pub role: Role,
    /// A department account's department.
    pub department: Option<String>,
    /// The account is disabled.
    pub disabled: bool,
}

/// A token's session: who, from which device, until when, with which grids.
/// Tokens of a disabled account or a revoked device have none.
#[derive(Clone, Debug)]
pub struct Session {
    /// Account id.
    pub account_id: String,
    /// Device the token was issued to.
    pub device_id: String,
    /// Expiry (server ms).
    pub expires_at: i64,
    /// Role.
    pub role: Role,
    /// The department of a department account.
    pub department: Option<String>,
    /// Grids assigned now.
    pub grids: Vec<String>,
    /// Grids taken away within the drain period.
    pub draining: Vec<String>,
    /// A remote wipe asked of this device and not yet confirmed.
    pub wipe: Option<WipeMode>,
    /// When the device was last seen (server ms, to the minute).
    pub last_seen: i64,
}

pub use crate::caller::WipeMode;

/// An account as district IT and operators see it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AccountInfo {
    /// Id.
    pub id: String,
    /// User name.
    pub username: String,
    /// Role.
    pub role: Role,
    /// A department account's department.
    pub department: Option<String>,
    /// When it was disabled (server ms), if it is.
    pub disabled_at_ms: Option<i64>,
    /// The grids assigned now.
    pub grids: Vec<String>,
}

/// A device an account signed in from.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DeviceInfo {
    /// The device's own id.
    pub device_id: String,
    /// First sign-in (server ms).
    pub first_seen_ms: i64,
    /// Last contact (server ms, to the minute).
    pub last_seen_ms: i64,
    /// Revoked (server ms): its sessions ended, no new ones.
    pub revoked_at_ms: Option<i64>,
    /// A remote wipe asked for: `wipe` or `send_then_wipe`.
    pub wipe: Option<WipeMode>,
    /// When it was asked for (server ms).
    pub wipe_requested_at_ms: Option<i64>,
    /// When the device confirmed it (server ms).
    pub wiped_at_ms: Option<i64>,
}

impl DeviceInfo {
    /// `none`, `pending` or `done`.
    pub fn wipe_state(&self) -> &'static str {
        match (self.wipe, self.wiped_at_ms) {
            (None, _) => "none",
            (Some(_), None) => "pending",
            (Some(_), Some(_)) => "done",
        }
    }
}

/// One line of the audit log: who did what to what, when, from where.
/// Never carries personal data (ids, kinds and codes only).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AuditEntry {
    /// Position in the log (its cursor).
    #[serde(default)]
    pub id: i64,
    /// When (server ms).
    pub at_ms: i64,
    /// The acting account (`cli` for district IT's commands).
    pub actor: String,
    /// Its role.
    pub role: String,
    /// What was done (`dispatch`, `disable_account`, `wipe_device`, ...).
    pub action: String,
    /// The record or account acted on.
    pub target: Option<String>,
    /// Details without personal data (department, deadline, mode, ...).
    pub detail: Value,
    /// The client address, when over HTTP.
    pub address: Option<String>,
}

/// A record a device set aside, as the server keeps its report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportedProblem {
    /// The record.
    pub entity_id: String,
    /// The version the device could not apply.
    pub version: i64,
    /// The reporting device.
    pub device_id: String,
    /// Its account.
    pub account_id: String,
    /// The record's entity.
    pub entity: String,
    /// The record's grid.
    pub grid_id: String,
    /// `unreadable` or `not_applied`.
    pub code: String,
    /// Where reading failed (field names only).
    pub field: Option<String>,
    /// When the server received the report (server ms).
    pub reported_at_ms: i64,
}

/// A set-aside record as the centre sees it: one line per record version
/// and reason, with how many devices reported it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProblemSummary {
    /// The record's entity.
    pub entity: String,
    /// The record.
    pub entity_id: String,
    /// Its grid.
    pub grid_id: String,
    /// The version devices could not apply.
    pub version: i64,
    /// `unreadable` or `not_applied`.
    pub code: String,
    /// Where reading failed (field names only).
    pub field: Option<String>,
    /// Devices that reported it.
    pub devices: i64,
    /// First report (server ms).
    pub first_reported_ms: i64,
    /// Latest report (server ms).
    pub last_reported_ms: i64,
    /// The record's version now (newer than `version` once repaired).
    pub current_version: Option<i64>,
}

/// Whether the bytes of photo ref `p` are here as sent by an account that
/// made a photo record of them in the same grid (issue 21 item 9): only
/// then is the photo served through that record, and its incident
/// complete. A record naming another grid's hash gets nothing; two workers
/// of a grid attaching one photo share its bytes. Refs and bytes from
/// before senders were kept are the legacy account `''`. SQL for both
/// engines.
pub(crate) const BACKED: &str = "EXISTS (SELECT 1 FROM blob_senders s JOIN photo_refs q
       ON q.sha256 = s.sha256 AND q.account_id = s.account_id
     WHERE s.sha256 = p.sha256 AND q.grid_id = p.grid_id)";

/// A photo's bytes arrived whole (`$1`) from an account (`$2`, at `$3`):
/// the sender is kept, and so is the legacy sender when a record from before senders
/// were kept names the hash (such records are served as they were). SQL for
/// both engines.
pub(crate) const COMPLETE_SENDERS: [&str; 2] = [
    "INSERT INTO blob_senders (sha256, account_id, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
    "INSERT INTO blob_senders (sha256, account_id) SELECT $1, '' WHERE EXISTS
       (SELECT 1 FROM photo_refs WHERE sha256 = $1 AND account_id = '') ON CONFLICT DO NOTHING",
];

/// The bytes of photos an account sent whole since a time (`$1`, `$2`):
/// the daily cap of finished uploads. SQL for both engines.
pub(crate) const SENT_BYTES_SQL: &str = "SELECT CAST(coalesce(sum(b.size), 0) AS BIGINT) FROM blob_senders s
     JOIN blobs b ON b.sha256 = s.sha256 WHERE s.account_id = $1 AND s.created_at >= $2";

/// A receipt that refused its operation (SQL for both engines; the stored
/// receipt is the server's JSON, in which only the outcome key can stand
/// unescaped like this).
pub(crate) const REJECTED_RECEIPT: &str = r#"AND receipt LIKE '%"outcome":"rejected"%'"#;

/// How long a refused operation's receipt is kept.
pub const REJECTED_RECEIPT_RETENTION_MS: i64 = 7 * 24 * 3_600_000;

/// The centre's list of set-aside records, newest report first (`$1`: at
/// most this many lines). One statement for both engines.
pub(crate) const PROBLEMS_SQL: &str = "SELECT p.entity, p.entity_id, p.grid_id, p.version, p.code, p.field, count(*),
       min(p.reported_at), max(p.reported_at), r.version
     FROM record_problems p LEFT JOIN records r ON r.id = p.entity_id
     GROUP BY p.entity, p.entity_id, p.grid_id, p.version, p.code, p.field, r.version
     ORDER BY max(p.reported_at) DESC, p.entity_id LIMIT $1";

/// How long sign-ins under a key (an account name, a client address) are
/// locked after `failures` failures in a row: free for the first four, then
/// one second, doubling with each failure, at most 15 minutes.
pub fn lock_ms(failures: i64) -> i64 {
    if failures < 5 {
        0
    } else {
        (1_000i64 << (failures - 5).min(20)).min(15 * 60_000)
    }
}

/// Failed sign-ins under a lockout key (an account name, a client
/// address), as counted now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lockout {
    /// The key (`user:NAME`, `addr:IP`).
    pub key: String,
    /// Failures in a row.
    pub failures: i64,
    /// Locked until (server ms).
    pub locked_until: i64,
}

/// Failures older than this (the last one) are forgotten: a key starts
/// again from none.
pub const FAILURES_FORGOTTEN_MS: i64 = 24 * 3_600_000;

/// How long a device may still push to a grid taken from its account.
pub const DRAIN_MS: i64 = 7 * 24 * 3_600_000;

/// Filters of the centre's incident list.
#[derive(Clone, Debug, Default, serde::Deserialize)]
pub struct IncidentFilter {
    /// Only this status.
    pub status: Option<String>,
    /// Only this grid.
    pub grid: Option<String>,
    /// Only this sub-district (街道).
    pub sub_district: Option<String>,
    /// Only this community (社区).
    pub community: Option<String>,
    /// Only this category.
    pub category: Option<String>,
    /// Only this department.
    pub department: Option<String>,
    /// Only open incidents past their deadline (server time).
    #[serde(default)]
    pub overdue: bool,
}

impl IncidentFilter {
    /// Whether the query should name the open incidents in the words of
    /// their partial index (`incidents_open_deadline`, a few thousand rows
    /// instead of millions): overdue lists, and an open status in deadline
    /// order. (An open status newest first walks its own index in order.)
    pub fn via_open_index(&self, sort: IncidentSort) -> bool {
        let open_status = self.status.as_deref().is_some_and(|s| open_statuses().contains(&s));
        self.overdue || (open_status && sort == IncidentSort::Deadline)
    }
}

/// Order of the centre's incident list.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentSort {
    /// Newest report first.
    #[default]
    Reported,
    /// Earliest deadline first (incidents with a deadline only).
    Deadline,
}

/// Where a page of the incident list starts: after this (sort key, id).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IncidentCursor {
    /// The sort key of the last incident of the previous page.
    pub key: i64,
    /// Its id.
    pub id: String,
}

impl IncidentCursor {
    /// `key:id`, as the list hands it out.
    pub fn encode(&self) -> String {
        format!("{}:{}", self.key, self.id)
    }

    /// The cursor of `key:id`, if well-formed.
    pub fn parse(s: &str) -> Option<IncidentCursor> {
        let (key, id) = s.split_once(':')?;
        (id.len() <= 64).then_some(())?;
        Some(IncidentCursor {
            key: key.parse().ok()?,
            id: id.to_owned(),
        })
    }
}

/// The statuses still open (the core's rule), for SQL.
pub fn open_statuses() -> Vec<&'static str> {
    [
        IncidentStatus::Draft,
        IncidentStatus::Reported,
        IncidentStatus::Dispatched,
        IncidentStatus::Accepted,
        IncidentStatus::ResolvedOnSite,
        IncidentStatus::Resolved,
        IncidentStatus::Closed,
        IncidentStatus::Returned,
    ]
    .into_iter()
    .filter(IncidentStatus::is_open)
    .map(|s| s.as_str())
    .collect()
}

/// `status IN ('reported', ...)`: the open statuses written out, as the
/// partial index of open incidents is (a planner uses that index only for
/// a condition it can prove implies the index's own).
pub fn open_status_sql() -> String {
    let open: Vec<String> = open_statuses().iter().map(|s| format!("'{s}'")).collect();
    format!("status IN ({})", open.join(", "))
}

/// A centre list row from its columns.
#[allow(clippy::too_many_arguments)]
pub fn centre_incident(
    id: String,
    grid_id: String,
    category: String,
    status: String,
    department: Option<String>,
    deadline_at: Option<i64>,
    reported_at: i64,
    finished_at: Option<i64>,
    complete: bool,
    now: i64,
) -> CentreIncident {
    let open = IncidentStatus::parse(&status).is_some_and(|s| s.is_open());
    CentreIncident {
        overdue: open && deadline_at.is_some_and(|d| d < now),
        id,
        grid_id,
        category,
        status,
        department,
        deadline_at_ms: deadline_at,
        reported_at_ms: reported_at,
        finished_at_ms: finished_at,
        complete,
    }
}

/// What a push or a centre action reads and writes, in one transaction.
pub trait Tx: Send {
    /// The records with these ids that exist (any order).
    fn records(&mut self, ids: &[String]) -> impl Future<Output = StoreResult<Vec<Record>>> + Send;
    /// The stored receipt of an operation id.
    fn receipt(&mut self, op_id: &str) -> impl Future<Output = StoreResult<Option<StoredReceipt>>> + Send;
    /// Stores a receipt.
    fn save_receipt(&mut self, r: &StoredReceipt, now: i64) -> impl Future<Output = StoreResult<()>> + Send;
    /// Carries out a write.
    fn write(&mut self, w: &Write, now: i64) -> impl Future<Output = StoreResult<()>> + Send;
    /// Whether a department exists.
    fn department_exists(&mut self, id: &str) -> impl Future<Output = StoreResult<bool>> + Send;
    /// How many photo records name this record as their owner.
    fn photos_of(&mut self, owner_id: &str) -> impl Future<Output = StoreResult<i64>> + Send;
    /// How many live records a household or place still holds (residents,
    /// households, places).
    fn live_children(&mut self, id: &str) -> impl Future<Output = StoreResult<i64>> + Send;
    /// Whether another live resident of the grid has this ID number.
    fn id_number_taken(
        &mut self,
        grid: &str,
        id_number: &str,
        except: &str,
    ) -> impl Future<Output = StoreResult<bool>> + Send;
}

/// The catalogue in force: the published one when newer than the built-in.
pub fn catalogue_of(published: Option<&Record>) -> Catalogue {
    let builtin = Catalogue::builtin();
    published
        .and_then(|r| serde_json::from_value::<Catalogue>(Value::Object(r.fields.clone())).ok())
        .filter(|c| c.version > builtin.version)
        .unwrap_or(builtin)
}

/// Work a service runs in one storage transaction against either engine's
/// [`Tx`] (a push, a centre action). PostgreSQL runs it again when it
/// collides with a concurrent transaction, so it borrows what it works on.
pub trait TxJob: Send + Sync + 'static {
    /// What it gives.
    type Output: Send + 'static;
    /// How it fails: storage's errors convert into it.
    type Error: Stoppable + Send + 'static;
    /// Runs in `tx`; committed when it succeeds, rolled back when it fails.
    fn run<T: Tx>(&self, tx: &mut T) -> impl Future<Output = Result<Self::Output, Self::Error>> + Send;
}

/// Polls a future that never waits to its end: the SQLite engine's
/// transaction methods answer at once, so the shared async loops run to
/// completion on the blocking thread that holds the connection.
pub(crate) fn run_ready<F: Future>(f: F) -> StoreResult<F::Output> {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => Ok(v),
        std::task::Poll::Pending => Err(StoreError::internal("a SQLite transaction step waited")),
    }
}

/// Counters both engines keep.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Database work stopped because its request was abandoned (timed out,
    /// or the client went away): never started, or interrupted mid-way.
    pub stopped_calls: AtomicU64,
}

/// Where the server keeps its data.
#[derive(Clone, Debug)]
pub enum Location {
    /// A SQLite file in this folder.
    Sqlite(std::path::PathBuf),
    /// A PostgreSQL database (`postgres://user@host:port/db`).
    Postgres(String),
}

/// The storage the handlers use.
#[derive(Clone)]
pub enum Store {
    /// Embedded SQLite.
    Sqlite(Arc<sqlite::SqliteStore>),
    /// PostgreSQL.
    Postgres(Arc<postgres::PgStore>),
}

macro_rules! dispatch {
    ($self:ident, $s:ident => $e:expr) => {
        match $self {
            Store::Sqlite($s) => $e,
            Store::Postgres($s) => $e,
        }
    };
}

impl Store {
    /// Opens (creating or upgrading) the storage; refuses a database made by
    /// a newer server.
    pub async fn open(location: &Location, timeout: std::time::Duration) -> Result<Store, String> {
        Ok(match location {
            Location::Sqlite(dir) => Store::Sqlite(Arc::new(sqlite::SqliteStore::open(dir)?)),
            Location::Postgres(url) => Store::Postgres(Arc::new(postgres::PgStore::open(url, timeout).await?)),
        })
    }

    /// The counters.
    pub fn metrics(&self) -> &Metrics {
        dispatch!(self, s => &s.metrics)
    }

    /// Which engine, for logs.
    pub fn engine(&self) -> &'static str {
        match self {
            Store::Sqlite(_) => "sqlite",
            Store::Postgres(_) => "postgres",
        }
    }

    // ---- accounts, grids, departments ----

    /// Runs `job` in one write transaction.
    pub async fn transact<J: TxJob>(&self, job: J) -> Result<J::Output, J::Error> {
        dispatch!(self, s => s.transact(job).await)
    }

    // ---- centre ----

    // ---- records and the catalogue ----

    /// Saves records (bulk building and administration; the caller has
    /// checked them), each completed in its wire shape as a push's are:
    /// what is stored, phones read.
    pub async fn save_records(&self, mut records: Vec<Record>, now: i64) -> StoreResult<()> {
        for r in &mut records {
            decide::readable(r).map_err(StoreError::internal)?;
        }
        dispatch!(self, s => s.save_records(records, now).await)
    }

    // ---- photos ----

    // ---- housekeeping ----

    /// Refreshes the query planner's statistics (after a bulk load).
    pub async fn analyze(&self) -> StoreResult<()> {
        dispatch!(self, s => s.analyze().await)
    }
}

/// The data folder's SQLite file, or the PostgreSQL URL given.
pub fn location(data: &Path, database: Option<&str>) -> Location {
    match database {
        Some(url) => Location::Postgres(url.to_owned()),
        None => Location::Sqlite(data.to_path_buf()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each engine's steps are exactly the files of its migrations folder,
    /// in the order of their numbers, none missing: a new file that is not
    /// listed fails here.
    #[test]
    fn every_migration_file_is_a_step_in_order() {
        for (engine, steps) in [("sqlite", sqlite::MIGRATIONS), ("postgres", postgres::MIGRATIONS)] {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(engine);
            let mut files: Vec<_> = std::fs::read_dir(&dir)
                .unwrap()
                .map(|e| e.unwrap().file_name().into_string().unwrap())
                .collect();
            files.sort();
            assert_eq!(files.len(), steps.len(), "{engine}: {files:?}");
            for (i, (file, step)) in files.iter().zip(steps).enumerate() {
                assert!(
                    file.starts_with(&format!("{:02}_", i + 1)) && file.ends_with(".sql"),
                    "{engine}: {file}"
                );
                assert_eq!(
                    std::fs::read_to_string(dir.join(file)).unwrap(),
                    *step,
                    "{engine}: {file}"
                );
            }
        }
    }

    /// The partial index of open incidents (both engines' migrations) is
    /// written for exactly the statuses the core calls open.
    #[test]
    fn the_open_incidents_index_matches_the_cores_open_statuses() {
        let index = format!("WHERE {};", open_status_sql());
        for steps in [sqlite::MIGRATIONS, postgres::MIGRATIONS] {
            assert!(steps.iter().any(|s| s.contains(&index)), "{index}");
        }
    }

    #[test]
    fn lockouts_grow_from_the_fifth_failure_and_stop_at_fifteen_minutes() {
        assert_eq!((1..=4).map(lock_ms).sum::<i64>(), 0);
        assert_eq!(lock_ms(5), 1_000);
        assert_eq!(lock_ms(6), 2_000);
        assert_eq!(lock_ms(100), 15 * 60_000);
    }
}

/// What a coverage computation asks an engine: the residents a rule covers
/// (by tag or id), the service kinds that count, and the times.
#[derive(Clone, Debug)]
pub(crate) struct CoverageQuery {
    pub tags: Vec<String>,
    pub resident_ids: Vec<String>,
    pub kinds: Vec<String>,
    /// The period, `[start_ms, end_ms)`.
    pub start_ms: i64,
    pub end_ms: i64,
    /// Visits in `[end_ms, late_until_ms)` are late.
    pub late_until_ms: i64,
}

/// One grid's coverage, as an engine counts it.
#[derive(Clone, Debug, Default)]
pub(crate) struct CoverageRow {
    pub grid_id: String,
    pub residents: u64,
    pub on_time: u64,
    /// Not on time, visited in the late window.
    pub late: u64,
}

/// Counts of one grid and category over a period, as an engine reads them.
#[derive(Clone, Debug, Default)]
pub(crate) struct StatsRow {
    pub grid_id: String,
    pub sub_district: String,
    pub community: String,
    pub category: String,
    pub reported: u64,
    pub open: u64,
    pub overdue: u64,
    pub finished_with_deadline: u64,
    pub finished_on_time: u64,
}

/// Which lines of the audit log: ids strictly between `after` and
/// `before`, at most `limit`, oldest or newest first.
#[derive(Clone, Copy, Debug)]
pub struct AuditRange {
    /// Lines after this id.
    pub after: i64,
    /// Lines before this id.
    pub before: i64,
    /// At most this many.
    pub limit: usize,
    /// Newest first (the console) rather than oldest first (the API).
    pub newest_first: bool,
}

impl AuditRange {
    fn order(&self) -> &'static str {
        if self.newest_first { "DESC" } else { "ASC" }
    }
}
