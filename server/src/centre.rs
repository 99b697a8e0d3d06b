//! The grid centre's side: incidents to dispatch and track, timeline events
//! by server time, conflicts, and statistics (on-time completion rate).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use fieldgrid_core::model::{EventKind, IncidentStatus};
use fieldgrid_protocol::{CentreEventRequest, CentreIncident, ConflictRecord, Stats, StatsResponse, codes};
use rusqlite::{Connection, TransactionBehavior};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use crate::auth::Caller;
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::records::{self, Record};
use crate::sync::apply_event;
use crate::{AppState, db_call};

/// Query of the incident list.
#[derive(Debug, Deserialize)]
pub struct IncidentsQuery {
    status: Option<String>,
    grid: Option<String>,
}

fn as_centre(rec: &Record, complete: bool, now: i64) -> CentreIncident {
    let f = &rec.fields;
    let status = f.get("status").and_then(Value::as_str).unwrap_or("draft").to_owned();
    let deadline = f.get("deadline_at_ms").and_then(Value::as_i64);
    let finished = f.get("finished_at_ms").and_then(Value::as_i64);
    let open = IncidentStatus::parse(&status).is_some_and(|s| s.is_open());
    CentreIncident {
        id: rec.id.clone(),
        grid_id: rec.grid_id.clone(),
        category: f.get("category").and_then(Value::as_str).unwrap_or_default().to_owned(),
        overdue: open && deadline.is_some_and(|d| d < now),
        department: f.get("department").and_then(Value::as_str).map(str::to_owned),
        deadline_at_ms: deadline,
        reported_at_ms: f.get("reported_at_ms").and_then(Value::as_i64).unwrap_or(0),
        finished_at_ms: finished,
        status,
        complete,
    }
}

/// Whether every photo of an incident (and of its events) has arrived whole.
fn photos_complete(conn: &Connection, incident: &Record) -> ApiResult<bool> {
    let events: Vec<String> = records::of_entity(conn, "incident_event", Some(&incident.grid_id))?
        .into_iter()
        .filter(|e| e.fields.get("incident_id").and_then(Value::as_str) == Some(incident.id.as_str()))
        .map(|e| e.id)
        .collect();
    for photo in records::of_entity(conn, "photo", Some(&incident.grid_id))? {
        let owner = photo
            .fields
            .get("owner")
            .and_then(|o| o.get("id"))
            .and_then(Value::as_str)
            .unwrap_or_default();
        if owner != incident.id && !events.iter().any(|e| e == owner) {
            continue;
        }
        let sha = photo.fields.get("sha256").and_then(Value::as_str).unwrap_or_default();
        let complete: i64 = conn.query_row(
            "SELECT count(*) FROM blobs WHERE sha256 = ?1 AND complete = 1",
            [sha],
            |r| r.get(0),
        )?;
        if complete == 0 {
            return Ok(false);
        }
    }
    Ok(true)
}

