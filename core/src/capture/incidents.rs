//! Incidents: drafts that survive a restart, submission, and the worker's
//! timeline events ("resolved on the spot").

use rusqlite::{Connection, Row, Transaction, params};

use super::NewPhoto;
use super::extra::Origin;
use super::photos::{StagedPhoto, insert_photos, photos_of, queue_photo};
use super::{IncidentChange, NewIncident, NewIncidentEvent, check_resident_refs, extra, require_grid};
use crate::catalogue::Catalogue;
use crate::entity::Entity;
use crate::error::{Code, Error, Result};
use crate::model::{EventKind, Incident, IncidentEvent, IncidentStatus, PhotoOwner, SyncStatus};
use crate::outbox::{self, Change};
use crate::privacy::PrivateText;
use crate::rules;
use crate::store::{Store, meta_get};
use crate::validate::{self, limits};

pub(crate) const INCIDENT_COLUMNS: &str = "i.id, i.grid_id, i.category, i.title, i.description, i.location, \
     i.address, i.occurred_at, i.reporter, i.involved, i.status, i.department, i.deadline_at, i.created_at, \
     i.updated_at, i.server_version, i.deleted_at";

impl Store {
    /// Saves a new incident draft. Drafts stay on this phone (not queued)
    /// until [`Store::submit_incident`]; they survive restarts.
    pub fn create_incident_draft(&self, input: &NewIncident) -> Result<Incident> {
        let now = self.now_ms();
        let catalogue = self.catalogue();
        self.write(|tx| {
            let id = insert_draft(tx, &catalogue, input, now)?;
            load_incident(tx, &id)
        })
    }

    /// Reports an incident in one step: saves it with its photos and submits
    /// it in a single transaction (the form was filled in one go, no draft
    /// kept). Checks are those of a draft and of submission.
    pub fn report_incident(&self, input: &NewIncident, photos: &[NewPhoto]) -> Result<Incident> {
        let staged = self.stage_photos("photos", photos)?;
        let now = self.now_ms();
        let catalogue = self.catalogue();
        self.write(|tx| report_in(tx, &catalogue, input, staged, Origin::Form, now))
    }

    /// Changes a draft. Submitted incidents cannot be edited: add a timeline
    /// event instead.
    pub fn update_incident_draft(&self, id: &str, changes: &[IncidentChange]) -> Result<Incident> {
        let now = self.now_ms();
        let catalogue = self.catalogue();
        self.write(|tx| {
            let mut draft = load_draft(tx, id)?;
            for change in changes {
                match change {
                    IncidentChange::Category(v) => draft.category = v.clone(),
                    IncidentChange::Title(v) => draft.title = v.clone(),
                    IncidentChange::Description(v) => draft.description = PrivateText::new(v.clone()),
                    IncidentChange::Location(v) => draft.location = *v,
                    IncidentChange::Address(v) => draft.address = PrivateText::new(v.clone()),
                    IncidentChange::OccurredAt(v) => draft.occurred_at_ms = *v,
                    IncidentChange::InvolvedResidents(v) => draft.involved_residents = v.clone(),
                }
            }
            let d = check_draft(tx, &catalogue, draft, now)?;
            tx.execute(
                "UPDATE incidents SET category = ?2, title = ?3, description = ?4, location = ?5, address = ?6,
                   occurred_at = ?7, involved = ?8, updated_at = ?9 WHERE id = ?1",
                params![
                    id,
                    d.category,
                    d.title,
                    d.description.as_str(),
                    d.location.map(|l| serde_json::to_string(&l)).transpose()?,
                    d.address.as_str(),
                    d.occurred_at_ms,
                    serde_json::to_string(&d.involved_residents)?,
                    now
                ],
            )?;
            load_incident(tx, id)
        })
    }

    /// Throws a draft away, with its photos' metadata. Never reached the server.
    pub fn discard_incident_draft(&self, id: &str) -> Result<()> {
        self.write(|tx| {
            load_draft(tx, id)?;
            tx.execute(
                "DELETE FROM photos WHERE owner_kind = 'incident' AND owner_id = ?1",
                [id],
            )?;
            tx.execute("DELETE FROM incidents WHERE id = ?1", [id])?;
            extra::save(tx, id, &Default::default())?;
            Ok(())
        })
    }

