//! The incident queue, an incident (details, timeline, photos, location,
//! actions) and its photos. A department sees only what was dispatched to
//! it, through the same rules as its JSON endpoints.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Redirect};
use fieldgrid_domain::Catalogue;
use fieldgrid_domain::model::{EventKind, IncidentStatus};
use fieldgrid_domain::validate::{CoordinateSystem, Location};
use fieldgrid_protocol::{CentreEventRequest, Entity, EventPhoto, GridInfo, Role};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

use super::map::to_gcj02;
use super::{Chrome, PageError, PageResult, User, china_time, event_label, query_string, render, status_label};
use crate::AppState;
use crate::auth::ClientAddr;
use crate::centre;
use crate::error::ApiError;
use crate::store::{IncidentFilter, IncidentSort};

/// Incidents per page of the queue.
const PAGE: usize = 50;

/// The queue's filters as the form sends them (empty means any).
#[derive(Debug, Default, Deserialize)]
pub struct QueueQuery {
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub category: String,
    #[serde(default)]
    pub sub_district: String,
    #[serde(default)]
    pub community: String,
    #[serde(default)]
    pub grid: String,
    #[serde(default)]
    pub department: String,
    #[serde(default)]
    pub overdue: String,
    #[serde(default)]
    pub sort: String,
    #[serde(default)]
    pub after: String,
}

impl QueueQuery {
    /// The filter it asks for; a department sees its own incidents only.
    /// A grid is given by its code (or id).
    pub fn filter(&self, user: &User, grids: &[GridInfo]) -> IncidentFilter {
        let some = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        let grid = some(&self.grid).map(|g| {
            grids
                .iter()
                .find(|x| x.code == g || x.id == g)
                .map_or(g, |x| x.id.clone())
        });
        IncidentFilter {
            status: some(&self.status),
            grid,
            sub_district: some(&self.sub_district),
            community: some(&self.community),
            category: some(&self.category),
            department: match user.caller.role {
                Role::Department => Some(user.caller.department.clone().unwrap_or_default()),
                _ => some(&self.department),
            },
            overdue: self.overdue == "1",
        }
    }

    fn sort(&self) -> IncidentSort {
        if self.sort == "deadline" {
            IncidentSort::Deadline
        } else {
            IncidentSort::Reported
        }
    }

    /// The query string of these filters (without the page).
    fn without_page(&self) -> String {
        query_string([
            ("status", self.status.as_str()),
            ("category", &self.category),
            ("sub_district", &self.sub_district),
            ("community", &self.community),
            ("grid", &self.grid),
            ("department", &self.department),
            ("overdue", &self.overdue),
            ("sort", &self.sort),
        ])
    }
}

/// An option of a select.
pub struct Choice {
    /// Value sent.
    pub value: String,
    /// Label shown.
    pub label: String,
    /// Selected now.
    pub selected: bool,
}

fn choices(values: impl IntoIterator<Item = (String, String)>, current: &str) -> Vec<Choice> {
    values
        .into_iter()
        .map(|(value, label)| Choice {
            selected: value == current,
            value,
            label,
        })
        .collect()
}

/// A row of the queue.
pub struct Row {
    id: String,
    reported: String,
    grid: String,
    community: String,
    category: String,
    status: &'static str,
    department: String,
    deadline: String,
    overdue: bool,
    complete: bool,
}

#[derive(Template)]
#[template(path = "console/queue.html")]
struct QueuePage {
    chrome: Chrome,
    q: QueueQuery,
    is_department: bool,
    statuses: Vec<Choice>,
    categories: Vec<Choice>,
    sub_districts: Vec<Choice>,
    communities: Vec<Choice>,
    departments: Vec<Choice>,
    rows: Vec<Row>,
    next: Option<String>,
    first: Option<String>,
}

/// Names the pages show for ids: categories, grids, departments.
pub struct Names {
    /// The district's catalogue.
    pub catalogue: Catalogue,
    /// Grids by id.
    pub grids: HashMap<String, GridInfo>,
    /// Departments by id.
    pub departments: Vec<(String, String)>,
}

impl Names {
    /// Reads them (a few thousand rows at most: a district's grids).
    pub async fn load(state: &AppState) -> Result<Names, ApiError> {
        Ok(Names {
            catalogue: state.store.catalogue().await?,
            grids: state
                .store
                .grids()
                .await?
                .into_iter()
                .map(|g| (g.id.clone(), g))
                .collect(),
            departments: state.store.departments().await?,
        })
    }

