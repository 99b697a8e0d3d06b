//! Inspections: a place checked against one of the catalogue's checklists,
//! every item's answer and photos, and GPS. Each failed item that raises an
//! incident reports one (with that item's photos) in the same transaction,
//! so a hazard found is never only a tick in a form. The answers are checked
//! by the rules the server applies (`rules::normalised_answers`,
//! `rules::inspection_failures`).

use std::collections::BTreeMap;

use rusqlite::{Connection, params};
use serde_json::{Map, Value};

use super::extra::Origin;
use super::incidents::report_in;
use super::photos::{StagedPhoto, insert_photos, photos_of, queue_photo};
use super::{NewIncident, NewInspection, record_meta, require_grid, require_live};
use crate::catalogue::Checklist;
use crate::entity::Entity;
use crate::error::{Code, Error, Result};
use crate::model::{Incident, Inspection, PhotoOwner};
use crate::outbox::{self, Change};
use crate::privacy::PrivateText;
use crate::rules;
use crate::store::Store;
use crate::validate::{self, limits};

/// What recording an inspection wrote.
#[derive(Clone, Debug, PartialEq)]
pub struct InspectionReport {
    /// The inspection.
    pub inspection: Inspection,
    /// The incidents its failed items raised (reported, queued).
    pub raised: Vec<Incident>,
}

impl Store {
    /// Records an inspection with its photos; every failed item that raises
    /// an incident reports one, with the item's photos, in one transaction.
    /// Errors name the item (`answers.detector_installed`,
    /// `item_photos.exit_photo`), and nothing is written.
    pub fn record_inspection(&self, input: &NewInspection) -> Result<InspectionReport> {
        let catalogue = self.catalogue();
        let checklist = catalogue
            .checklist(&input.checklist)
            .filter(|c| c.usable())
            .ok_or_else(|| Error::invalid("checklist", Code::UnknownReference))?;
        let mut answers = Map::new();
        for a in &input.answers {
            let value = serde_json::to_value(&a.answer)?;
            if answers.insert(a.item.clone(), value).is_some() {
                return Err(Error::invalid(
                    item_field("answers", checklist, &a.item),
                    Code::Duplicate,
                ));
            }
        }
        let answers = rules::normalised_answers(checklist, &answers)?;
        let location = input
            .location
            .ok_or_else(|| Error::invalid("location", Code::Required))?;
        location.validate("location")?;
        let notes = validate::optional_text("notes", &input.notes, limits::NOTES, true)?;
        let now = self.now_ms();
        let occurred = input.occurred_at_ms.unwrap_or(now);
        validate::not_in_future("occurred_at_ms", occurred, now)?;
        let mut staged: Vec<(String, StagedPhoto)> = Vec::with_capacity(input.photos.len());
        for (i, p) in input.photos.iter().enumerate() {
            if checklist.item(&p.item).is_none() {
                return Err(Error::invalid(format!("photos[{i}]"), Code::UnknownReference));
            }
            staged.push((p.item.clone(), self.stage_photo(&format!("photos[{i}]"), &p.photo)?));
        }
        self.write(|tx| {
            require_grid(tx, &input.grid_id)?;
            if let Some(place) = &input.place_id
                && require_live(tx, "places", place, "place_id")? != input.grid_id
            {
                return Err(Error::invalid("place_id", Code::OtherGrid));
            }
            let id = crate::new_id();
            let mut item_photos: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut photos = Vec::with_capacity(staged.len());
            for (item, s) in &staged {
                let photo = insert_photos(tx, &PhotoOwner::Inspection(id.clone()), vec![s.clone()], false, now)?;
                item_photos
                    .entry(item.clone())
                    .or_default()
                    .extend(photo.iter().map(|p| p.id.clone()));
                photos.extend(photo);
            }
            let photo_map: Map<String, Value> = item_photos
                .iter()
                .map(|(k, v)| (k.clone(), Value::from(v.clone())))
                .collect();
            let failed = rules::inspection_failures(checklist, &answers, &photo_map)?;
            // The incidents first: the inspection refers to them.
            let mut raised = Vec::new();
            for code in &failed {
                let Some(item) = checklist.item(code) else { continue };
                let Some(category) = &item.raises else { continue };
                let report = NewIncident {
                    extra: Vec::new(),
                    grid_id: input.grid_id.clone(),
                    category: category.clone(),
                    title: String::new(),
                    description: format!("{}：{}（未通过）", checklist.name_zh, item.label_zh),
                    location: Some(location),
                    address: String::new(),
                    occurred_at_ms: Some(occurred),
                    involved_residents: vec![],
                };
                let item_staged: Vec<StagedPhoto> = staged
                    .iter()
                    .filter(|(i, _)| i == code)
                    .map(|(_, s)| s.clone())
                    .collect();
                let incident =
                    report_in(tx, &catalogue, &report, item_staged, Origin::Generated, now).map_err(|e| match e {
                        // What the category requires of the report is the item's to give.
                        Error::Validation(v) if v.field == "photos" => {
                            Error::invalid(format!("item_photos.{code}"), v.code)
                        }
                        other => other,
                    })?;
                raised.push(incident);
            }
            let raised_ids: Vec<&str> = raised.iter().map(|i| i.id.as_str()).collect();
            tx.prepare_cached(
                "INSERT INTO inspections (id, grid_id, place_id, checklist, answers, item_photos, raised_incidents,
                   location, notes, occurred_at, created_at, updated_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11)",
            )?
            .execute(params![
                id,
                input.grid_id,
                input.place_id,
                checklist.code,
                serde_json::to_string(&answers)?,
                serde_json::to_string(&item_photos)?,
                serde_json::to_string(&raised_ids)?,
                serde_json::to_string(&location)?,
                notes,
                occurred,
                now
            ])?;
            outbox::enqueue(tx, Entity::Inspection, &id, Change::Create, now)?;
            for photo in &photos {
                queue_photo(tx, photo, now)?;
            }
            Ok(InspectionReport {
                inspection: load_inspection(tx, &id)?,
                raised,
            })
        })
    }

    /// An inspection by id, with its photos.
    pub fn get_inspection(&self, id: &str) -> Result<Inspection> {
        self.read(|c| load_inspection(c, id))
    }

    /// The inspections of a grid, newest first (at most `limit`, 1 to 500).
    pub fn inspections_of(&self, grid_id: &str, limit: u32) -> Result<Vec<Inspection>> {
        if !(1..=500).contains(&limit) {
            return Err(Error::invalid("limit", Code::OutOfRange));
        }
        self.read(|c| {
            let ids = c
                .prepare_cached(
                    "SELECT id FROM inspections WHERE grid_id = ?1 AND deleted_at IS NULL
                     ORDER BY occurred_at DESC, id DESC LIMIT ?2",
                )?
                .query_map(params![grid_id, limit], |r| r.get::<_, String>(0))?
                .collect::<rusqlite::Result<Vec<_>>>()?;
            ids.iter().map(|id| load_inspection(c, id)).collect()
        })
    }
}