    /// Attaches a photo to an incident draft.
    pub fn attach_incident_photo(&self, incident_id: &str, photo: &NewPhoto) -> Result<crate::model::Photo> {
        let staged = self.stage_photo("photo", photo)?;
        let now = self.now_ms();
        self.write(|tx| {
            load_draft(tx, incident_id)?;
            let owner = PhotoOwner::Incident(incident_id.to_owned());
            let max = limits::PHOTOS_PER_RECORD;
            if photos_of(tx, &owner)?.len() >= max {
                return Err(Error::invalid("photo", Code::TooMany { max }));
            }
            tx.execute(
                "UPDATE incidents SET updated_at = ?2 WHERE id = ?1",
                params![incident_id, now],
            )?;
            let mut photos = insert_photos(tx, &owner, vec![staged], false, now)?;
            photos.pop().ok_or_else(|| Error::Internal("photo not recorded".into()))
        })
    }

    /// Submits a draft: checks the category's required fields, then queues the
    /// incident, its photos and its "reported" event in one transaction.
    pub fn submit_incident(&self, id: &str) -> Result<Incident> {
        let now = self.now_ms();
        let catalogue = self.catalogue();
        self.write(|tx| submit(tx, &catalogue, id, Origin::Form, now))
    }

    /// Adds a worker's event to a submitted incident's timeline: resolved on
    /// the spot (a note is required) or a note, with photos.
    pub fn add_incident_event(&self, incident_id: &str, input: &NewIncidentEvent) -> Result<IncidentEvent> {
        if !input.kind.is_worker_event() {
            return Err(Error::invalid("kind", Code::NotAllowed));
        }
        let note = validate::optional_text("note", &input.note, limits::NOTES, true)?;
        if note.is_empty() && (input.kind == EventKind::ResolvedOnSite || input.photos.is_empty()) {
            return Err(Error::invalid("note", Code::Required));
        }
        let staged = self.stage_photos("photos", &input.photos)?;
        let now = self.now_ms();
        self.write(|tx| {
            let incident = load_incident(tx, incident_id)?;
            let next = input
                .kind
                .next_status(incident.status)
                .ok_or_else(|| Error::invalid("kind", Code::NotAllowed))?;
            let actor = meta_get(tx, "account_id")?;
            let event_id = insert_event(tx, incident_id, input.kind, &note, actor, now)?;
            tx.execute(
                "UPDATE incidents SET status = ?2, updated_at = ?3 WHERE id = ?1",
                params![incident_id, next.as_str(), now],
            )?;
            insert_photos(tx, &PhotoOwner::IncidentEvent(event_id.clone()), staged, true, now)?;
            load_event(tx, &event_id)
        })
    }

    /// An incident by id, with its photos.
    pub fn get_incident(&self, id: &str) -> Result<Incident> {
        self.read(|c| load_incident(c, id))
    }