/// `GET /v1/centre/incidents?status=&grid=`.
pub async fn incidents(
    State(state): State<Arc<AppState>>,
    caller: Caller,
    ApiQuery(q): ApiQuery<IncidentsQuery>,
) -> ApiResult<Json<Vec<CentreIncident>>> {
    caller.require_operator()?;
    let now = state.now_ms();
    let list = db_call(&state, move |conn| {
        let mut out = Vec::new();
        for rec in records::of_entity(conn, "incident", q.grid.as_deref())? {
            let status = rec.fields.get("status").and_then(Value::as_str).unwrap_or_default();
            if rec.deleted || status == "draft" || q.status.as_deref().is_some_and(|s| s != status) {
                continue;
            }
            let complete = photos_complete(conn, &rec)?;
            out.push(as_centre(&rec, complete, now));
        }
        Ok(out)
    })
    .await?;
    Ok(Json(list))
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
    if req.deadline_at_ms.is_some_and(|d| !crate::error::safe_integer(d)) {
        return Err(ApiError::bad_request("deadline_at_ms is a time in milliseconds"));
    }
    let kind = EventKind::parse(&req.kind)
        .filter(|k| !k.is_worker_event() && *k != EventKind::Reported)
        .ok_or_else(|| {
            ApiError::bad_request("kind must be dispatched, accepted, progress, resolved, closed or returned")
        })?;
    let now = state.now_ms();
    let result = db_call(&state, move |conn| {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let incident = records::load(&tx, &id)?
            .filter(|r| r.entity == "incident" && !r.deleted)
            .ok_or_else(|| ApiError::not_found("no such incident"))?;
        if kind == EventKind::Dispatched {
            let department = req.department.clone().unwrap_or_default();
            let known: i64 = tx.query_row("SELECT count(*) FROM departments WHERE id = ?1", [&department], |r| {
                r.get(0)
            })?;
            if known == 0 {
                return Err(ApiError::bad_request("dispatch needs a known department"));
            }
            if req.deadline_at_ms.is_none_or(|d| d <= now) {
                return Err(ApiError::bad_request(
                    "dispatch needs a deadline in the future (server time)",
                ));
            }
        }
        let mut fields = Map::new();
        fields.insert("incident_id".into(), json!(id));
        fields.insert("kind".into(), json!(kind.as_str()));
        fields.insert("actor".into(), json!(caller.account_id));
        fields.insert("note".into(), json!(req.note));
        fields.insert("department".into(), json!(req.department));
        fields.insert("deadline_at_ms".into(), json!(req.deadline_at_ms));
        fields.insert("at_ms".into(), json!(now));
        fields.insert("server_at_ms".into(), json!(now));
        if let Err(fieldgrid_protocol::Outcome::Rejected { message, .. }) = apply_event(&tx, &fields, &caller, now)? {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                codes::NOT_ALLOWED,
                message,
            ));
        }
        records::save(
            &tx,
            &Record {
                id: uuid::Uuid::now_v7().to_string(),
                entity: "incident_event".into(),
                grid_id: incident.grid_id.clone(),
                version: 1,
                deleted: false,
                fields,
                field_versions: Map::new(),
            },
            now,
        )?;
        let updated = records::load(&tx, &id)?.ok_or_else(|| ApiError::internal("incident vanished"))?;
        let complete = photos_complete(&tx, &updated)?;
        tx.commit()?;
        Ok(as_centre(&updated, complete, now))
    })
    .await?;
    Ok(Json(result))
}

/// `GET /v1/conflicts`: concurrent edits in the caller's grids (all for operators).
pub async fn conflicts(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Json<Vec<ConflictRecord>>> {
    let list = db_call(&state, move |conn| {
        let mut out = Vec::new();
        for rec in records::of_entity(conn, "conflict", None)? {
            if caller.may_access(&rec.grid_id) {
                let mut f = rec.fields.clone();
                f.insert("id".into(), json!(rec.id));
                out.push(serde_json::from_value(Value::Object(f))?);
            }
        }
        Ok(out)
    })
    .await?;
    Ok(Json(list))
}

/// `GET /v1/centre/stats`: per grid and per sub-district, by server time.
pub async fn stats(State(state): State<Arc<AppState>>, caller: Caller) -> ApiResult<Json<StatsResponse>> {
    caller.require_operator()?;
    let now = state.now_ms();
    let response = db_call(&state, move |conn| {
        let sub_district: BTreeMap<String, String> = conn
            .prepare("SELECT id, sub_district FROM grids")?
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut grids: BTreeMap<String, Stats> = BTreeMap::new();
        let mut subs: BTreeMap<String, Stats> = BTreeMap::new();
        for rec in records::of_entity(conn, "incident", None)? {
            let i = as_centre(&rec, true, now);
            if rec.deleted || i.status == "draft" {
                continue;
            }
            let sub = sub_district.get(&rec.grid_id).cloned().unwrap_or_default();
            for s in [
                grids.entry(rec.grid_id.clone()).or_insert_with(|| Stats {
                    key: rec.grid_id.clone(),
                    ..Default::default()
                }),
                subs.entry(sub.clone()).or_insert_with(|| Stats {
                    key: sub.clone(),
                    ..Default::default()
                }),
            ] {
                s.reported += 1;
                let open = IncidentStatus::parse(&i.status).is_some_and(|st| st.is_open());
                if open {
                    s.open += 1;
                }
                if i.overdue {
                    s.overdue += 1;
                }
                if let (Some(deadline), Some(finished)) = (i.deadline_at_ms, i.finished_at_ms) {
                    s.finished_with_deadline += 1;
                    if finished <= deadline {
                        s.finished_on_time += 1;
                    }
                }
            }
        }
        let rate = |mut s: Stats| {
            s.on_time_rate = if s.finished_with_deadline == 0 {
                1.0
            } else {
                s.finished_on_time as f64 / s.finished_with_deadline as f64
            };
            s
        };
        Ok(StatsResponse {
            grids: grids.into_values().map(rate).collect(),
            sub_districts: subs.into_values().map(rate).collect(),
            server_time_ms: now,
        })
    })
    .await?;
    Ok(Json(response))
}
