//! Accounts and devices for district IT and the centre: list accounts,
//! disable and enable them, reset a password, list an account's devices with
//! their last contact, revoke a device, ask a lost or retired phone to wipe
//! itself; and the audit log. Operators manage workers' and departments'
//! accounts; district IT (`admin`) manages every account and reads the log.
//! Every change is written to the audit log.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use fieldgrid_protocol::Role;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::store::{AccountInfo, AuditEntry, DeviceInfo, WipeMode};

/// Writes a line to the audit log for an action by `caller`.
pub async fn record(
    state: &AppState,
    caller: &Caller,
    addr: Option<ClientAddr>,
    action: &str,
    target: Option<&str>,
    detail: Value,
) -> ApiResult<()> {
    state
        .store
        .audit(&AuditEntry {
            id: 0,
            at_ms: state.now_ms(),
            actor: caller.account_id.clone(),
            role: caller.role.as_str().to_owned(),
            action: action.to_owned(),
            target: target.map(str::to_owned),
            detail,
            address: addr.map(|a| a.0.to_string()),
        })
        .await
}

/// The account `id`, if the caller may manage it: district IT any,
/// operators workers' and departments' (404 otherwise: nothing revealed).
async fn managed(state: &AppState, caller: &Caller, id: &str) -> ApiResult<AccountInfo> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let account = state
        .store
        .account(id)
        .await?
        .ok_or_else(|| ApiError::not_found("no such account"))?;
    if caller.role == Role::Operator && !matches!(account.role, Role::Worker | Role::Department) {
        return Err(ApiError::not_found("no such account"));
    }
    Ok(account)
}

/// `GET /v1/accounts`: the accounts the caller manages.
pub async fn list(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Json<Vec<AccountInfo>>> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let accounts = state.store.accounts().await?;
    Ok(Json(
        accounts
            .into_iter()
            .filter(|a| caller.role == Role::Admin || matches!(a.role, Role::Worker | Role::Department))
            .collect(),
    ))
}

/// `POST /v1/accounts/{id}/disable`: every session of the account ends at once.
pub async fn disable(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    addr: Option<axum::Extension<ClientAddr>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AccountInfo>> {
    managed(&state, &caller, &id).await?;
    if id == caller.account_id {
        return Err(ApiError::bad_request("an account cannot disable itself"));
    }
    state.store.set_disabled(&id, Some(state.now_ms())).await?;
    record(
        &state,
        &caller,
        addr.map(|a| a.0),
        "disable_account",
        Some(&id),
        json!({}),
    )
    .await?;
    Ok(Json(managed(&state, &caller, &id).await?))
}

/// `POST /v1/accounts/{id}/enable`.
pub async fn enable(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    addr: Option<axum::Extension<ClientAddr>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AccountInfo>> {
    managed(&state, &caller, &id).await?;
    state.store.set_disabled(&id, None).await?;
    record(
        &state,
        &caller,
        addr.map(|a| a.0),
        "enable_account",
        Some(&id),
        json!({}),
    )
    .await?;
    Ok(Json(managed(&state, &caller, &id).await?))
}

/// Body of a password reset.
#[derive(Debug, Deserialize)]
pub struct PasswordRequest {
    /// The new password (at least 8 characters).
    pub password: String,
}

/// `POST /v1/accounts/{id}/password`: a new password; every old session ends.
pub async fn reset_password(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    addr: Option<axum::Extension<ClientAddr>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<PasswordRequest>,
) -> ApiResult<StatusCode> {
    let account = managed(&state, &caller, &id).await?;
    let password = req.password;
    let hash = tokio::task::spawn_blocking(move || {
        crate::auth::hash_password(&account.username, &password, &argon2::Argon2::default())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::bad_request)?;
    state.store.set_password(&id, &hash).await?;
    record(
        &state,
        &caller,
        addr.map(|a| a.0),
        "reset_password",
        Some(&id),
        json!({}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/accounts/{id}/devices`: the devices the account signed in
/// from, last contact first.
pub async fn devices(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<DeviceInfo>>> {
    managed(&state, &caller, &id).await?;
    Ok(Json(state.store.devices(&id).await?))
}

/// `POST /v1/accounts/{id}/devices/{device}/revoke`: the device's sessions
/// end and it cannot sign in again.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    addr: Option<axum::Extension<ClientAddr>>,
    ApiPath((id, device)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    managed(&state, &caller, &id).await?;
    if !state.store.revoke_device(&id, &device, state.now_ms()).await? {
        return Err(ApiError::not_found("no such device"));
    }
    record(
        &state,
        &caller,
        addr.map(|a| a.0),
        "revoke_device",
        Some(&id),
        json!({"device": device}),
    )
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of a wipe request.
#[derive(Debug, Deserialize)]
pub struct WipeRequest {
    /// `wipe` (a lost phone: erase at once) or `send_then_wipe` (a phone
    /// being retired: push what waits, then erase).
    pub mode: WipeMode,
}

/// `POST /v1/accounts/{id}/devices/{device}/wipe`: at its next contact the
/// device learns it (the `fieldgrid-wipe` header on any answer), wipes its
/// store, keys and photos, and confirms.
pub async fn wipe(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    addr: Option<axum::Extension<ClientAddr>>,
    ApiPath((id, device)): ApiPath<(String, String)>,
    ApiJson(req): ApiJson<WipeRequest>,
) -> ApiResult<Json<DeviceInfo>> {
    managed(&state, &caller, &id).await?;
    if !state.store.request_wipe(&id, &device, req.mode, state.now_ms()).await? {
        return Err(ApiError::not_found("no such device"));
    }
    record(
        &state,
        &caller,
        addr.map(|a| a.0),
        "wipe_device",
        Some(&id),
        json!({"device": device, "mode": req.mode.as_str()}),
    )
    .await?;
    let info = state
        .store
        .devices(&id)
        .await?
        .into_iter()
        .find(|d| d.device_id == device)
        .ok_or_else(|| ApiError::not_found("no such device"))?;
    Ok(Json(info))
}

/// Query of the audit log.
#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    after: Option<i64>,
    limit: Option<usize>,
}

/// `GET /v1/audit?after=&limit=`: the audit log, oldest first (district IT).
pub async fn audit(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEntry>>> {
    caller.require(&[Role::Admin])?;
    if q.after.is_some_and(|a| !crate::error::safe_integer(a)) {
        return Err(ApiError::bad_request("after is a position in the log"));
    }
    let limit = q.limit.unwrap_or(500);
    if !(1..=1_000).contains(&limit) {
        return Err(ApiError::bad_request("limit is 1 to 1000 lines"));
    }
    Ok(Json(state.store.audit_log(q.after.unwrap_or(0), limit).await?))
}
