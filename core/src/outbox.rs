//! The outbox: operations waiting for the server.
//!
//! Every capture writes its record and its operation(s) in one transaction
//! (SYNC.md invariant 1). An operation carries an id generated here (UUIDv7),
//! the entity and its id, and the server version the edit was based on. An
//! update carries only the fields that changed; a create carries the whole
//! record as it stands when the operation is read for sending (it is not on the
//! server yet, so its current state is exactly what the server must get; not
//! copying it at capture keeps a 100,000-row import's outbox a third the size).
//! An operation leaves the outbox only when the server's receipt has been
//! committed locally; a rejected operation stays, quarantined, with the
//! server's reason, and is what the record's status reports.

use rusqlite::{Connection, Transaction, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::model::SyncStatus;
use crate::store::Store;

/// What an operation does to its entity (the wire type: create, update, delete).
pub use fieldgrid_protocol::OpKind;

fn kind_str(kind: OpKind) -> &'static str {
    match kind {
        OpKind::Create => "create",
        OpKind::Update => "update",
        OpKind::Delete => "delete",
    }
}

fn parse_kind(s: &str) -> Result<OpKind> {
    match s {
        "create" => Ok(OpKind::Create),
        "update" => Ok(OpKind::Update),
        "delete" => Ok(OpKind::Delete),
        other => Err(Error::Internal(format!("unknown outbox kind {other}"))),
    }
}

/// Where an operation is in its trip to the server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpState {
    /// Waiting to be sent.
    Pending,
    /// Sent; the receipt has not been committed yet.
    Sending,
    /// Refused by the server; kept with its reason, not resent.
    Rejected,
}

/// The server's reason for refusing an operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rejection {
    /// Machine code.
    pub code: String,
    /// The field concerned, if any.
    pub field: Option<String>,
    /// Explanation, free of personal data.
    pub message: String,
}

/// One queued operation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Local order: operations are sent in this order.
    pub seq: i64,
    /// UUIDv7, the server's idempotency key.
    pub op_id: String,
    /// `resident`, `household`, `place`, `incident`, `incident_event`, `service_log`, `photo`.
    pub entity: String,
    /// The record's id.
    pub entity_id: String,
    /// Create, update or delete.
    pub kind: OpKind,
    /// The fields written (all for a create, the changed ones for an update).
    pub patch: Map<String, Value>,
    /// The server version the edit was based on (`None`: never on the server).
    pub base_version: Option<i64>,
    /// Device time of the edit.
    pub created_at_ms: i64,
    /// Trip state.
    pub state: OpState,
    /// Times sent.
    pub attempts: i64,
    /// The server's reason, once rejected.
    pub rejection: Option<Rejection>,
}

/// Counts of the outbox by state.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct OutboxCounts {
    /// Waiting to be sent.
    pub pending: u64,
    /// Sent, awaiting a receipt.
    pub sending: u64,
    /// Quarantined.
    pub rejected: u64,
}

/// What a queued operation does, as written by capture.
pub(crate) enum Change<'a> {
    /// A new record: its fields are read when the operation is sent.
    Create,
    /// Changed fields of a record based on server version `base`.
    Update {
        patch: &'a Map<String, Value>,
        base: Option<i64>,
    },
    /// A deletion of a record based on server version `base`.
    Delete { base: Option<i64> },
}

/// Queues an operation inside the caller's transaction; returns its id.
pub(crate) fn enqueue(
    tx: &Transaction<'_>,
    entity: &str,
    entity_id: &str,
    change: Change<'_>,
    now_ms: i64,
) -> Result<String> {
    let (kind, patch, base) = match change {
        Change::Create => (OpKind::Create, None, None),
        Change::Update { patch, base } => (OpKind::Update, Some(serde_json::to_string(patch)?), base),
        Change::Delete { base } => (OpKind::Delete, Some("{}".to_owned()), base),
    };
    let op_id = crate::new_id();
    tx.prepare_cached(
        "INSERT INTO outbox (op_id, entity, entity_id, kind, patch, base_version, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?
    .execute(params![op_id, entity, entity_id, kind_str(kind), patch, base, now_ms])?;
    Ok(op_id)
}

/// The fields of a record as they stand: the payload of a create operation.
fn snapshot(conn: &Connection, entity: &str, id: &str) -> Result<Map<String, Value>> {
    use crate::capture::{fields_of, load};
    match entity {
        "place" => fields_of(&load::place(conn, id)?),
        "household" => fields_of(&load::household(conn, id)?),
        "resident" => fields_of(&crate::capture::residents::resident_fields(conn, id)?),
        "incident" => fields_of(&load::incident(conn, id)?),
        "incident_event" => fields_of(&load::incident_event(conn, id)?),
        "service_log" => fields_of(&load::service_log(conn, id)?),
        "photo" => fields_of(&load::photo(conn, id)?),
        other => Err(Error::Internal(format!("no snapshot for entity {other}"))),
    }
}

/// The honest status of one record from its queued operations: rejected
/// wins over sending, sending over waiting.
pub(crate) fn record_status(conn: &Connection, entity_id: &str, server_version: Option<i64>) -> Result<SyncStatus> {
    // No ORDER BY ... LIMIT here: SQLite re-prepares such a statement after
    // every write to the table, which made each status read cost a parse.
    let mut stmt = conn.prepare_cached("SELECT state, last_error FROM outbox WHERE entity_id = ?1")?;
    let mut rows = stmt.query([entity_id])?;
    let (mut any, mut sending) = (false, false);
    while let Some(r) = rows.next()? {
        any = true;
        match r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)? {
            "rejected" => {
                let rejection: Rejection = match r.get::<_, Option<String>>(1)? {
                    Some(json) => serde_json::from_str(&json)?,
                    None => Rejection {
                        code: "rejected".into(),
                        field: None,
                        message: String::new(),
                    },
                };
                return Ok(SyncStatus::Rejected {
                    code: rejection.code,
                    field: rejection.field,
                    message: rejection.message,
                });
            }
            "sending" => sending = true,
            _ => {}
        }
    }
    let mut stmt = conn.prepare_cached("SELECT field FROM conflicts WHERE entity_id = ?1 AND seen = 0 ORDER BY at")?;
    let fields = stmt
        .query_map([entity_id], |r| r.get::<_, String>(0))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    if !fields.is_empty() {
        return Ok(SyncStatus::Conflict { fields });
    }
    Ok(match (any, sending, server_version) {
        (_, true, _) => SyncStatus::Sending,
        (true, false, _) => SyncStatus::OnlyOnDevice,
        (false, _, Some(_)) => SyncStatus::OnServer,
        (false, _, None) => SyncStatus::OnlyOnDevice,
    })
}

