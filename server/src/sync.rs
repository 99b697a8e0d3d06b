//! Push (operations applied at most once, per-operation receipts) and pull
//! (changes in the caller's scope after a cursor).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fieldgrid_core::catalogue::Catalogue;
use fieldgrid_core::model::{EventKind, IncidentStatus};
use fieldgrid_core::rules;
use fieldgrid_protocol::{
    Change, ChangesResponse, ConflictRecord, OpKind, Operation, Outcome, PushRequest, PushResponse, Receipt, Role,
    codes, limits,
};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult, safe_integer};
use crate::records::{self, FieldVersion, Record};
use crate::{AppState, db_call};

/// `POST /v1/sync/push`: every operation gets a receipt; a rejected one
/// changes nothing and never blocks the others. The whole batch commits
/// before the answer is sent, so a lost answer is repaired by resending.
pub async fn push(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(req): ApiJson<PushRequest, { limits::PUSH_MAX_BYTES }>,
) -> ApiResult<Json<PushResponse>> {
    if caller.role != Role::Worker {
        return Err(ApiError::forbidden("only grid workers push operations"));
    }
    if req.operations.len() > limits::PUSH_MAX_OPERATIONS {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::TOO_LARGE,
            format!("at most {} operations per push", limits::PUSH_MAX_OPERATIONS),
        ));
    }
    if let Some(i) = req
        .operations
        .iter()
        .position(|op| !safe_integer(op.created_at_ms) || op.base_version.is_some_and(|v| !safe_integer(v)))
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::BAD_REQUEST,
            format!("operations[{i}]: times and versions are within ±(2^53 - 1)"),
        ));
    }
    // An operation id is the key its receipt is stored and matched by: one
    // that is not a UUID cannot be answered per operation.
    if let Some(i) = req.operations.iter().position(|op| !rules::is_record_id(&op.op_id)) {
        return Err(ApiError::bad_request(format!(
            "operations[{i}].op_id must be a UUID in lower-case hyphenated form"
        )));
    }
    let now = state.now_ms();
    let count = req.operations.len();
    let response = db_call(&state, move |conn| {
        let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let catalogue = crate::catalogue::current(&tx)?;
        let mut receipts = Vec::with_capacity(req.operations.len());
        for op in &req.operations {
            receipts.push(receive(&mut tx, &caller, op, now, &catalogue)?);
        }
        tx.commit()?;
        Ok(PushResponse {
            receipts,
            server_time_ms: now,
        })
    })
    .await?;
    tracing::debug!(operations = count, "push applied");
    Ok(Json(response))
}

/// One operation: the stored receipt of a repeat by the same sender, or a
/// new decision, applied in a savepoint that a rejection rolls back.
fn receive(
    tx: &mut Transaction<'_>,
    caller: &Caller,
    op: &Operation,
    now: i64,
    catalogue: &Catalogue,
) -> ApiResult<Receipt> {
    let stored: Option<(String, String, String)> = tx
        .prepare_cached("SELECT receipt, account_id, device_id FROM receipts WHERE op_id = ?1")?
        .query_row([&op.op_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let Some((json, account, device)) = stored {
        // SYNC.md invariant 12: an idempotency key is its sender's. Someone
        // else's op_id is refused (and nothing is stored for it), never
        // answered with the first sender's receipt.
        if account != caller.account_id || device != caller.device_id {
            tracing::warn!(entity = %op.entity, "an operation id of another sender was reused");
            return Ok(Receipt {
                op_id: op.op_id.clone(),
                duplicate: false,
                outcome: reject(
                    codes::NOT_ALLOWED,
                    Some("op_id"),
                    "this operation id was used by another sender: make a new one",
                ),
            });
        }
        let mut receipt: Receipt = serde_json::from_str(&json)?;
        receipt.duplicate = true;
        return Ok(receipt);
    }
    let sp = tx.savepoint()?;
    let outcome = decide(&sp, caller, op, now, catalogue)?;
    if matches!(outcome, Outcome::Applied { .. }) {
        sp.commit()?;
    } else {
        drop(sp); // rolls back anything half-written
    }
    let receipt = Receipt {
        op_id: op.op_id.clone(),
        duplicate: false,
        outcome,
    };
    tx.prepare_cached(
        "INSERT INTO receipts (op_id, account_id, device_id, receipt, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(rusqlite::params![
        op.op_id,
        caller.account_id,
        caller.device_id,
        serde_json::to_string(&receipt)?,
        now
    ])?;
    Ok(receipt)
}

fn reject(code: &str, field: Option<&str>, message: impl Into<String>) -> Outcome {
    Outcome::Rejected {
        code: code.to_owned(),
        field: field.map(str::to_owned),
        message: message.into(),
    }
}

fn invalid(e: fieldgrid_core::ValidationError) -> Outcome {
    reject(e.code.as_str(), Some(&e.field), e.to_string())
}

/// A field name from a device, fit to be repeated in a receipt: the names
/// of the protocol are short snake_case words; anything else is not echoed.
fn field_name(name: &str) -> &str {
    if !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        name
    } else {
        "patch"
    }
}