    /// An incident's timeline, oldest first, each event with its photos.
    pub fn incident_timeline(&self, incident_id: &str) -> Result<Vec<IncidentEvent>> {
        self.read(|c| {
            load_incident(c, incident_id)?;
            let mut stmt = c.prepare_cached(
                "SELECT id FROM incident_events WHERE incident_id = ?1 ORDER BY coalesce(server_at, at), id",
            )?;
            let ids = stmt
                .query_map([incident_id], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.iter().map(|id| load_event(c, id)).collect()
        })
    }
}

/// Reports an incident with its staged photos inside `tx`: a draft
/// written, then submitted.
pub(crate) fn report_in(
    tx: &Transaction<'_>,
    catalogue: &Catalogue,
    input: &NewIncident,
    staged: Vec<StagedPhoto>,
    origin: Origin,
    now: i64,
) -> Result<Incident> {
    let id = insert_draft(tx, catalogue, input, now)?;
    insert_photos(tx, &PhotoOwner::Incident(id.clone()), staged, false, now)?;
    submit(tx, catalogue, &id, origin, now)
}

/// Validates a new draft and writes it (drafts are not queued).
fn insert_draft(tx: &Transaction<'_>, catalogue: &Catalogue, input: &NewIncident, now: i64) -> Result<String> {
    require_grid(tx, &input.grid_id)?;
    let incident = Incident {
        id: crate::new_id(),
        grid_id: input.grid_id.clone(),
        category: input.category.clone(),
        title: input.title.clone(),
        description: PrivateText::new(input.description.clone()),
        location: input.location,
        address: PrivateText::new(input.address.clone()),
        occurred_at_ms: input.occurred_at_ms.unwrap_or(now),
        reporter: None,
        involved_residents: input.involved_residents.clone(),
        extra: extra::of_form(catalogue, Entity::Incident, &input.extra, false)?,
        status: IncidentStatus::Draft,
        department: None,
        deadline_at_ms: None,
        photos: Vec::new(),
        meta: Default::default(),
    };
    let incident = check_draft(tx, catalogue, incident, now)?;
    tx.prepare_cached(
        "INSERT INTO incidents (id, grid_id, category, title, description, location, address, occurred_at,
           involved, status, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'draft', ?10, ?10)",
    )?
    .execute(params![
        incident.id,
        incident.grid_id,
        incident.category,
        incident.title,
        incident.description.as_str(),
        incident.location.map(|l| serde_json::to_string(&l)).transpose()?,
        incident.address.as_str(),
        incident.occurred_at_ms,
        serde_json::to_string(&incident.involved_residents)?,
        now
    ])?;
    extra::save_new(tx, &incident.id, &incident.extra)?;
    Ok(incident.id)
}

/// Checks a draft's completeness for its category, then queues the incident,
/// its photos and its "reported" event.
fn submit(tx: &Transaction<'_>, catalogue: &Catalogue, id: &str, origin: Origin, now: i64) -> Result<Incident> {
    let draft = load_draft(tx, id)?;
    let mut incident = check_draft(tx, catalogue, draft, now)?;
    let category = catalogue
        .get(&incident.category)
        .ok_or_else(|| Error::invalid("category", Code::UnknownCategory))?;
    if category.requires_description && incident.description.is_empty() {
        return Err(Error::invalid("description", Code::Required));
    }
    if category.requires_location && incident.location.is_none() {
        return Err(Error::invalid("location", Code::Required));
    }
    if category.requires_photo && incident.photos.is_empty() {
        return Err(Error::invalid("photos", Code::Required));
    }
    // The district's required fields, by the catalogue it is submitted under.
    let given: serde_json::Map<_, _> = incident.extra.0.clone().into_iter().collect();
    rules::normalised_extra(catalogue, Entity::Incident, &given, origin == Origin::Form)?;
    if incident.title.is_empty() {
        incident.title = category.name_zh.clone();
    }
    incident.reporter = meta_get(tx, "account_id")?;
    tx.prepare_cached(
        "UPDATE incidents SET status = 'reported', title = ?2, reporter = ?3, submitted_at = ?4,
           updated_at = ?4 WHERE id = ?1",
    )?
    .execute(params![id, incident.title, incident.reporter, now])?;
    outbox::enqueue(tx, Entity::Incident, id, Change::Create, now)?;
    for photo in &incident.photos {
        queue_photo(tx, photo, now)?;
    }
    insert_event(tx, id, EventKind::Reported, "", incident.reporter.clone(), now)?;
    load_incident(tx, id)
}

/// Shape checks every draft passes on each save.
fn check_draft(conn: &Connection, catalogue: &Catalogue, mut d: Incident, now: i64) -> Result<Incident> {
    if catalogue.get(&d.category).is_none() {
        return Err(Error::invalid("category", Code::UnknownCategory));
    }
    d.title = validate::optional_text("title", &d.title, limits::TITLE, false)?;
    d.description = PrivateText::new(validate::optional_text(
        "description",
        d.description.as_str(),
        limits::NOTES,
        true,
    )?);
    d.address = PrivateText::new(validate::optional_text(
        "address",
        d.address.as_str(),
        limits::ADDRESS,
        false,
    )?);
    if let Some(l) = &d.location {
        l.validate("location")?;
    }
    validate::not_in_future("occurred_at_ms", d.occurred_at_ms, now)?;
    d.involved_residents = check_resident_refs(conn, "involved_residents", &d.involved_residents)?;
    Ok(d)
}

