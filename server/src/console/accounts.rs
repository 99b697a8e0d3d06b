//! Accounts and devices (disable, enable, reset a password, revoke a
//! device, remote wipe with its state), the audit log, and conflicts to
//! review: the JSON API's account functions behind forms.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use fieldgrid_protocol::Role;
use serde::Deserialize;
use serde_json::Value;

use super::{Chrome, PageError, PageResult, User, china_time, render, role_label};
use crate::AppState;
use crate::accounts;
use crate::auth::ClientAddr;
use crate::error::ApiError;
use crate::store::{AuditRange, WipeMode};

/// An account as listed.
pub struct AccountLine {
    id: String,
    username: String,
    role: &'static str,
    department: String,
    grids: String,
    disabled: String,
}

#[derive(Template)]
#[template(path = "console/accounts.html")]
struct AccountsPage {
    chrome: Chrome,
    accounts: Vec<AccountLine>,
}

/// `GET /console/accounts`: the accounts the user manages (district IT
/// all; the centre workers' and departments').
pub async fn list(State(state): State<Arc<AppState>>, user: User) -> PageResult {
    user.require(&[Role::Admin, Role::Operator])?;
    let accounts = accounts::accounts_of(&state, &user.caller).await?;
    let lines = accounts
        .into_iter()
        .map(|a| AccountLine {
            id: a.id,
            username: a.username,
            role: role_label(a.role),
            department: a.department.unwrap_or_default(),
            grids: a.grids.join("、"),
            disabled: a.disabled_at_ms.map(china_time).unwrap_or_default(),
        })
        .collect();
    let title = if user.caller.role == Role::Admin {
        "账号与设备"
    } else {
        "账号"
    };
    render(&AccountsPage {
        chrome: user.chrome(title, "/console/accounts"),
        accounts: lines,
    })
}

/// A device as shown.
pub struct DeviceLine {
    device_id: String,
    first_seen: String,
    last_seen: String,
    revoked: String,
    /// 无 / 等待设备联网 / 已擦除.
    wipe: String,
}

#[derive(Template)]
#[template(path = "console/account.html")]
struct AccountPage {
    chrome: Chrome,
    account: AccountLine,
    is_self: bool,
    disabled: bool,
    devices: Vec<DeviceLine>,
}

/// `GET /console/accounts/{id}`: an account and its devices.
pub async fn account(State(state): State<Arc<AppState>>, user: User, Path(id): Path<String>) -> PageResult {
    let (a, devices) = accounts::account_of(&state, &user.caller, &id).await?;
    let devices = devices
        .into_iter()
        .map(|d| DeviceLine {
            wipe: match (d.wipe, d.wiped_at_ms) {
                (None, _) => "无".to_owned(),
                (Some(mode), None) => format!(
                    "已要求{}，等待设备联网（{}）",
                    wipe_label(mode),
                    d.wipe_requested_at_ms.map(china_time).unwrap_or_default()
                ),
                (Some(mode), Some(at)) => format!("已{}（{}）", wipe_label(mode), china_time(at)),
            },
            device_id: d.device_id,
            first_seen: china_time(d.first_seen_ms),
            last_seen: china_time(d.last_seen_ms),
            revoked: d.revoked_at_ms.map(china_time).unwrap_or_default(),
        })
        .collect();
    let title = format!("账号：{}", a.username);
    render(&AccountPage {
        chrome: user.chrome(title, "/console/accounts"),
        is_self: a.id == user.caller.account_id,
        disabled: a.disabled_at_ms.is_some(),
        account: AccountLine {
            id: a.id,
            username: a.username,
            role: role_label(a.role),
            department: a.department.unwrap_or_default(),
            grids: a.grids.join("、"),
            disabled: a.disabled_at_ms.map(china_time).unwrap_or_default(),
        },
        devices,
    })
}

fn wipe_label(mode: WipeMode) -> &'static str {
    match mode {
        WipeMode::Wipe => "立即擦除",
        WipeMode::SendThenWipe => "上传后擦除",
    }
}

/// An account action's form.
#[derive(Debug, Deserialize)]
pub struct AccountForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    mode: String,
}

fn back_to(id: &str) -> PageResult {
    let to = format!(
        "/console/accounts/{}",
        form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    );
    Ok(Redirect::to(&to).into_response())
}