/// Entities whose records devices may change after creating them.
const MUTABLE: [&str; 3] = ["place", "household", "resident"];

/// What a device may send, decided before anything is read: a known entity,
/// a well-formed record id, only fields the entity lets a device write, and
/// a bounded size.
fn admissible(op: &Operation) -> Option<Outcome> {
    if !rules::ENTITIES.contains(&op.entity.as_str()) {
        return Some(reject(codes::UNSUPPORTED, Some("entity"), "unknown entity"));
    }
    if !rules::is_record_id(&op.entity_id) {
        return Some(reject(
            "bad_format",
            Some("entity_id"),
            "a record id is a UUID in lower-case hyphenated form",
        ));
    }
    if let Some(field) = rules::refused_field(&op.entity, &op.patch) {
        let field = field_name(field);
        return Some(reject(
            codes::NOT_ALLOWED,
            Some(field),
            format!("a device may not write {field} of a {}", op.entity),
        ));
    }
    let size = serde_json::to_vec(&op.patch).map_or(usize::MAX, |v| v.len());
    if size > rules::RECORD_MAX_BYTES {
        return Some(reject(
            codes::TOO_LARGE,
            Some("patch"),
            format!("a record is at most {} bytes", rules::RECORD_MAX_BYTES),
        ));
    }
    None
}

