//! The grid centre's side: incidents to dispatch and track (a paginated,
//! filtered list), timeline events by server time, conflicts, and
//! statistics (on-time completion rate), all indexed queries in the
//! database.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use fieldgrid_domain::model::EventKind;
use fieldgrid_protocol::{CentreEventRequest, CentreIncident, CentreIncidentPage, ConflictRecord, Role, StatsResponse};
use serde::Deserialize;
use serde_json::json;

use crate::AppState;
use crate::accounts;
use crate::auth::{Caller, ClientAddr};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, safe_integer};
use crate::service::Period;
use crate::store::{IncidentCursor, IncidentFilter, IncidentSort};

/// Incidents per page unless asked otherwise.
pub const PAGE_DEFAULT: usize = 100;
/// The most incidents one page holds.
pub const PAGE_MAX: usize = 1_000;

/// Query of the incident list: filters, order, page. (Not a flattened
/// [`IncidentFilter`]: serde's flatten reads every query value as a string.)
#[derive(Debug, Deserialize)]
pub struct IncidentsQuery {
    status: Option<String>,
    grid: Option<String>,
    sub_district: Option<String>,
    community: Option<String>,
    category: Option<String>,
    department: Option<String>,
    #[serde(default)]
    overdue: bool,
    sort: Option<IncidentSort>,
    after: Option<String>,
    limit: Option<usize>,
}

/// `GET /v1/centre/incidents?status=&grid=&sub_district=&community=&category=&department=&overdue=&sort=&after=&limit=`.
pub async fn incidents(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<IncidentsQuery>,
) -> ApiResult<Json<CentreIncidentPage>> {
    caller.require_operator()?;
    page(&state, q).await
}

/// `GET /v1/department/incidents`: the incidents dispatched to the
/// caller's department, with the centre list's filters, order and pages.
pub async fn department_incidents(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(mut q): ApiQuery<IncidentsQuery>,
) -> ApiResult<Json<CentreIncidentPage>> {
    caller.require(&[Role::Department])?;
    q.department = Some(caller.department.clone().unwrap_or_default());
    page(&state, q).await
}

async fn page(state: &AppState, q: IncidentsQuery) -> ApiResult<Json<CentreIncidentPage>> {
    let filter = IncidentFilter {
        status: q.status,
        grid: q.grid,
        sub_district: q.sub_district,
        community: q.community,
        category: q.category,
        department: q.department,
        overdue: q.overdue,
    };
    let sort = q.sort.unwrap_or_default();
    Ok(Json(
        list(state, filter, sort, q.after.as_deref(), q.limit.unwrap_or(PAGE_DEFAULT)).await?,
    ))
}

/// A page of the incident list (the caller's right to it checked by the
/// caller): `limit` incidents after the cursor `after`, and the next cursor.
pub async fn list(
    state: &AppState,
    filter: IncidentFilter,
    sort: IncidentSort,
    after: Option<&str>,
    limit: usize,
) -> ApiResult<CentreIncidentPage> {
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit is 1 to {PAGE_MAX} incidents")));
    }
    let after = match after {
        Some(a) => Some(
            IncidentCursor::parse(a).ok_or_else(|| ApiError::bad_request("after is a cursor from a previous page"))?,
        ),
        None => None,
    };
    let now = state.now_ms();
    let incidents = state.store.incidents(&filter, sort, after, limit, now).await?;
    let next = (incidents.len() == limit)
        .then(|| incidents.last())
        .flatten()
        .map(|i| cursor_of(i, sort).encode());
    Ok(CentreIncidentPage { incidents, next })
}

fn cursor_of(i: &CentreIncident, sort: IncidentSort) -> IncidentCursor {
    IncidentCursor {
        key: match sort {
            IncidentSort::Reported => i.reported_at_ms,
            IncidentSort::Deadline => i.deadline_at_ms.unwrap_or(0),
        },
        id: i.id.clone(),
    }
}

