//! What a worker enters to capture or change a record: the inputs of the
//! core's `create_*` and `update_*` calls, before any rule is applied (the
//! rules are [`crate::rules`] and [`crate::validate`]).

use std::path::PathBuf;

use chrono::NaiveDate;

use crate::model::{Answer, CareTag, EventKind, PlaceKind, ResidenceStatus, ServiceKind, Sex};
use crate::validate::Location;

/// Where a photo's bytes come from.
#[derive(Clone)]
pub enum PhotoSource {
    /// A file the camera wrote; it is copied, the original is left alone.
    File(PathBuf),
    /// Bytes in memory.
    Bytes(Vec<u8>),
}

impl std::fmt::Debug for PhotoSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PhotoSource::File(_) => f.write_str("PhotoSource::File(..)"),
            PhotoSource::Bytes(b) => write!(f, "PhotoSource::Bytes({} bytes)", b.len()),
        }
    }
}

/// A photo to attach.
#[derive(Clone, Debug)]
pub struct NewPhoto {
    /// The bytes.
    pub source: PhotoSource,
    /// When it was taken (device clock), if known.
    pub taken_at_ms: Option<i64>,
    /// Where it was taken, if known.
    pub location: Option<Location>,
}

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
    /// Values of the district's own fields (catalogue `field_defs`), one per field.
    pub extra: Vec<ItemAnswer>,
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
    /// Values of the district's own fields (catalogue `field_defs`), one per field.
    pub extra: Vec<ItemAnswer>,
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
    /// Values of the district's own fields (catalogue `field_defs`), one per field.
    pub extra: Vec<ItemAnswer>,
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
    /// Values of the district's own fields (catalogue `field_defs`), one per field.
    pub extra: Vec<ItemAnswer>,
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
    pub kind: EventKind,
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

/// An inspection as the worker fills it in.
#[derive(Clone, Debug)]
pub struct NewInspection {
    /// Owning grid.
    pub grid_id: String,
    /// The place inspected (compound, building or unit), if any.
    pub place_id: Option<String>,
    /// The checklist's code (see the catalogue).
    pub checklist: String,
    /// The answers, one per item answered.
    pub answers: Vec<ItemAnswer>,
    /// Photos, each of one item.
    pub photos: Vec<ItemPhoto>,
    /// Where (GPS): required.
    pub location: Option<Location>,
    /// What else the worker noted.
    pub notes: String,
    /// When; `None` means now.
    pub occurred_at_ms: Option<i64>,
}

/// The answer to one item: of a checklist, or one of the district's own
/// fields of a record.
#[derive(Clone, Debug)]
pub struct ItemAnswer {
    /// The item's (or field's) code.
    pub item: String,
    /// The answer.
    pub answer: Answer,
}

/// A photo of one item.
#[derive(Clone, Debug)]
pub struct ItemPhoto {
    /// The item's code.
    pub item: String,
    /// The photo.
    pub photo: NewPhoto,
}