fn operation_from_row(conn: &Connection, r: &rusqlite::Row<'_>) -> Result<Operation> {
    let patch: Option<String> = r.get(5)?;
    let entity: String = r.get(2)?;
    let entity_id: String = r.get(3)?;
    let patch = match patch {
        Some(json) => serde_json::from_str(&json)?,
        None => snapshot(conn, &entity, &entity_id)?,
    };
    let state: String = r.get(8)?;
    let err: Option<String> = r.get(10)?;
    Ok(Operation {
        seq: r.get(0)?,
        op_id: r.get(1)?,
        entity,
        entity_id,
        kind: parse_kind(&r.get::<_, String>(4)?)?,
        patch,
        base_version: r.get(6)?,
        created_at_ms: r.get(7)?,
        state: match state.as_str() {
            "pending" => OpState::Pending,
            "sending" => OpState::Sending,
            _ => OpState::Rejected,
        },
        attempts: r.get(9)?,
        rejection: err.map(|e| serde_json::from_str(&e)).transpose()?,
    })
}

const OP_COLUMNS: &str =
    "seq, op_id, entity, entity_id, kind, patch, base_version, created_at, state, attempts, last_error";

impl Store {
    /// Operations not yet confirmed by the server, in the order they must be
    /// sent (rejected ones excluded), at most `limit`.
    pub fn pending_operations(&self, limit: u32) -> Result<Vec<Operation>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {OP_COLUMNS} FROM outbox WHERE state <> 'rejected' ORDER BY seq LIMIT ?1"
            ))?;
            let mut rows = stmt.query([limit])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(operation_from_row(c, r)?);
            }
            Ok(out)
        })
    }

    /// Quarantined operations with the server's reasons, oldest first.
    pub fn rejected_operations(&self) -> Result<Vec<Operation>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {OP_COLUMNS} FROM outbox WHERE state = 'rejected' ORDER BY seq"
            ))?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(operation_from_row(c, r)?);
            }
            Ok(out)
        })
    }

    /// How many operations are waiting, in flight, and quarantined.
    pub fn outbox_counts(&self) -> Result<OutboxCounts> {
        self.read(|c| {
            let mut counts = OutboxCounts::default();
            let mut stmt = c.prepare_cached("SELECT state, count(*) FROM outbox GROUP BY state")?;
            let mut rows = stmt.query([])?;
            while let Some(r) = rows.next()? {
                let n: i64 = r.get(1)?;
                let n = n.unsigned_abs();
                match r.get::<_, String>(0)?.as_str() {
                    "pending" => counts.pending = n,
                    "sending" => counts.sending = n,
                    _ => counts.rejected = n,
                }
            }
            Ok(counts)
        })
    }
}

/// How the records on this phone stand, counted the way each record's
/// [`SyncStatus`] is decided (drafts and deleted records are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// Records counted.
    pub records: u64,
    /// Confirmed by the server, nothing waiting.
    pub on_server: u64,
    /// Changes saved here, not yet sent.
    pub only_on_device: u64,
    /// Sent, no receipt yet.
    pub sending: u64,
    /// Refused by the server.
    pub rejected: u64,
    /// Concurrent edits not yet acknowledged.
    pub in_conflict: u64,
}

impl Store {
    /// Counts the records on this phone by sync status.
    pub fn status_counts(&self) -> Result<StatusCounts> {
        self.read(|c| {
            let mut counts = StatusCounts::default();
            for (table, live) in [
                ("places", "t.deleted_at IS NULL"),
                ("households", "t.deleted_at IS NULL"),
                ("residents", "t.deleted_at IS NULL"),
                ("incidents", "t.deleted_at IS NULL AND t.status <> 'draft'"),
                ("incident_events", "1"),
                ("service_logs", "t.deleted_at IS NULL"),
            ] {
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT CASE
                       WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.entity_id = t.id AND o.state = 'rejected') THEN 'rejected'
                       WHEN EXISTS (SELECT 1 FROM conflicts k WHERE k.entity_id = t.id AND k.seen = 0) THEN 'conflict'
                       WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.entity_id = t.id AND o.state = 'sending') THEN 'sending'
                       WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.entity_id = t.id) THEN 'local'
                       WHEN t.server_version IS NOT NULL THEN 'server'
                       ELSE 'local' END AS s, count(*)
                     FROM {table} t WHERE {live} GROUP BY s"
                ))?;
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    let n = r.get::<_, i64>(1)?.unsigned_abs();
                    counts.records += n;
                    match r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)? {
                        "rejected" => counts.rejected += n,
                        "conflict" => counts.in_conflict += n,
                        "sending" => counts.sending += n,
                        "server" => counts.on_server += n,
                        _ => counts.only_on_device += n,
                    }
                }
            }
            Ok(counts)
        })
    }
}
