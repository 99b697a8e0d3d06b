//! The grid centre's side: incidents to dispatch and track (a paginated,
//! filtered list), timeline events by server time, conflicts, and
//! statistics (on-time completion rate), all indexed queries in the
//! database.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use fieldgrid_core::model::EventKind;
use fieldgrid_protocol::{CentreEventRequest, CentreIncident, CentreIncidentPage, ConflictRecord, StatsResponse};
use serde::Deserialize;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, safe_integer};
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
    let limit = q.limit.unwrap_or(PAGE_DEFAULT);
    if !(1..=PAGE_MAX).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit is 1 to {PAGE_MAX} incidents")));
    }
    let after = match &q.after {
        Some(a) => Some(
            IncidentCursor::parse(a).ok_or_else(|| ApiError::bad_request("after is a cursor from a previous page"))?,
        ),
        None => None,
    };
    let sort = q.sort.unwrap_or_default();
    let filter = IncidentFilter {
        status: q.status,
        grid: q.grid,
        sub_district: q.sub_district,
        community: q.community,
        category: q.category,
        department: q.department,
        overdue: q.overdue,
    };
    let now = state.now_ms();
    let incidents = state.store.incidents(&filter, sort, after, limit, now).await?;
    let next = (incidents.len() == limit)
        .then(|| incidents.last())
        .flatten()
        .map(|i| cursor_of(i, sort).encode());
    Ok(Json(CentreIncidentPage { incidents, next }))
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

/// `POST /v1/centre/incidents/{id}/events`: dispatch, progress, resolve,
/// close or return an incident. Times are the server's.
pub async fn add_event(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiPath(id): ApiPath<String>,
    ApiJson(req): ApiJson<CentreEventRequest>,
) -> ApiResult<Json<CentreIncident>> {
    caller.require_operator()?;
    if req.deadline_at_ms.is_some_and(|d| !safe_integer(d)) {
        return Err(ApiError::bad_request("deadline_at_ms is a time in milliseconds"));
    }
    let kind = EventKind::parse(&req.kind)
        .filter(|k| !k.is_worker_event() && *k != EventKind::Reported)
        .ok_or_else(|| {
            ApiError::bad_request("kind must be dispatched, accepted, progress, resolved, closed or returned")
        })?;
    let now = state.now_ms();
    let incident = state.store.centre_event(&caller, &id, req, kind, now).await?;
    Ok(Json(incident))
}

/// `GET /v1/conflicts`: concurrent edits in the caller's grids (all for operators).
pub async fn conflicts(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Json<Vec<ConflictRecord>>> {
    let grids = match caller.role {
        fieldgrid_protocol::Role::Operator => None,
        fieldgrid_protocol::Role::Worker => Some(caller.grids.clone()),
    };
    Ok(Json(state.store.conflicts(grids).await?))
}

/// `GET /v1/centre/stats`: per grid and per sub-district, by server time.
pub async fn stats(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Json<StatsResponse>> {
    caller.require_operator()?;
    Ok(Json(state.store.stats(state.now_ms()).await?))
}