/// `POST /v1/centre/incidents/{id}/events`: dispatch (or reassign),
/// progress, resolve, close or return an incident. Times are the server's.
pub async fn add_event(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    addr: Option<axum::Extension<ClientAddr>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CentreEventRequest>,
) -> ApiResult<Json<CentreIncident>> {
    caller.require_operator()?;
    Ok(Json(act(&state, &caller, addr.map(|a| a.0), id, req).await?))
}

/// What the centre records on an incident.
const CENTRE_KINDS: [EventKind; 6] = [
    EventKind::Dispatched,
    EventKind::Accepted,
    EventKind::Progress,
    EventKind::Resolved,
    EventKind::Closed,
    EventKind::Returned,
];

/// What a department records on an incident dispatched to it.
const DEPARTMENT_KINDS: [EventKind; 4] = [
    EventKind::Accepted,
    EventKind::Progress,
    EventKind::Resolved,
    EventKind::Returned,
];

/// `POST /v1/department/incidents/{id}/events`: a department accepts,
/// records progress on, resolves or returns an incident dispatched to it.
pub async fn department_event(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    addr: Option<axum::Extension<ClientAddr>>,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CentreEventRequest>,
) -> ApiResult<Json<CentreIncident>> {
    caller.require(&[Role::Department])?;
    Ok(Json(act(&state, &caller, addr.map(|a| a.0), id, req).await?))
}

/// The kinds of event a role records on an incident.
pub fn kinds_for(role: Role) -> &'static [EventKind] {
    match role {
        Role::Operator => &CENTRE_KINDS,
        Role::Department => &DEPARTMENT_KINDS,
        Role::Worker | Role::Admin => &[],
    }
}

/// Records an event on an incident, as the centre or a department (the
/// kinds the caller's role may record), and writes it to the audit log.
pub async fn act(
    state: &AppState,
    caller: &Caller,
    addr: Option<ClientAddr>,
    id: String,
    req: CentreEventRequest,
) -> ApiResult<CentreIncident> {
    let kind = action_kind(caller, &req)?;
    let detail = json!({"kind": kind.as_str(), "department": req.department, "deadline_at_ms": req.deadline_at_ms});
    let now = state.now_ms();
    let incident = state.store.centre_event(caller, &id, req, kind, now).await?;
    // Notes may name people: the log keeps the kind, department and deadline.
    accounts::record(state, caller, addr, kind.as_str(), Some(&id), detail).await?;
    Ok(incident)
}

/// Whether [`act`] would take the action now: the same checks, on the
/// incident as it is, nothing written. The console asks before it keeps an
/// action's photos, so an action refused (a made-up incident, another
/// department's, a step not allowed) leaves no bytes behind.
pub async fn check_act(state: &AppState, caller: &Caller, id: &str, req: &CentreEventRequest) -> ApiResult<()> {
    let kind = action_kind(caller, req)?;
    let incident = state
        .store
        .record(id)
        .await?
        .filter(|r| r.entity == "incident" && !r.deleted)
        .ok_or_else(|| ApiError::not_found("no such incident"))?;
    let known = match (&req.department, kind) {
        (Some(d), EventKind::Dispatched) => state.store.departments().await?.iter().any(|(id, _)| id == d),
        _ => false,
    };
    crate::decide::centre_event(caller, incident, req, kind, known, state.now_ms()).map(|_| ())
}