pub(crate) fn load_draft(conn: &Connection, id: &str) -> Result<Incident> {
    let incident = load_incident(conn, id)?;
    if incident.status != IncidentStatus::Draft {
        return Err(Error::invalid("status", Code::NotAllowed));
    }
    Ok(incident)
}

fn insert_event(
    tx: &Transaction<'_>,
    incident_id: &str,
    kind: EventKind,
    note: &str,
    actor: Option<String>,
    now: i64,
) -> Result<String> {
    let event = IncidentEvent {
        id: crate::new_id(),
        incident_id: incident_id.to_owned(),
        kind,
        actor,
        note: PrivateText::new(note.to_owned()),
        department: None,
        deadline_at_ms: None,
        at_ms: now,
        server_at_ms: None,
        photos: Vec::new(),
        sync: SyncStatus::OnlyOnDevice,
    };
    tx.prepare_cached(
        "INSERT INTO incident_events (id, incident_id, kind, actor, note, at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![event.id, incident_id, kind.as_str(), event.actor, note, now])?;
    outbox::enqueue(tx, Entity::IncidentEvent, &event.id, Change::Create, now)?;
    Ok(event.id)
}

pub(crate) fn load_incident(conn: &Connection, id: &str) -> Result<Incident> {
    let mut stmt = conn.prepare_cached(&format!("SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE i.id = ?1"))?;
    let mut rows = stmt.query([id])?;
    match rows.next()? {
        Some(r) => incident_from_row(conn, r),
        None => Err(Error::NotFound {
            entity: "incident",
            id: id.to_owned(),
        }),
    }
}

/// An incident from a row selected with [`INCIDENT_COLUMNS`].
pub(crate) fn incident_from_row(conn: &Connection, r: &Row<'_>) -> Result<Incident> {
    let id: String = r.get(0)?;
    let location: Option<String> = r.get(5)?;
    let involved: String = r.get(9)?;
    let status: String = r.get(10)?;
    let status = IncidentStatus::parse(&status).ok_or_else(|| Error::Internal("unknown incident status".into()))?;
    let mut meta = super::record_meta(conn, &id, r.get(13)?, r.get(14)?, r.get(15)?, r.get(16)?)?;
    if status == IncidentStatus::Draft {
        meta.sync = SyncStatus::Draft;
    }
    Ok(Incident {
        photos: photos_of(conn, &PhotoOwner::Incident(id.clone()))?,
        meta,
        grid_id: r.get(1)?,
        category: r.get(2)?,
        title: r.get(3)?,
        description: PrivateText::new(r.get::<_, String>(4)?),
        location: location.map(|l| serde_json::from_str(&l)).transpose()?,
        address: PrivateText::new(r.get::<_, String>(6)?),
        occurred_at_ms: r.get(7)?,
        reporter: r.get(8)?,
        involved_residents: serde_json::from_str(&involved)?,
        status,
        department: r.get(11)?,
        deadline_at_ms: r.get(12)?,
        extra: super::extra::load(conn, &id)?,
        id,
    })
}

pub(crate) fn load_event(conn: &Connection, id: &str) -> Result<IncidentEvent> {
    let row = conn
        .prepare_cached(
            "SELECT incident_id, kind, actor, note, department, deadline_at, at, server_at, server_version
             FROM incident_events WHERE id = ?1",
        )?
        .query_row([id], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<i64>>(5)?,
                r.get::<_, i64>(6)?,
                r.get::<_, Option<i64>>(7)?,
                r.get::<_, Option<i64>>(8)?,
            ))
        })?;
    let (incident_id, kind, actor, note, department, deadline_at_ms, at_ms, server_at_ms, version) = row;
    Ok(IncidentEvent {
        id: id.to_owned(),
        incident_id,
        kind: EventKind::parse(&kind).ok_or_else(|| Error::Internal("unknown event kind".into()))?,
        actor,
        note: PrivateText::new(note),
        department,
        deadline_at_ms,
        at_ms,
        server_at_ms,
        photos: photos_of(conn, &PhotoOwner::IncidentEvent(id.to_owned()))?,
        sync: outbox::record_status(conn, id, version)?,
    })
}