    /// A category's name.
    pub fn category(&self, code: &str) -> String {
        self.catalogue
            .get(code)
            .map_or_else(|| code.to_owned(), |c| c.name_zh.clone())
    }

    /// A department's name.
    pub fn department(&self, id: &str) -> String {
        self.departments
            .iter()
            .find(|(d, _)| d == id)
            .map_or_else(|| id.to_owned(), |(_, n)| n.clone())
    }

    /// A grid's name (and code).
    pub fn grid(&self, id: &str) -> String {
        self.grids
            .get(id)
            .map_or_else(|| id.to_owned(), |g| format!("{}（{}）", g.name, g.code))
    }

    /// The sub-districts and communities, sorted.
    pub fn places(&self) -> (Vec<String>, Vec<String>) {
        let subs: BTreeSet<&String> = self.grids.values().map(|g| &g.sub_district).collect();
        let communities: BTreeSet<&String> = self.grids.values().map(|g| &g.community).collect();
        (
            subs.into_iter().filter(|s| !s.is_empty()).cloned().collect(),
            communities.into_iter().filter(|s| !s.is_empty()).cloned().collect(),
        )
    }
}

/// `GET /console/incidents`: the queue, filtered, a page at a time.
pub async fn queue(State(state): State<Arc<AppState>>, user: User, Query(q): Query<QueueQuery>) -> PageResult {
    user.require(&[Role::Operator, Role::Department])?;
    let names = Names::load(&state).await?;
    let grids: Vec<GridInfo> = names.grids.values().cloned().collect();
    let filter = q.filter(&user, &grids);
    let after = (!q.after.is_empty()).then_some(q.after.as_str());
    let page = centre::list(&state, filter, q.sort(), after, PAGE).await?;
    let rows = page
        .incidents
        .iter()
        .map(|i| Row {
            id: i.id.clone(),
            reported: china_time(i.reported_at_ms),
            grid: names.grid(&i.grid_id),
            community: names
                .grids
                .get(&i.grid_id)
                .map(|g| g.community.clone())
                .unwrap_or_default(),
            category: names.category(&i.category),
            status: status_label(&i.status),
            department: i.department.as_deref().map(|d| names.department(d)).unwrap_or_default(),
            deadline: i.deadline_at_ms.map(china_time).unwrap_or_default(),
            overdue: i.overdue,
            complete: i.complete,
        })
        .collect();
    let base = q.without_page();
    let next = page.next.map(|n| {
        let mut s = base.clone();
        if !s.is_empty() {
            s.push('&');
        }
        s.push_str(&query_string([("after", n.as_str())]));
        format!("/console/incidents?{s}")
    });
    let first = (!q.after.is_empty()).then(|| format!("/console/incidents?{base}"));
    let statuses = [
        "reported",
        "dispatched",
        "accepted",
        "returned",
        "resolved_on_site",
        "resolved",
        "closed",
    ]
    .iter()
    .map(|s| ((*s).to_owned(), status_label(s).to_owned()));
    let (subs, communities) = names.places();
    let chrome = user.chrome(
        if user.caller.role == Role::Department {
            "本部门事件"
        } else {
            "事件队列"
        },
        "/console/incidents",
    );
    render(&QueuePage {
        chrome,
        is_department: user.caller.role == Role::Department,
        statuses: choices(statuses, &q.status),
        categories: choices(
            names
                .catalogue
                .categories
                .iter()
                .map(|c| (c.code.clone(), c.name_zh.clone())),
            &q.category,
        ),
        sub_districts: choices(subs.into_iter().map(|s| (s.clone(), s)), &q.sub_district),
        communities: choices(communities.into_iter().map(|s| (s.clone(), s)), &q.community),
        departments: choices(names.departments.iter().cloned(), &q.department),
        rows,
        next,
        first,
        q,
    })
}

/// A line of the timeline.
pub struct TimelineLine {
    at: String,
    kind: &'static str,
    actor: String,
    department: String,
    deadline: String,
    note: String,
}

/// A photo of the incident.
pub struct PhotoLine {
    sha256: String,
    of_event: bool,
    uploaded: bool,
}

/// An action form on the incident page.
pub struct Action {
    kind: &'static str,
    label: &'static str,
    /// Dispatch: department and deadline too.
    dispatch: bool,
}

#[derive(Template)]
#[template(path = "console/incident.html")]
struct IncidentPage {
    chrome: Chrome,
    id: String,
    fields: Vec<(String, String)>,
    status: &'static str,
    overdue: bool,
    location: Option<String>,
    timeline: Vec<TimelineLine>,
    photos: Vec<PhotoLine>,
    actions: Vec<Action>,
    departments: Vec<Choice>,
    default_deadline: String,
}

