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
use fieldgrid_protocol::Entity;

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
    /// The kind of record.
    pub entity: Entity,
    /// The record's id.
    pub entity_id: String,
    /// Create, update or delete.
    pub kind: OpKind,
    /// The fields an update wrote (the changed ones). Empty for a create,
    /// whose record is read as it stands when the operation is sent, and for
    /// a delete.
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
    entity: Entity,
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
    .execute(params![
        op_id,
        entity.as_str(),
        entity_id,
        kind_str(kind),
        patch,
        base,
        now_ms
    ])?;
    Ok(op_id)
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

fn parse_state(s: &str) -> Result<OpState> {
    match s {
        "pending" => Ok(OpState::Pending),
        "sending" => Ok(OpState::Sending),
        "rejected" => Ok(OpState::Rejected),
        other => Err(Error::Internal(format!("unknown outbox state {other}"))),
    }
}

fn operation_from_row(r: &rusqlite::Row<'_>) -> Result<Operation> {
    let patch: Option<String> = r.get(5)?;
    let entity: String = r.get(2)?;
    let entity = Entity::parse(&entity).ok_or_else(|| Error::Internal(format!("unknown outbox entity {entity}")))?;
    let entity_id: String = r.get(3)?;
    // A create's fields are read when it is sent (the push step).
    let patch = match patch {
        Some(json) => serde_json::from_str(&json)?,
        None => Map::new(),
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
        state: parse_state(&state)?,
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
                out.push(operation_from_row(r)?);
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
                out.push(operation_from_row(r)?);
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
                match parse_state(&r.get::<_, String>(0)?)? {
                    OpState::Pending => counts.pending = n,
                    OpState::Sending => counts.sending = n,
                    OpState::Rejected => counts.rejected = n,
                }
            }
            Ok(counts)
        })
    }
}
