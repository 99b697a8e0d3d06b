//! Capture: every write a grid worker makes.
//!
//! Each public call validates its input, then writes the record and its
//! outbox operation(s) in one transaction, and returns the saved record with
//! its sync status. Bad input returns a [`crate::Error::Validation`] naming
//! the field, and nothing is written.

pub(crate) mod incidents;
mod photos;
mod places;
pub(crate) mod residents;
mod residents_csv;
mod service_logs;

use chrono::NaiveDate;
use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::entity::Entity;
use crate::error::{Code, Error, Result};
use crate::model::{CareTag, PlaceKind, ResidenceStatus, ServiceKind, Sex};
use crate::validate::Location;

pub use photos::{NewPhoto, PhotoSource};

/// Loaders of every captured record kind by id (deleted ones included).
pub(crate) mod load {
    pub(crate) use super::incidents::{load_event as incident_event, load_incident as incident};
    pub(crate) use super::photos::load_photo as photo;
    pub(crate) use super::places::{load_household as household, load_place as place};
    pub(crate) use super::service_logs::load_service_log as service_log;
}
pub use residents::ImportReport;
pub use residents_csv::{CsvImportReport, ResidentsCsv, parse_residence_label, parse_residents_csv, parse_sex_label};

/// A new compound, building or unit.
#[derive(Clone, Debug)]
pub struct NewPlace {
    /// Owning grid.
    pub grid_id: String,
    /// Compound, building or unit.
    pub kind: PlaceKind,
    /// The compound of a building (optional), the building of a unit (required).
    pub parent_id: Option<String>,
    /// Name.
    pub name: String,
}

/// One change to a place.
#[derive(Clone, Debug)]
pub enum PlaceChange {
    /// Rename.
    Name(String),
}

/// A new room / household.
#[derive(Clone, Debug)]
pub struct NewHousehold {
    /// Owning grid.
    pub grid_id: String,
    /// The unit it is in (or the building, when the building has no units).
    pub unit_id: Option<String>,
    /// Room number.
    pub room: String,
    /// Address line; when blank it is composed from the places and the room.
    pub address: Option<String>,
    /// Notes.
    pub notes: String,
}

/// One change to a household.
#[derive(Clone, Debug)]
pub enum HouseholdChange {
    /// New room number.
    Room(String),
    /// New address line.
    Address(String),
    /// New notes.
    Notes(String),
}

/// A new resident, as entered.
#[derive(Clone, Debug)]
pub struct NewResident {
    /// Owning grid.
    pub grid_id: String,
    /// Household, if known.
    pub household_id: Option<String>,
    /// Full name.
    pub name: String,
    /// Sex (must match the ID number when one is given).
    pub sex: Sex,
    /// 18-character ID number.
    pub id_number: Option<String>,
    /// Birth date; filled from the ID number when one is given.
    pub birth_date: Option<NaiveDate>,
    /// Mobile or landline number.
    pub phone: Option<String>,
    /// Registration status.
    pub residence: ResidenceStatus,
    /// Care tags.
    pub care_tags: Vec<CareTag>,
    /// Notes.
    pub notes: String,
}

/// One change to a resident. Only changed fields travel to the server, and
/// they merge field by field with other devices' edits.
#[derive(Clone, Debug)]
pub enum ResidentChange {
    /// New name.
    Name(String),
    /// New sex.
    Sex(Sex),
    /// New (or no) ID number; the birth date follows it.
    IdNumber(Option<String>),
    /// New (or no) birth date.
    BirthDate(Option<NaiveDate>),
    /// New (or no) phone.
    Phone(Option<String>),
    /// Moved to another household (or none).
    Household(Option<String>),
    /// New registration status.
    Residence(ResidenceStatus),
    /// Add a care tag.
    AddCareTag(CareTag),
    /// Remove a care tag.
    RemoveCareTag(CareTag),
    /// New notes.
    Notes(String),
}

/// A new incident draft. Drafts are checked for shape when saved and for
/// completeness (the category's required fields) when submitted.
#[derive(Clone, Debug)]
pub struct NewIncident {
    /// Owning grid.
    pub grid_id: String,
    /// Category code from the catalogue.
    pub category: String,
    /// Short title (the category name when left blank).
    pub title: String,
    /// What was seen.
    pub description: String,
    /// GPS location.
    pub location: Option<Location>,
    /// Address text.
    pub address: String,
    /// When it was observed; `None` means now.
    pub occurred_at_ms: Option<i64>,
    /// Residents concerned.
    pub involved_residents: Vec<String>,
}