fn decide(tx: &Connection, caller: &Caller, op: &Operation, now: i64, catalogue: &Catalogue) -> ApiResult<Outcome> {
    if let Some(refused) = admissible(op) {
        return Ok(refused);
    }
    let existing = records::load(tx, &op.entity_id)?;
    if let Some(e) = &existing
        && e.entity != op.entity
    {
        return Ok(reject(
            codes::NOT_ALLOWED,
            Some("entity_id"),
            "the id belongs to a record of another entity",
        ));
    }
    let stamp = |v: i64| {
        serde_json::to_value(FieldVersion {
            v,
            device: caller.device_id.clone(),
            op: op.op_id.clone(),
        })
        .unwrap_or(Value::Null)
    };
    match op.kind {
        OpKind::Create => {
            if existing.is_some() {
                return Ok(reject(codes::NOT_ALLOWED, Some("id"), "a record with this id exists"));
            }
            let mut fields = match rules::check(&op.entity, &op.patch, now, catalogue) {
                Ok(f) => f,
                Err(e) => return Ok(invalid(e)),
            };
            let grid = match grid_of_new(tx, &op.entity, &fields)? {
                Ok(g) => g,
                Err(outcome) => return Ok(outcome),
            };
            if !caller.may_write(&grid) {
                return Ok(reject(
                    codes::FORBIDDEN,
                    Some("grid_id"),
                    "the grid is not assigned to this account",
                ));
            }
            if let Err(outcome) = check_references(tx, caller, &op.entity, &fields, &grid)? {
                return Ok(outcome);
            }
            // The server's own fields.
            match op.entity.as_str() {
                "incident" => {
                    fields.insert("status".into(), json!(IncidentStatus::Draft.as_str()));
                    fields.insert("reported_at_ms".into(), json!(now));
                    fields.insert("reporter".into(), json!(caller.account_id));
                }
                "incident_event" => {
                    fields.insert("at_ms".into(), json!(now));
                    fields.insert("server_at_ms".into(), json!(now));
                    fields.insert("actor".into(), json!(caller.account_id));
                    if let Err(outcome) = apply_event(tx, &fields, caller, now)? {
                        return Ok(outcome);
                    }
                }
                "photo" => {
                    let sha = fields.get("sha256").and_then(Value::as_str).unwrap_or_default();
                    let size = fields.get("size").and_then(Value::as_i64).unwrap_or(0);
                    tx.prepare_cached(
                        "INSERT INTO photo_refs (sha256, grid_id, size) VALUES (?1, ?2, ?3) ON CONFLICT DO NOTHING",
                    )?
                    .execute(rusqlite::params![sha, grid, size])?;
                }
                _ => {}
            }
            let field_versions: Map<String, Value> = fields.keys().map(|k| (k.clone(), stamp(1))).collect();
            let rec = Record {
                id: op.entity_id.clone(),
                entity: op.entity.clone(),
                grid_id: grid,
                version: 1,
                deleted: false,
                fields,
                field_versions,
            };
            records::save(tx, &rec, now)?;
            Ok(Outcome::Applied {
                version: 1,
                conflicts: vec![],
            })
        }
        OpKind::Update | OpKind::Delete => {
            let Some(mut rec) = existing else {
                return Ok(reject(
                    codes::UNKNOWN_RECORD,
                    Some("id"),
                    "the server has no such record",
                ));
            };
            if !caller.may_write(&rec.grid_id) {
                return Ok(reject(
                    codes::FORBIDDEN,
                    Some("grid_id"),
                    "the grid is not assigned to this account",
                ));
            }
            if rec.deleted {
                return Ok(reject(codes::NOT_ALLOWED, Some("id"), "the record has been deleted"));
            }
            if !MUTABLE.contains(&op.entity.as_str()) {
                return Ok(reject(
                    codes::NOT_ALLOWED,
                    Some("entity"),
                    "records of this entity cannot be changed",
                ));
            }
            rec.version += 1;
            if op.kind == OpKind::Delete {
                rec.deleted = true;
                records::save(tx, &rec, now)?;
                return Ok(Outcome::Applied {
                    version: rec.version,
                    conflicts: vec![],
                });
            }
            if op
                .patch
                .get("grid_id")
                .is_some_and(|g| g.as_str() != Some(rec.grid_id.as_str()))
            {
                return Ok(reject(
                    codes::NOT_ALLOWED,
                    Some("grid_id"),
                    "records do not move between grids",
                ));
            }
            let mut merged = rules::device_fields(&op.entity, &rec.fields);
            merged.extend(op.patch.clone());
            let checked = match rules::check(&op.entity, &merged, now, catalogue) {
                Ok(f) => f,
                Err(e) => return Ok(invalid(e)),
            };
            if let Err(outcome) = check_references(tx, caller, &op.entity, &checked, &rec.grid_id)? {
                return Ok(outcome);
            }
            let base = op.base_version.unwrap_or(0);
            let mut conflicts = Vec::new();
            for key in op.patch.keys() {
                let (old, new) = (rec.fields.get(key), checked.get(key));
                if old == new {
                    continue;
                }
                let last: Option<FieldVersion> = rec
                    .field_versions
                    .get(key)
                    .and_then(|v| serde_json::from_value(v.clone()).ok());
                if let Some(last) = last
                    && last.v > base
                    && last.device != caller.device_id
                {
                    // A concurrent edit from another device: this later one
                    // wins (server order), the replaced value is kept.
                    record_conflict(tx, &rec, key, old, new, &last.op, &op.op_id, now)?;
                    conflicts.push(key.clone());
                }
                rec.field_versions.insert(key.clone(), stamp(rec.version));
            }
            rec.fields = checked;
            records::save(tx, &rec, now)?;
            Ok(Outcome::Applied {
                version: rec.version,
                conflicts,
            })
        }
    }
}

/// The grid a new record belongs to: its own `grid_id`, or for a timeline
/// event or a photo, that of the record it belongs to (which must be of
/// the entity it names, and live).
fn grid_of_new(tx: &Connection, entity: &str, fields: &Map<String, Value>) -> ApiResult<Result<String, Outcome>> {
    let (field, parent_entity, parent) = match entity {
        "incident_event" => (
            "incident_id",
            "incident",
            fields.get("incident_id").and_then(Value::as_str),
        ),
        "photo" => {
            let owner = fields.get("owner");
            (
                "owner",
                owner
                    .and_then(|o| o.get("kind"))
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                owner.and_then(|o| o.get("id")).and_then(Value::as_str),
            )
        }
        _ => {
            return Ok(match fields.get("grid_id").and_then(Value::as_str) {
                Some(g) => Ok(g.to_owned()),
                None => Err(reject("required", Some("grid_id"), "grid_id is required")),
            });
        }
    };
    let Some(parent) = parent else {
        return Ok(Err(reject("required", Some(field), format!("{field} is required"))));
    };
    Ok(match records::load(tx, parent)? {
        Some(p) if !p.deleted && p.entity == parent_entity => Ok(p.grid_id),
        Some(p) if !p.deleted => Err(reject(
            "wrong_kind",
            Some(field),
            "the record it belongs to is of another kind",
        )),
        _ => Err(reject(
            codes::UNKNOWN_RECORD,
            Some(field),
            "the record it belongs to is not on the server",
        )),
    })
}