/// `answers.<item>` for an item of the checklist; just `answers` for a code
/// it does not have (never repeat what the caller typed).
fn item_field(list: &str, checklist: &Checklist, item: &str) -> String {
    match checklist.item(item) {
        Some(i) => format!("{list}.{}", i.code),
        None => list.to_owned(),
    }
}

pub(crate) fn load_inspection(conn: &Connection, id: &str) -> Result<Inspection> {
    let mut stmt = conn.prepare_cached(
        "SELECT grid_id, place_id, checklist, answers, item_photos, raised_incidents, location, notes, occurred_at,
           created_at, updated_at, server_version, deleted_at
         FROM inspections WHERE id = ?1",
    )?;
    let mut rows = stmt.query([id])?;
    let Some(r) = rows.next()? else {
        return Err(Error::NotFound {
            entity: "inspection",
            id: id.to_owned(),
        });
    };
    let json = |i: usize| -> Result<String> { Ok(r.get::<_, String>(i)?) };
    let location: Option<String> = r.get(6)?;
    Ok(Inspection {
        id: id.to_owned(),
        grid_id: r.get(0)?,
        place_id: r.get(1)?,
        checklist: r.get(2)?,
        answers: serde_json::from_str(&json(3)?)?,
        item_photos: serde_json::from_str(&json(4)?)?,
        raised_incidents: serde_json::from_str(&json(5)?)?,
        location: location.map(|l| serde_json::from_str(&l)).transpose()?,
        notes: PrivateText::new(r.get::<_, String>(7)?),
        occurred_at_ms: r.get(8)?,
        photos: photos_of(conn, &PhotoOwner::Inspection(id.to_owned()))?,
        meta: record_meta(conn, id, r.get(9)?, r.get(10)?, r.get(11)?, r.get(12)?)?,
    })
}