/// One change to an incident draft.
#[derive(Clone, Debug)]
pub enum IncidentChange {
    /// New category.
    Category(String),
    /// New title.
    Title(String),
    /// New description.
    Description(String),
    /// New (or no) location.
    Location(Option<Location>),
    /// New address.
    Address(String),
    /// New observation time.
    OccurredAt(i64),
    /// New list of residents concerned.
    InvolvedResidents(Vec<String>),
}

/// A timeline event added by the worker ("resolved on the spot", a note).
#[derive(Clone, Debug)]
pub struct NewIncidentEvent {
    /// `ResolvedOnSite` or `Note`.
    pub kind: crate::model::EventKind,
    /// What was done (required for resolved on site).
    pub note: String,
    /// Photos of the result.
    pub photos: Vec<NewPhoto>,
}

/// A new service log.
#[derive(Clone, Debug)]
pub struct NewServiceLog {
    /// Owning grid.
    pub grid_id: String,
    /// Kind of help.
    pub kind: ServiceKind,
    /// Residents served.
    pub resident_ids: Vec<String>,
    /// What was done.
    pub notes: String,
    /// When; `None` means now.
    pub occurred_at_ms: Option<i64>,
    /// Photos.
    pub photos: Vec<NewPhoto>,
}

/// The wire fields of a record: its serde form without the id.
pub(crate) fn fields_of<T: Serialize>(record: &T) -> Result<Map<String, Value>> {
    match serde_json::to_value(record)? {
        Value::Object(mut m) => {
            m.remove("id");
            Ok(m)
        }
        _ => Err(Error::Internal("record did not serialise to an object".into())),
    }
}

/// The fields of `new` that differ from `old`.
pub(crate) fn changed_fields(old: &Map<String, Value>, new: &Map<String, Value>) -> Map<String, Value> {
    new.iter()
        .filter(|(k, v)| old.get(*k) != Some(*v))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Checks that the grid exists on this device.
pub(crate) fn require_grid(conn: &Connection, grid_id: &str) -> Result<()> {
    let found: Option<i64> = conn
        .prepare_cached("SELECT 1 FROM grids WHERE id = ?1")?
        .query_row([grid_id], |r| r.get(0))
        .optional()?;
    if found.is_none() {
        return Err(Error::invalid("grid_id", Code::UnknownReference));
    }
    Ok(())
}

/// Looks up `(grid_id, deleted)` of a referenced row, refusing a missing or
/// deleted one with `field` named.
pub(crate) fn require_live(conn: &Connection, table: &str, id: &str, field: &str) -> Result<String> {
    let row: Option<(String, Option<i64>)> = conn
        .prepare_cached(&format!("SELECT grid_id, deleted_at FROM {table} WHERE id = ?1"))?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        None => Err(Error::invalid(field, Code::UnknownReference)),
        Some((_, Some(_))) => Err(Error::invalid(field, Code::Deleted)),
        Some((grid, None)) => Ok(grid),
    }
}

/// Checks a list of resident references: each exists and is live, no repeats.
pub(crate) fn check_resident_refs(conn: &Connection, field: &str, ids: &[String]) -> Result<Vec<String>> {
    let max = crate::validate::limits::RESIDENTS_PER_RECORD;
    if ids.len() > max {
        return Err(Error::invalid(field, Code::TooMany { max }));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        require_live(conn, "residents", id, field)?;
        if !out.contains(id) {
            out.push(id.clone());
        }
    }
    Ok(out)
}

/// Loads the `(server_version, deleted_at)` of a record for an edit, with the
/// right errors for a missing or deleted one.
pub(crate) fn editable(conn: &Connection, entity: Entity, id: &str) -> Result<Option<i64>> {
    let table = crate::entity::table(entity);
    let row: Option<(Option<i64>, Option<i64>)> = conn
        .prepare_cached(&format!("SELECT server_version, deleted_at FROM {table} WHERE id = ?1"))?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    match row {
        None => Err(Error::NotFound {
            entity: entity.as_str(),
            id: id.to_owned(),
        }),
        Some((_, Some(_))) => Err(Error::invalid("id", Code::Deleted)),
        Some((version, None)) => Ok(version),
    }
}

/// Bookkeeping of a record read from its row, with its honest sync status.
pub(crate) fn record_meta(
    conn: &Connection,
    id: &str,
    created_at_ms: i64,
    updated_at_ms: i64,
    server_version: Option<i64>,
    deleted_at: Option<i64>,
) -> Result<crate::model::RecordMeta> {
    Ok(crate::model::RecordMeta {
        created_at_ms,
        updated_at_ms,
        server_version,
        deleted: deleted_at.is_some(),
        sync: crate::outbox::record_status(conn, id, server_version)?,
    })
}