/// References to other records (a place's parent, a household's unit, a
/// resident's household: same grid; residents involved or served: a grid
/// the caller may write) name records of the right entity the server has.
fn check_references(
    tx: &Connection,
    caller: &Caller,
    entity: &str,
    fields: &Map<String, Value>,
    grid: &str,
) -> ApiResult<Result<(), Outcome>> {
    let (field, target, same_grid) = match entity {
        "place" => ("parent_id", "place", true),
        "household" => ("unit_id", "place", true),
        "resident" => ("household_id", "household", true),
        "incident" => ("involved_residents", "resident", false),
        "service_log" => ("resident_ids", "resident", false),
        _ => return Ok(Ok(())),
    };
    let ids: Vec<&str> = match fields.get(field) {
        Some(Value::String(id)) => vec![id.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    for id in ids {
        let found = records::load(tx, id)?;
        let refused = match found {
            None => Some(("unknown_reference", "refers to a record the server does not have")),
            Some(r) if r.entity != target => Some(("wrong_kind", "refers to a record of the wrong kind")),
            Some(r) if same_grid && r.grid_id != grid => Some(("other_grid", "refers to a record of another grid")),
            Some(r) if !caller.may_write(&r.grid_id) => Some(("other_grid", "refers to a record of another grid")),
            Some(_) => None,
        };
        if let Some((code, message)) = refused {
            return Ok(Err(reject(code, Some(field), format!("{field} {message}"))));
        }
    }
    Ok(Ok(()))
}

/// Applies a timeline event to its incident's status (transitions shared with
/// the device: `EventKind::next_status`).
pub fn apply_event(
    tx: &Connection,
    event: &Map<String, Value>,
    caller: &Caller,
    now: i64,
) -> ApiResult<Result<(), Outcome>> {
    let incident_id = event.get("incident_id").and_then(Value::as_str).unwrap_or_default();
    let kind = event.get("kind").and_then(Value::as_str).and_then(EventKind::parse);
    let (Some(mut incident), Some(kind)) = (records::load(tx, incident_id)?, kind) else {
        return Ok(Err(reject(
            codes::UNKNOWN_RECORD,
            Some("incident_id"),
            "no such incident",
        )));
    };
    let status = incident
        .fields
        .get("status")
        .and_then(Value::as_str)
        .and_then(IncidentStatus::parse)
        .unwrap_or(IncidentStatus::Draft);
    let Some(next) = kind.next_status(status) else {
        return Ok(Err(reject(
            codes::NOT_ALLOWED,
            Some("kind"),
            format!("{} is not allowed when {}", kind.as_str(), status.as_str()),
        )));
    };
    let f = &mut incident.fields;
    f.insert("status".into(), json!(next.as_str()));
    if kind == EventKind::Dispatched {
        f.insert(
            "department".into(),
            event.get("department").cloned().unwrap_or(Value::Null),
        );
        f.insert(
            "deadline_at_ms".into(),
            event.get("deadline_at_ms").cloned().unwrap_or(Value::Null),
        );
    }
    if matches!(
        next,
        IncidentStatus::Resolved | IncidentStatus::ResolvedOnSite | IncidentStatus::Closed
    ) && f.get("finished_at_ms").is_none_or(Value::is_null)
    {
        f.insert("finished_at_ms".into(), json!(now));
    }
    incident.version += 1;
    let stamp = serde_json::to_value(FieldVersion {
        v: incident.version,
        device: caller.device_id.clone(),
        op: String::new(),
    })?;
    for k in ["status", "department", "deadline_at_ms", "finished_at_ms"] {
        incident.field_versions.insert(k.into(), stamp.clone());
    }
    records::save(tx, &incident, now)?;
    Ok(Ok(()))
}

#[allow(clippy::too_many_arguments)]
fn record_conflict(
    tx: &Connection,
    rec: &Record,
    field: &str,
    losing: Option<&Value>,
    winning: Option<&Value>,
    losing_op: &str,
    winning_op: &str,
    now: i64,
) -> ApiResult<()> {
    let conflict = ConflictRecord {
        id: uuid::Uuid::now_v7().to_string(),
        entity: rec.entity.clone(),
        entity_id: rec.id.clone(),
        grid_id: rec.grid_id.clone(),
        field: field.to_owned(),
        winning_value: winning.cloned().unwrap_or(Value::Null),
        losing_value: losing.cloned().unwrap_or(Value::Null),
        winning_op: winning_op.to_owned(),
        losing_op: losing_op.to_owned(),
        at_ms: now,
    };
    let Value::Object(fields) = serde_json::to_value(&conflict)? else {
        return Err(ApiError::internal("conflict did not serialise to an object"));
    };
    tracing::info!(entity = %rec.entity, field, "concurrent edit recorded as a conflict");
    records::save(
        tx,
        &Record {
            id: conflict.id,
            entity: "conflict".into(),
            grid_id: rec.grid_id.clone(),
            version: 1,
            deleted: false,
            fields,
            field_versions: Map::new(),
        },
        now,
    )?;
    Ok(())
}

/// Soft byte bound of one pull page (the fields of its changes).
pub const PULL_PAGE_BYTES: usize = 4 * 1024 * 1024;

/// Query of `GET /v1/sync/changes`.
#[derive(Debug, Deserialize)]
pub struct ChangesQuery {
    after: Option<i64>,
    limit: Option<u32>,
    grid: Option<String>,
}

/// `GET /v1/sync/changes`: records changed after the cursor in the caller's
/// grids (or the one `grid` asked for), ordered by server sequence.
pub async fn changes(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ChangesQuery>,
) -> ApiResult<Json<ChangesResponse>> {
    let after = q.after.unwrap_or(0);
    if !crate::error::safe_integer(after) {
        return Err(ApiError::bad_request("after is a cursor from a previous page"));
    }
    let limit = q.limit.unwrap_or(500);
    if !(1..=limits::PULL_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit is 1 to {} changes",
            limits::PULL_MAX_LIMIT
        )));
    }
    let limit = limit as usize;
    let scope: Vec<String> = match &q.grid {
        Some(g) if !caller.may_access(g) => {
            return Err(ApiError::forbidden("the grid is not assigned to this account"));
        }
        Some(g) => vec![g.clone()],
        None => caller
            .grids
            .iter()
            .cloned()
            .chain([crate::catalogue::ALL_GRIDS.to_owned()])
            .collect(),
    };
    let now = state.now_ms();
    let response = db_call(&state, move |conn| {
        // One index range per grid, merged: each is already in seq order.
        let mut all: Vec<(Change, usize)> = Vec::new();
        let mut stmt = conn.prepare_cached(
            "SELECT seq, entity, id, grid_id, version, deleted, fields FROM records
             WHERE grid_id = ?1 AND seq > ?2 ORDER BY seq LIMIT ?3",
        )?;
        for grid in &scope {
            let rows = stmt.query_map(rusqlite::params![grid, after, limit as i64 + 1], |r| {
                let deleted = r.get::<_, i64>(5)? != 0;
                let fields: String = r.get(6)?;
                let size = fields.len();
                let change = Change {
                    seq: r.get(0)?,
                    entity: r.get(1)?,
                    entity_id: r.get(2)?,
                    grid_id: r.get(3)?,
                    version: r.get(4)?,
                    deleted,
                    fields: if deleted {
                        Map::new()
                    } else {
                        serde_json::from_str(&fields).unwrap_or_default()
                    },
                };
                Ok((change, size))
            })?;
            for row in rows {
                all.push(row?);
            }
        }
        all.sort_by_key(|(c, _)| c.seq);
        // A page is bounded by count and, softly, by bytes: at least one
        // change, then no more once PULL_PAGE_BYTES is reached.
        let mut bytes = 0;
        let mut fit = 0;
        for (_, size) in all.iter().take(limit) {
            if fit > 0 && bytes + size > PULL_PAGE_BYTES {
                break;
            }
            bytes += size;
            fit += 1;
        }
        let more = all.len() > fit;
        let all: Vec<Change> = all.into_iter().take(fit).map(|(c, _)| c).collect();
        Ok(ChangesResponse {
            next_after: all.last().map_or(after, |c| c.seq),
            changes: all,
            more,
            server_time_ms: now,
        })
    })
    .await?;
    Ok(Json(response))
}