/// `POST /console/accounts/{id}/{disable|enable|password}`.
pub async fn act(
    State(state): State<Arc<AppState>>,
    user: User,
    addr: Option<axum::Extension<ClientAddr>>,
    Path((id, action)): Path<(String, String)>,
    axum::Form(form): axum::Form<AccountForm>,
) -> PageResult {
    user.check_csrf(&form.csrf)?;
    let addr = addr.map(|a| a.0);
    match action.as_str() {
        "disable" => accounts::set_enabled(&state, &user.caller, addr, &id, false)
            .await
            .map(drop),
        "enable" => accounts::set_enabled(&state, &user.caller, addr, &id, true)
            .await
            .map(drop),
        "password" => accounts::set_password(&state, &user.caller, addr, &id, form.password).await,
        _ => Err(ApiError::not_found("no such action")),
    }?;
    back_to(&id)
}

/// `POST /console/accounts/{id}/devices/{device}/{revoke|wipe}`.
pub async fn device_act(
    State(state): State<Arc<AppState>>,
    user: User,
    addr: Option<axum::Extension<ClientAddr>>,
    Path((id, device, action)): Path<(String, String, String)>,
    axum::Form(form): axum::Form<AccountForm>,
) -> PageResult {
    user.check_csrf(&form.csrf)?;
    let addr = addr.map(|a| a.0);
    match action.as_str() {
        "revoke" => accounts::revoke_device(&state, &user.caller, addr, &id, &device).await,
        "wipe" => {
            let mode = WipeMode::parse(&form.mode)
                .ok_or_else(|| PageError::Api(ApiError::bad_request("mode: wipe or send_then_wipe")))?;
            accounts::wipe_device(&state, &user.caller, addr, &id, &device, mode)
                .await
                .map(drop)
        }
        _ => Err(ApiError::not_found("no such action")),
    }?;
    back_to(&id)
}

/// A line of the audit log.
pub struct AuditLine {
    at: String,
    actor: String,
    role: String,
    action: String,
    target: String,
    detail: String,
    address: String,
}

#[derive(Template)]
#[template(path = "console/audit.html")]
struct AuditPage {
    chrome: Chrome,
    lines: Vec<AuditLine>,
    older: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct AuditQuery {
    before: Option<i64>,
}

/// `GET /console/audit?before=`: the audit log, newest first (district IT).
pub async fn audit(State(state): State<Arc<AppState>>, user: User, Query(q): Query<AuditQuery>) -> PageResult {
    user.require(&[Role::Admin])?;
    const PAGE: usize = 100;
    let entries = state
        .store
        .audit_log(AuditRange {
            after: 0,
            before: q.before.unwrap_or(i64::MAX),
            limit: PAGE,
            newest_first: true,
        })
        .await?;
    let older = (entries.len() == PAGE)
        .then(|| entries.last().map(|e| format!("/console/audit?before={}", e.id)))
        .flatten();
    let lines = entries
        .into_iter()
        .map(|e| AuditLine {
            at: china_time(e.at_ms),
            actor: e.actor,
            role: e.role,
            action: e.action,
            target: e.target.unwrap_or_default(),
            detail: match &e.detail {
                Value::Object(m) if m.is_empty() => String::new(),
                d => d.to_string(),
            },
            address: e.address.unwrap_or_default(),
        })
        .collect();
    render(&AuditPage {
        chrome: user.chrome("审计日志", "/console/audit"),
        lines,
        older,
    })
}

/// A conflict as listed.
pub struct ConflictLine {
    at: String,
    entity: String,
    entity_id: String,
    grid: String,
    field: String,
    winning: String,
    losing: String,
}

#[derive(Template)]
#[template(path = "console/conflicts.html")]
struct ConflictsPage {
    chrome: Chrome,
    lines: Vec<ConflictLine>,
    more: usize,
}

/// `GET /console/conflicts`: concurrent edits the server settled, newest
/// first, for the centre to review.
pub async fn conflicts(State(state): State<Arc<AppState>>, user: User) -> PageResult {
    user.require(&[Role::Operator])?;
    const SHOWN: usize = 500;
    let mut all = state.store.conflicts(None).await?;
    all.iter_mut().for_each(crate::centre::masked);
    all.sort_by_key(|c| std::cmp::Reverse(c.at_ms));
    let more = all.len().saturating_sub(SHOWN);
    let value = |v: &Value| match v {
        Value::String(s) => s.clone(),
        Value::Null => "（空）".to_owned(),
        v => v.to_string(),
    };
    let lines = all
        .into_iter()
        .take(SHOWN)
        .map(|c| ConflictLine {
            at: china_time(c.at_ms),
            winning: value(&c.winning_value),
            losing: value(&c.losing_value),
            entity: c.entity,
            entity_id: c.entity_id,
            grid: c.grid_id,
            field: c.field,
        })
        .collect();
    render(&ConflictsPage {
        chrome: user.chrome("数据冲突", "/console/conflicts"),
        lines,
        more,
    })
}
