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
use crate::store::{AccountInfo, AuditEntry, AuditRange, DeviceInfo, WipeMode};

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
        .await?;
    Ok(())
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
    Ok(Json(accounts_of(&state, &caller).await?))
}

/// The accounts the caller manages.
pub async fn accounts_of(state: &AppState, caller: &Caller) -> ApiResult<Vec<AccountInfo>> {
    caller.require(&[Role::Admin, Role::Operator])?;
    let accounts = state.store.accounts().await?;
    Ok(accounts
        .into_iter()
        .filter(|a| caller.role == Role::Admin || matches!(a.role, Role::Worker | Role::Department))
        .collect())
}

/// The account `id` with its devices, if the caller manages it.
pub async fn account_of(state: &AppState, caller: &Caller, id: &str) -> ApiResult<(AccountInfo, Vec<DeviceInfo>)> {
    let account = managed(state, caller, id).await?;
    Ok((account, state.store.devices(id).await?))
}

/// `POST /v1/accounts/{id}/disable`: every session of the account ends at once.
pub async fn disable(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    addr: Option<axum::Extension<ClientAddr>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AccountInfo>> {
    Ok(Json(set_enabled(&state, &caller, addr.map(|a| a.0), &id, false).await?))
}

/// `POST /v1/accounts/{id}/enable`.
pub async fn enable(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    addr: Option<axum::Extension<ClientAddr>>,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<AccountInfo>> {
    Ok(Json(set_enabled(&state, &caller, addr.map(|a| a.0), &id, true).await?))
}

/// Enables or disables an account (disabling ends its sessions at once).
pub async fn set_enabled(
    state: &AppState,
    caller: &Caller,
    addr: Option<ClientAddr>,
    id: &str,
    enabled: bool,
) -> ApiResult<AccountInfo> {
    managed(state, caller, id).await?;
    if !enabled && id == caller.account_id {
        return Err(ApiError::bad_request("an account cannot disable itself"));
    }
    let disabled_at = (!enabled).then(|| state.now_ms());
    state.store.set_disabled(id, disabled_at).await?;
    let action = if enabled { "enable_account" } else { "disable_account" };
    record(state, caller, addr, action, Some(id), json!({})).await?;
    managed(state, caller, id).await
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
    set_password(&state, &caller, addr.map(|a| a.0), &id, req.password).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Gives an account a new password; every old session ends.
pub async fn set_password(
    state: &AppState,
    caller: &Caller,
    addr: Option<ClientAddr>,
    id: &str,
    password: String,
) -> ApiResult<()> {
    let account = managed(state, caller, id).await?;
    let hash = tokio::task::spawn_blocking(move || {
        crate::auth::hash_password(&account.username, &password, &argon2::Argon2::default())
    })
    .await
    .map_err(ApiError::internal)?
    .map_err(ApiError::bad_request)?;
    state.store.set_password(id, &hash).await?;
    record(state, caller, addr, "reset_password", Some(id), json!({})).await
}

/// `GET /v1/accounts/{id}/devices`: the devices the account signed in
/// from, last contact first.
pub async fn devices(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
) -> ApiResult<Json<Vec<DeviceInfo>>> {
    Ok(Json(account_of(&state, &caller, &id).await?.1))
}

/// `POST /v1/accounts/{id}/devices/{device}/revoke`: the device's sessions
/// end and it cannot sign in again.
pub async fn revoke(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    addr: Option<axum::Extension<ClientAddr>>,
    ApiPath((id, device)): ApiPath<(String, String)>,
) -> ApiResult<StatusCode> {
    revoke_device(&state, &caller, addr.map(|a| a.0), &id, &device).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Revokes a device of an account.
pub async fn revoke_device(
    state: &AppState,
    caller: &Caller,
    addr: Option<ClientAddr>,
    id: &str,
    device: &str,
) -> ApiResult<()> {
    managed(state, caller, id).await?;
    if !state.store.revoke_device(id, device, state.now_ms()).await? {
        return Err(ApiError::not_found("no such device"));
    }
    record(
        state,
        caller,
        addr,
        "revoke_device",
        Some(id),
        json!({"device": device}),
    )
    .await
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
    Ok(Json(
        wipe_device(&state, &caller, addr.map(|a| a.0), &id, &device, req.mode).await?,
    ))
}

/// Asks a device of an account to wipe itself at its next contact.
pub async fn wipe_device(
    state: &AppState,
    caller: &Caller,
    addr: Option<ClientAddr>,
    id: &str,
    device: &str,
    mode: WipeMode,
) -> ApiResult<DeviceInfo> {
    managed(state, caller, id).await?;
    if !state.store.request_wipe(id, device, mode, state.now_ms()).await? {
        return Err(ApiError::not_found("no such device"));
    }
    record(
        state,
        caller,
        addr,
        "wipe_device",
        Some(id),
        json!({"device": device, "mode": mode.as_str()}),
    )
    .await?;
    state
        .store
        .devices(id)
        .await?
        .into_iter()
        .find(|d| d.device_id == device)
        .ok_or_else(|| ApiError::not_found("no such device"))
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
    let range = AuditRange {
        after: q.after.unwrap_or(0),
        before: i64::MAX,
        limit,
        newest_first: false,
    };
    Ok(Json(state.store.audit_log(range).await?))
}