fn text(fields: &serde_json::Map<String, Value>, key: &str) -> String {
    match fields.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => String::new(),
    }
}

fn time(fields: &serde_json::Map<String, Value>, key: &str) -> String {
    fields
        .get(key)
        .and_then(Value::as_i64)
        .map(china_time)
        .unwrap_or_default()
}

/// The district's own fields of a record, as (label, value) lines in the
/// catalogue's order (a retired field marked; a code the catalogue lacks
/// shown by its code, last).
fn extra_lines(
    catalogue: &Catalogue,
    entity: Entity,
    fields: &serde_json::Map<String, Value>,
) -> Vec<(String, String)> {
    let Some(extra) = fields.get("extra").and_then(Value::as_object) else {
        return Vec::new();
    };
    let shown = |v: &Value| match v {
        Value::Bool(true) => "是".to_owned(),
        Value::Bool(false) => "否".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let defs: Vec<_> = catalogue.fields_of(entity).collect();
    let mut lines: Vec<(String, String)> = defs
        .iter()
        .filter_map(|d| {
            let value = extra.get(&d.item.code)?;
            let retired = if d.retired { "（已停用）" } else { "" };
            Some((format!("{}{retired}", d.item.label_zh), shown(value)))
        })
        .collect();
    lines.extend(
        extra
            .iter()
            .filter(|(k, _)| !defs.iter().any(|d| &d.item.code == *k))
            .map(|(k, v)| (k.clone(), shown(v))),
    );
    lines
}

/// The incident's location in GCJ-02, as the district's maps use it.
pub fn gcj02_of(fields: &serde_json::Map<String, Value>) -> Option<(f64, f64)> {
    let loc: Location = serde_json::from_value(fields.get("location")?.clone()).ok()?;
    Some(to_gcj02(loc.latitude, loc.longitude, loc.crs))
}

/// `GET /console/incidents/{id}`: details, timeline, photos and the actions
/// the user's role may take in its current status.
pub async fn detail(State(state): State<Arc<AppState>>, user: User, Path(id): Path<String>) -> PageResult {
    user.require(&[Role::Operator, Role::Department])?;
    let not_found = || PageError::Api(ApiError::not_found("no such incident"));
    let detail = state.store.incident_detail(&id).await?.ok_or_else(not_found)?;
    let f = &detail.incident.fields;
    if user.caller.role == Role::Department
        && (user.caller.department.is_none()
            || f.get("department").and_then(Value::as_str) != user.caller.department.as_deref())
    {
        return Err(not_found());
    }
    let names = Names::load(&state).await?;
    // Accounts by user name: the reporter and whoever acted.
    let mut people: HashMap<String, String> = HashMap::new();
    let ids = std::iter::once(text(f, "reporter")).chain(detail.events.iter().map(|e| text(&e.fields, "actor")));
    for id in ids {
        if !id.is_empty() && !people.contains_key(&id) {
            let name = state
                .store
                .account(&id)
                .await?
                .map_or_else(|| id.clone(), |a| a.username);
            people.insert(id, name);
        }
    }
    let person = |id: String| people.get(&id).cloned().unwrap_or(id);
    let category_code = text(f, "category");
    let status = IncidentStatus::parse(&text(f, "status")).unwrap_or_default();
    let now = state.now_ms();
    let deadline = f.get("deadline_at_ms").and_then(Value::as_i64);
    let overdue = status.is_open() && deadline.is_some_and(|d| d < now);
    let grid = names.grids.get(&detail.incident.grid_id);
    let mut fields = vec![
        ("类别", names.category(&category_code)),
        ("标题", text(f, "title")),
        ("描述", text(f, "description")),
        ("地址", text(f, "address")),
        ("网格", names.grid(&detail.incident.grid_id)),
        ("社区", grid.map(|g| g.community.clone()).unwrap_or_default()),
        ("街道", grid.map(|g| g.sub_district.clone()).unwrap_or_default()),
        ("上报人", person(text(f, "reporter"))),
        ("发生时间", time(f, "occurred_at_ms")),
        ("上报时间", time(f, "reported_at_ms")),
        (
            "承办部门",
            f.get("department")
                .and_then(Value::as_str)
                .map(|d| names.department(d))
                .unwrap_or_default(),
        ),
        ("办理期限", deadline.map(china_time).unwrap_or_default()),
        ("办结时间", time(f, "finished_at_ms")),
    ]
    .into_iter()
    .map(|(label, value)| (label.to_owned(), value))
    .collect::<Vec<_>>();
    let catalogue = state.store.catalogue().await?;
    // Raised by an inspection: which checklist, when.
    if let Some(inspection) = f.get("inspection_id").and_then(Value::as_str) {
        let found = state.store.record(inspection).await?;
        let raised_by = found.map_or_else(String::new, |r| {
            let code = text(&r.fields, "checklist");
            let name = catalogue.checklist(&code).map_or(code, |c| c.name_zh.clone());
            format!("{name}（{}）", time(&r.fields, "occurred_at_ms"))
        });
        fields.push(("来自巡查".to_owned(), raised_by));
    }
    fields.extend(extra_lines(&catalogue, Entity::Incident, f));
    let location = f
        .get("location")
        .and_then(|v| serde_json::from_value::<Location>(v.clone()).ok())
        .map(|loc| {
            let (lat, lon) = to_gcj02(loc.latitude, loc.longitude, loc.crs);
            let datum = match loc.crs {
                CoordinateSystem::Wgs84 => "WGS-84",
                CoordinateSystem::Gcj02 => "GCJ-02",
                CoordinateSystem::Bd09 => "BD-09",
            };
            let accuracy = loc
                .accuracy_m
                .map(|a| format!("，精度约 {a:.0} 米"))
                .unwrap_or_default();
            format!(
                "{:.6}, {:.6}（GCJ-02）；上报为 {datum} {:.6}, {:.6}{accuracy}",
                lat, lon, loc.latitude, loc.longitude
            )
        });
    let timeline = detail
        .events
        .iter()
        .filter(|e| !e.deleted)
        .map(|e| {
            let g = &e.fields;
            TimelineLine {
                at: time(g, "server_at_ms"),
                kind: event_label(&text(g, "kind")),
                actor: person(text(g, "actor")),
                department: g
                    .get("department")
                    .and_then(Value::as_str)
                    .map(|d| names.department(d))
                    .unwrap_or_default(),
                deadline: time(g, "deadline_at_ms"),
                note: text(g, "note"),
            }
        })
        .collect();
    let photos = detail
        .photos
        .iter()
        .map(|(p, uploaded)| PhotoLine {
            sha256: text(&p.fields, "sha256"),
            of_event: p
                .fields
                .get("owner")
                .and_then(|o| o.get("kind"))
                .and_then(Value::as_str)
                == Some("incident_event"),
            uploaded: *uploaded,
        })
        .filter(|p| p.sha256.len() == 64)
        .collect();
    let actions = centre::kinds_for(user.caller.role)
        .iter()
        .filter(|k| k.next_status(status).is_some())
        .map(|k| Action {
            kind: k.as_str(),
            label: if *k == EventKind::Dispatched && status == IncidentStatus::Dispatched {
                "改派"
            } else {
                event_label(k.as_str())
            },
            dispatch: *k == EventKind::Dispatched,
        })
        .collect();
    let hours = names
        .catalogue
        .get(&category_code)
        .map_or(72, |c| c.default_deadline_hours);
    let default_deadline = fieldgrid_domain::china_time::local(now + i64::from(hours) * 3_600_000)
        .map(|t| t.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default();
    let current_department = f.get("department").and_then(Value::as_str).unwrap_or_default();
    render(&IncidentPage {
        chrome: user.chrome(
            format!("事件：{}", names.category(&category_code)),
            "/console/incidents",
        ),
        id,
        fields,
        status: status_label(status.as_str()),
        overdue,
        location,
        timeline,
        photos,
        actions,
        departments: choices(names.departments.iter().cloned(), current_department),
        default_deadline,
    })
}

/// The longest text field of an action form (a note is 2,000 characters).
const TEXT_FIELD_MAX: usize = 16 * 1024;
/// Photos one action may carry from the console.
pub const ACTION_PHOTOS: usize = 3;
/// The largest body of an action: its photos and a little text.
pub const ACTION_MAX_BYTES: usize = ACTION_PHOTOS * fieldgrid_protocol::limits::PHOTO_MAX_BYTES as usize + 64 * 1024;

/// An action's form (multipart: it may carry photos).
#[derive(Debug, Default)]
struct ActionForm {
    csrf: String,
    kind: String,
    department: String,
    deadline: String,
    note: String,
    /// (bytes, their image type).
    photos: Vec<(Vec<u8>, &'static str)>,
}

impl ActionForm {
    /// Reads the form's fields: the CSRF token first (the form puts it
    /// there; nothing else is read without it), text fields of a few KiB,
    /// photos that are images by their bytes, at most 10 MiB each and
    /// [`ACTION_PHOTOS`] in all, each cut off as soon as it is too big.
    async fn read(user: &User, mut multipart: axum::extract::Multipart) -> Result<ActionForm, PageError> {
        let bad = |m: &str| PageError::Api(ApiError::bad_request(m.to_owned()));
        let mut form = ActionForm::default();
        let mut first = true;
        while let Some(mut field) = multipart
            .next_field()
            .await
            .map_err(|_| bad("the form could not be read"))?
        {
            let name = field.name().unwrap_or_default().to_owned();
            if std::mem::take(&mut first) && name != "csrf" {
                user.check_csrf("")?;
            }
            let limit = if name == "photo" {
                fieldgrid_protocol::limits::PHOTO_MAX_BYTES as usize
            } else {
                TEXT_FIELD_MAX
            };
            let mut bytes = Vec::new();
            while let Some(chunk) = field.chunk().await.map_err(|_| bad("the form could not be read"))? {
                if bytes.len() + chunk.len() > limit {
                    return Err(bad(if name == "photo" {
                        "photo: at most 10 MiB"
                    } else {
                        "a field is too long"
                    }));
                }
                bytes.extend_from_slice(&chunk);
            }
            if name == "photo" {
                if bytes.is_empty() {
                    continue; // the file input left empty
                }
                if form.photos.len() == ACTION_PHOTOS {
                    return Err(bad("photo: at most 3 photos an action"));
                }
                let mime = fieldgrid_domain::validate::photo_mime(&bytes)
                    .ok_or_else(|| bad("photo: JPEG, PNG, WebP or HEIC"))?;
                form.photos.push((bytes, mime));
                continue;
            }
            let text = String::from_utf8(bytes).map_err(|_| bad("the form could not be read"))?;
            match name.as_str() {
                "csrf" => {
                    user.check_csrf(&text)?;
                    form.csrf = text;
                }
                "kind" => form.kind = text,
                "department" => form.department = text,
                "deadline" => form.deadline = text,
                "note" => form.note = text,
                _ => {}
            }
        }
        Ok(form)
    }
}

/// `POST /console/incidents/{id}/events`: the JSON API's dispatch,
/// reassign, accept, progress, resolve, close or return, by role, with
/// photos of the work: the action is checked, its photos' bytes kept, then
/// the event and its photo records are written (the incident complete, its
/// photos present).
pub async fn act(
    State(state): State<Arc<AppState>>,
    user: User,
    addr: Option<axum::Extension<ClientAddr>>,
    Path(id): Path<String>,
    multipart: axum::extract::Multipart,
) -> PageResult {
    user.require(&[Role::Operator, Role::Department])?;
    let form = ActionForm::read(&user, multipart).await?;
    user.check_csrf(&form.csrf)?;
    let deadline_at_ms = match form.deadline.trim() {
        "" => None,
        d => Some(
            super::parse_china_time(d)
                .ok_or_else(|| PageError::Api(ApiError::bad_request("deadline: a date and time")))?,
        ),
    };
    let photos = form
        .photos
        .iter()
        .map(|(bytes, mime)| EventPhoto {
            sha256: hex::encode(Sha256::digest(bytes)),
            size: bytes.len() as u64,
            mime: (*mime).to_owned(),
        })
        .collect::<Vec<_>>();
    let req = CentreEventRequest {
        kind: form.kind,
        department: (!form.department.is_empty()).then_some(form.department),
        deadline_at_ms,
        note: form.note,
        photos: photos.clone(),
    };
    // Checked first (issue 21 item 5): an action that would be refused
    // keeps no bytes. Then the bytes: a photo kept without its record
    // harms nothing (it is addressed by its hash; the rare action refused
    // between the two leaves one), a record without its bytes would leave
    // the incident incomplete.
    centre::check_act(&state, &user.caller, &id, &req).await?;
    for ((bytes, _), p) in form.photos.into_iter().zip(&photos) {
        crate::photos::store_whole(&state, &p.sha256, bytes, &user.caller.account_id).await?;
    }
    centre::act(&state, &user.caller, addr.map(|a| a.0), id.clone(), req).await?;
    let to = format!(
        "/console/incidents/{}",
        form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    );
    Ok(Redirect::to(&to).into_response())
}

/// `GET /console/photos/{sha256}`: a photo, to those who may see it.
pub async fn photo(State(state): State<Arc<AppState>>, user: User, Path(sha): Path<String>) -> PageResult {
    Ok(crate::photos::serve(&state, &user.caller, &sha).await?)
}
