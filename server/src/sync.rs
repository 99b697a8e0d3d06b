//! Push (operations applied at most once, per-operation receipts) and pull
//! (changes in the caller's scope after a cursor). What is decided is in
//! `decide.rs`; how it is stored, in `store/`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use std::collections::HashMap;

use fieldgrid_domain::{rules, wire};
use fieldgrid_protocol::{ChangesResponse, ProblemsRequest, PushRequest, PushResponse, Role, codes, limits};
use serde::Deserialize;

use crate::AppState;
use crate::caller::Caller;
use crate::error::{ApiError, ApiJson, ApiQuery, ApiResult, safe_integer};
use crate::records::Record;
use crate::store::{ALL_GRIDS, ReportedProblem};

/// `POST /v1/sync/push`: every operation gets a receipt; a rejected one
/// changes nothing and never blocks the others. The whole batch commits
/// before the answer is sent, so a lost answer is repaired by resending.
pub async fn push(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(req): ApiJson<PushRequest, { limits::PUSH_MAX_BYTES }>,
) -> ApiResult<Json<PushResponse>> {
    caller.require(&[Role::Worker])?;
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
        .position(|op| !safe_integer(op.created_at_ms) || op.base_version.is_some_and(|v| !(0..=MAX_SAFE).contains(&v)))
    {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            codes::BAD_REQUEST,
            format!("operations[{i}]: times are within ±(2^53 - 1), versions 0 to 2^53 - 1"),
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
    let receipts = state.store.push(&caller, req.operations, now).await?;
    tracing::debug!(operations = count, "push applied");
    Ok(Json(PushResponse {
        receipts,
        server_time_ms: now,
    }))
}

/// The largest integer JSON carries exactly (I-JSON).
const MAX_SAFE: i64 = (1 << 53) - 1;

/// Largest problem report body.
const PROBLEMS_MAX_BYTES: usize = 64 * 1024;

/// `POST /v1/sync/problems`: records the caller's phone pulled and could not
/// apply (SYNC.md invariant 13). Only reports of records in the caller's
/// grids, at versions the server has stored, are kept: a device cannot make
/// the centre's list name records it may not see, or invent some. Answers
/// how many were kept.
pub async fn problems(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiJson(req): ApiJson<ProblemsRequest, PROBLEMS_MAX_BYTES>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(&[Role::Worker])?;
    if req.problems.len() > limits::PROBLEMS_PER_REPORT {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            codes::TOO_LARGE,
            format!("at most {} problems per report", limits::PROBLEMS_PER_REPORT),
        ));
    }
    for (i, p) in req.problems.iter().enumerate() {
        let field_ok = p.field.as_deref().is_none_or(wire::is_field_path);
        if !rules::is_record_id(&p.entity_id)
            || !safe_integer(p.version)
            || ![codes::UNREADABLE, codes::NOT_APPLIED].contains(&p.code.as_str())
            || !field_ok
        {
            return Err(ApiError::bad_request(format!(
                "problems[{i}]: a record id, its version, a code (unreadable or not_applied) and a field path"
            )));
        }
    }
    let ids = req.problems.iter().map(|p| p.entity_id.clone()).collect();
    let records: HashMap<String, Record> = state
        .store
        .records(ids)
        .await?
        .into_iter()
        .map(|r| (r.id.clone(), r))
        .collect();
    let now = state.now_ms();
    let kept: Vec<ReportedProblem> = req
        .problems
        .into_iter()
        .filter_map(|p| {
            let r = records.get(&p.entity_id)?;
            let known = r.entity == p.entity && caller.may_access(&r.grid_id) && (1..=r.version).contains(&p.version);
            known.then(|| ReportedProblem {
                entity_id: p.entity_id,
                version: p.version,
                device_id: caller.device_id.clone(),
                account_id: caller.account_id.clone(),
                entity: p.entity,
                grid_id: r.grid_id.clone(),
                code: p.code,
                field: p.field,
                reported_at_ms: now,
            })
        })
        .collect();
    let n = kept.len();
    if n > 0 {
        tracing::warn!(records = n, "a phone set aside records it could not apply");
        state.store.add_problems(kept).await?;
    }
    Ok(Json(serde_json::json!({ "kept": n })))
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
    if caller.wipe.is_some() {
        // No more data for a phone that is to be wiped (its pushes are still
        // taken: nothing captured is lost).
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            codes::WIPE_REQUESTED,
            "this device is to be wiped",
        ));
    }
    let after = q.after.unwrap_or(0);
    if !safe_integer(after) {
        return Err(ApiError::bad_request("after is a cursor from a previous page"));
    }
    let limit = q.limit.unwrap_or(500);
    if !(1..=limits::PULL_MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!(
            "limit is 1 to {} changes",
            limits::PULL_MAX_LIMIT
        )));
    }
    let scope: Vec<String> = match &q.grid {
        Some(g) if !caller.may_access(g) => {
            return Err(ApiError::forbidden("the grid is not assigned to this account"));
        }
        Some(g) => vec![g.clone()],
        None => caller.grids.iter().cloned().chain([ALL_GRIDS.to_owned()]).collect(),
    };
    let now = state.now_ms();
    let (changes, more) = state
        .store
        .changes(scope, after, limit as usize, PULL_PAGE_BYTES)
        .await?;
    Ok(Json(ChangesResponse {
        next_after: changes.last().map_or(after, |c| c.seq),
        changes,
        more,
        server_time_ms: now,
    }))
}