/// The kind of a centre action, if the caller's role takes it and its note
/// and deadline are within bounds.
fn action_kind(caller: &Caller, req: &CentreEventRequest) -> ApiResult<EventKind> {
    let allowed = kinds_for(caller.role);
    // A note travels to every phone of the grid: the phones' own limit.
    let max = fieldgrid_domain::validate::limits::NOTES;
    if req.note.chars().count() > max {
        return Err(ApiError::bad_request(format!("note: at most {max} characters")));
    }
    if req.deadline_at_ms.is_some_and(|d| !safe_integer(d)) {
        return Err(ApiError::bad_request("deadline_at_ms is a time in milliseconds"));
    }
    EventKind::parse(&req.kind)
        .filter(|k| allowed.contains(k))
        .ok_or_else(|| {
            let names: Vec<&str> = allowed.iter().map(|k| k.as_str()).collect();
            ApiError::bad_request(format!("kind must be one of {}", names.join(", ")))
        })
}

/// `GET /v1/conflicts`: concurrent edits in the caller's grids (all for operators).
pub async fn conflicts(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Json<Vec<ConflictRecord>>> {
    let grids = match caller.role {
        Role::Operator | Role::Admin => None,
        Role::Worker => Some(caller.grids.clone()),
        Role::Department => return Err(ApiError::forbidden("not for a department account")),
    };
    let mut conflicts = state.store.conflicts(grids).await?;
    // A worker sees its grids' residents whole on the phone; the centre
    // and district IT see them masked, here as everywhere else.
    if caller.role != Role::Worker {
        conflicts.iter_mut().for_each(masked);
    }
    Ok(Json(conflicts))
}

/// A conflict with its values masked (`privacy::masked_value`).
pub fn masked(c: &mut ConflictRecord) {
    use fieldgrid_domain::privacy::masked_value;
    c.winning_value = masked_value(&c.field, &c.winning_value);
    c.losing_value = masked_value(&c.field, &c.losing_value);
}

/// `GET /v1/centre/problems`: the records phones could not apply and set
/// aside, newest report first (ids and codes; operators and district IT).
pub async fn problems(
    State(state): State<Arc<AppState>>,
    caller: Caller,
) -> ApiResult<Json<Vec<crate::store::ProblemSummary>>> {
    caller.require(&[Role::Operator, Role::Admin])?;
    Ok(Json(state.store.problems(PAGE_MAX).await?))
}

/// Query of the statistics: the months reported in.
#[derive(Debug, Deserialize)]
pub struct StatsQuery {
    from: Option<String>,
    to: Option<String>,
}

/// `GET /v1/centre/stats?from=YYYY-MM&to=YYYY-MM`: per grid, community,
/// sub-district and category, by server time.
pub async fn stats(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StatsQuery>,
) -> ApiResult<Json<StatsResponse>> {
    caller.require_operator()?;
    let period = Period::parse(q.from.as_deref(), q.to.as_deref())?;
    Ok(Json(state.store.stats(&period, state.now_ms()).await?))
}

/// Query of the coverage report.
#[derive(Debug, Deserialize)]
pub struct CoverageQuery {
    rule: Option<String>,
    at: Option<String>,
}

/// `GET /v1/centre/coverage?rule=CODE&at=YYYY-MM-DD`: visit coverage per
/// grid, sub-district and district under a visit rule, in the period
/// containing `at` (China time; today when absent), by server time.
pub async fn coverage(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CoverageQuery>,
) -> ApiResult<Json<fieldgrid_protocol::CoverageResponse>> {
    caller.require_operator()?;
    let rule = q
        .rule
        .filter(|r| !r.is_empty())
        .ok_or_else(|| ApiError::bad_request("rule: give the code of a visit rule"))?;
    let at = day_of(q.at.as_deref())?;
    Ok(Json(state.store.coverage(&rule, at, state.now_ms()).await?))
}

/// The `at` day of a coverage query (API or console): absent, or a full
/// `YYYY-MM-DD` date.
pub fn day_of(at: Option<&str>) -> ApiResult<Option<chrono::NaiveDate>> {
    match at {
        None | Some("") => Ok(None),
        Some(s) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .filter(|_| s.len() == 10)
            .map(Some)
            .ok_or_else(|| ApiError::bad_request("at: expected a date as YYYY-MM-DD")),
    }
}
