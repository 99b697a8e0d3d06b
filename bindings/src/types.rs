//! The data that crosses the FFI.
//!
//! Core types whose fields are all FFI-friendly are exposed as they are
//! (`#[uniffi::remote]` restates their shape; the compiler checks it matches).
//! Records holding personal data are mirrored here with plain strings: the
//! core's masked wrappers (`PersonName`, `IdNumber`, ...) have no meaning in
//! Kotlin or Swift, so the shells must not log records (see the README).
//! Dates are ISO `YYYY-MM-DD` strings; times are milliseconds since the epoch.

use std::path::PathBuf;

use chrono::NaiveDate;
use fieldgrid_core as core;
use fieldgrid_core::catalogue::Term;
use fieldgrid_core::query::StatusCounts;
use fieldgrid_core::validate::CoordinateSystem;
use fieldgrid_core::validate::Location;
use fieldgrid_core::{Answer, AnswerType, ItemAnswer};
use fieldgrid_core::{
    CareTag, Category, CategoryGroup, Code, EventKind, Extra, Grid, HouseholdChange, IncidentChange, IncidentStatus,
    NewHousehold, NewIncident, NewPlace, Photo, PhotoOwner, Place, PlaceChange, PlaceKind, RecordMeta, ResidenceStatus,
    ServiceKind, Sex, SyncStatus, ValidationError, VisitCounts, VisitState,
};

// ----- Enums and plain records of the core, exposed as they are -----

#[uniffi::remote(Enum)]
pub enum Sex {
    Male,
    Female,
}

#[uniffi::remote(Enum)]
pub enum ResidenceStatus {
    Registered,
    Actual,
    Floating,
}

// Care tags and service kinds are codes (`"elderly_living_alone"`,
// `"visit"`): the built-in ones and those the district's catalogue adds
// (`FieldGridStore::care_tags` and `service_kinds` list them for forms).
uniffi::custom_type!(CareTag, String, {
    remote,
    lower: |tag| tag.as_str().to_owned(),
    try_lift: |code| Ok(CareTag::new(code)),
});

uniffi::custom_type!(ServiceKind, String, {
    remote,
    lower: |kind| kind.as_str().to_owned(),
    try_lift: |code| Ok(ServiceKind::new(code)),
});

#[uniffi::remote(Record)]
pub struct Term {
    pub code: String,
    pub name_zh: String,
    pub retired: bool,
}

#[uniffi::remote(Enum)]
pub enum VisitState {
    Overdue,
    DueSoon,
    Due,
    Done,
}

#[uniffi::remote(Record)]
pub struct VisitCounts {
    pub overdue: u64,
    pub due_soon: u64,
    pub due: u64,
    pub done: u64,
}

#[uniffi::remote(Enum)]
pub enum PlaceKind {
    Compound,
    Building,
    Unit,
}

#[uniffi::remote(Enum)]
pub enum IncidentStatus {
    Draft,
    Reported,
    Dispatched,
    Accepted,
    ResolvedOnSite,
    Resolved,
    Closed,
    Returned,
}

#[uniffi::remote(Enum)]
pub enum EventKind {
    Reported,
    Dispatched,
    Accepted,
    Progress,
    ResolvedOnSite,
    Resolved,
    Closed,
    Returned,
    Note,
}

#[uniffi::remote(Enum)]
pub enum CoordinateSystem {
    Wgs84,
    Gcj02,
    Bd09,
}

#[uniffi::remote(Enum)]
pub enum CategoryGroup {
    Governance,
    SafetyHazard,
    Livelihood,
}

#[uniffi::remote(Enum)]
pub enum SyncStatus {
    Draft,
    OnlyOnDevice,
    Sending,
    OnServer,
    Conflict {
        fields: Vec<String>,
    },
    Rejected {
        code: String,
        field: Option<String>,
        message: String,
    },
}

#[uniffi::remote(Enum)]
pub enum PhotoOwner {
    Incident(String),
    IncidentEvent(String),
    ServiceLog(String),
    Inspection(String),
}

#[uniffi::remote(Enum)]
pub enum Answer {
    YesNo(bool),
    Number(f64),
    Text(String),
}

#[uniffi::remote(Enum)]
pub enum AnswerType {
    YesNo,
    Number,
    Text,
    Choice,
    Photo,
    Unknown,
}

#[uniffi::remote(Enum)]
pub enum PlaceChange {
    Name(String),
}

#[uniffi::remote(Enum)]
pub enum HouseholdChange {
    Room(String),
    Address(String),
    Notes(String),
}

#[uniffi::remote(Enum)]
pub enum IncidentChange {
    Category(String),
    Title(String),
    Description(String),
    Location(Option<Location>),
    Address(String),
    OccurredAt(i64),
    InvolvedResidents(Vec<String>),
}

#[uniffi::remote(Record)]
pub struct Location {
    pub latitude: f64,
    pub longitude: f64,
    #[uniffi(default)]
    pub accuracy_m: Option<f64>,
    pub crs: CoordinateSystem,
}

#[uniffi::remote(Record)]
pub struct RecordMeta {
    pub created_at_ms: i64,
    pub updated_at_ms: i64,
    pub server_version: Option<i64>,
    pub deleted: bool,
    pub sync: SyncStatus,
}

#[uniffi::remote(Record)]
pub struct Grid {
    pub id: String,
    pub code: String,
    pub name: String,
    pub community: String,
    pub sub_district: String,
}

#[uniffi::remote(Record)]
pub struct Place {
    pub id: String,
    pub grid_id: String,
    pub kind: PlaceKind,
    pub parent_id: Option<String>,
    pub name: String,
    pub extra: Extra,
    pub meta: RecordMeta,
}

// The district's own fields of a record (`extra`) cross as a list of
// answers, one per field, by code. A value of a kind this build does not
// know (a newer catalogue's) is left out of the list; the store keeps it.
uniffi::custom_type!(Extra, Vec<ItemAnswer>, {
    remote,
    lower: |extra| extra.answers().into_iter().map(|(item, answer)| ItemAnswer { item, answer }).collect(),
    try_lift: |list| Ok(Extra::from_answers(list.into_iter().map(|a| (a.item, a.answer)))),
});

#[uniffi::remote(Record)]
pub struct StatusCounts {
    pub records: u64,
    pub on_server: u64,
    pub only_on_device: u64,
    pub sending: u64,
    pub rejected: u64,
    pub in_conflict: u64,
}

#[uniffi::remote(Record)]
pub struct Category {
    pub code: String,
    pub group: CategoryGroup,
    pub name_zh: String,
    pub name_en: String,
    pub requires_photo: bool,
    pub requires_location: bool,
    pub requires_description: bool,
    pub default_deadline_hours: u32,
}

#[uniffi::remote(Record)]
pub struct NewPlace {
    pub grid_id: String,
    pub kind: PlaceKind,
    #[uniffi(default)]
    pub parent_id: Option<String>,
    pub name: String,
    #[uniffi(default)]
    pub extra: Vec<ItemAnswer>,
}

#[uniffi::remote(Record)]
pub struct NewHousehold {
    pub grid_id: String,
    #[uniffi(default)]
    pub unit_id: Option<String>,
    pub room: String,
    #[uniffi(default)]
    pub address: Option<String>,
    #[uniffi(default)]
    pub notes: String,
    #[uniffi(default)]
    pub extra: Vec<ItemAnswer>,
}

#[uniffi::remote(Record)]
pub struct NewIncident {
    pub grid_id: String,
    pub category: String,
    #[uniffi(default)]
    pub title: String,
    #[uniffi(default)]
    pub description: String,
    #[uniffi(default)]
    pub location: Option<Location>,
    #[uniffi(default)]
    pub address: String,
    #[uniffi(default)]
    pub occurred_at_ms: Option<i64>,
    #[uniffi(default)]
    pub involved_residents: Vec<String>,
    #[uniffi(default)]
    pub extra: Vec<ItemAnswer>,
}

#[uniffi::remote(Record)]
pub struct Photo {
    pub id: String,
    pub owner: PhotoOwner,
    pub sha256: String,
    pub size: u64,
    pub mime: String,
    pub taken_at_ms: Option<i64>,
    pub location: Option<Location>,
    pub uploaded: bool,
}

// ----- Records mirrored here: personal data as plain strings, dates as text -----

/// A room / household (户). `address` and `notes` are personal data.
#[derive(uniffi::Record, Clone, Debug)]
pub struct Household {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// The unit (or building) it is in.
    pub unit_id: Option<String>,
    /// The building.
    pub building_id: Option<String>,
    /// Room number.
    pub room: String,
    /// Full address line.
    pub address: String,
    /// Notes.
    pub notes: String,
    /// The district's own fields, one answer per field given.
    pub extra: Extra,
    /// Bookkeeping and sync status.
    pub meta: RecordMeta,
}

impl From<core::Household> for Household {
    fn from(h: core::Household) -> Self {
        Household {
            id: h.id,
            grid_id: h.grid_id,
            unit_id: h.unit_id,
            building_id: h.building_id,
            room: h.room,
            address: h.address.as_str().to_owned(),
            notes: h.notes.as_str().to_owned(),
            extra: h.extra,
            meta: h.meta,
        }
    }
}

/// A resident (居民). `name`, `id_number`, `phone` and `notes` are personal
/// data: show them masked unless the worker is looking at this resident.
#[derive(uniffi::Record, Clone, Debug)]
pub struct Resident {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// Household, if known.
    pub household_id: Option<String>,
    /// Full name.
    pub name: String,
    /// Sex.
    pub sex: Sex,
    /// 18-character ID number.
    pub id_number: Option<String>,
    /// Birth date, `YYYY-MM-DD`.
    pub birth_date: Option<String>,
    /// Phone number.
    pub phone: Option<String>,
    /// Registration status.
    pub residence: ResidenceStatus,
    /// Care tags, sorted.
    pub care_tags: Vec<CareTag>,
    /// Notes.
    pub notes: String,
    /// The district's own fields, one answer per field given (may be personal data).
    pub extra: Extra,
    /// Bookkeeping and sync status.
    pub meta: RecordMeta,
}

impl From<core::Resident> for Resident {
    fn from(r: core::Resident) -> Self {
        Resident {
            id: r.id,
            grid_id: r.grid_id,
            household_id: r.household_id,
            name: r.name.as_str().to_owned(),
            sex: r.sex,
            id_number: r.id_number.map(|n| n.as_str().to_owned()),
            birth_date: r.birth_date.map(|d| d.to_string()),
            phone: r.phone.map(|p| p.as_str().to_owned()),
            residence: r.residence,
            care_tags: r.care_tags,
            notes: r.notes.as_str().to_owned(),
            extra: r.extra,
            meta: r.meta,
        }
    }
}

/// A new resident, as entered.
#[derive(uniffi::Record, Clone, Debug)]
pub struct NewResident {
    /// Owning grid.
    pub grid_id: String,
    /// Household, if known.
    #[uniffi(default)]
    pub household_id: Option<String>,
    /// Full name.
    pub name: String,
    /// Sex (must match the ID number when one is given).
    pub sex: Sex,
    /// 18-character ID number.
    #[uniffi(default)]
    pub id_number: Option<String>,
    /// Birth date `YYYY-MM-DD`; filled from the ID number when one is given.
    #[uniffi(default)]
    pub birth_date: Option<String>,
    /// Mobile or landline number.
    #[uniffi(default)]
    pub phone: Option<String>,
    /// Registration status.
    pub residence: ResidenceStatus,
    /// Care tags.
    #[uniffi(default)]
    pub care_tags: Vec<CareTag>,
    /// Notes.
    #[uniffi(default)]
    pub notes: String,
    /// The district's own fields (see `FieldGridStore::form_fields`), one answer per field.
    #[uniffi(default)]
    pub extra: Vec<ItemAnswer>,
}

/// A date field given as text: `YYYY-MM-DD`, or a validation error naming `field`.
fn date(field: &str, value: Option<String>) -> Result<Option<NaiveDate>, ValidationError> {
    value
        .map(|s| {
            NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| ValidationError::new(field, Code::BadDate))
        })
        .transpose()
}

impl NewResident {
    pub(crate) fn into_core(self) -> Result<core::NewResident, ValidationError> {
        Ok(core::NewResident {
            birth_date: date("birth_date", self.birth_date)?,
            grid_id: self.grid_id,
            household_id: self.household_id,
            name: self.name,
            sex: self.sex,
            id_number: self.id_number,
            phone: self.phone,
            residence: self.residence,
            care_tags: self.care_tags,
            notes: self.notes,
            extra: self.extra,
        })
    }
}

/// One change to a resident; only changed fields travel to the server.
#[allow(missing_docs)] // each variant's field is the new value its doc names
#[derive(uniffi::Enum, Clone, Debug)]
pub enum ResidentChange {
    /// New name.
    Name { name: String },
    /// New sex.
    Sex { sex: Sex },
    /// New (or no) ID number; the birth date follows it.
    IdNumber { id_number: Option<String> },
    /// New (or no) birth date, `YYYY-MM-DD`.
    BirthDate { birth_date: Option<String> },
    /// New (or no) phone.
    Phone { phone: Option<String> },
    /// Moved to another household (or none).
    Household { household_id: Option<String> },
    /// New registration status.
    Residence { residence: ResidenceStatus },
    /// Add a care tag.
    AddCareTag { tag: CareTag },
    /// Remove a care tag.
    RemoveCareTag { tag: CareTag },
    /// New notes.
    Notes { notes: String },
}

impl ResidentChange {
    pub(crate) fn into_core(self) -> Result<core::ResidentChange, ValidationError> {
        use core::ResidentChange as C;
        Ok(match self {
            ResidentChange::Name { name } => C::Name(name),
            ResidentChange::Sex { sex } => C::Sex(sex),
            ResidentChange::IdNumber { id_number } => C::IdNumber(id_number),
            ResidentChange::BirthDate { birth_date } => C::BirthDate(date("birth_date", birth_date)?),
            ResidentChange::Phone { phone } => C::Phone(phone),
            ResidentChange::Household { household_id } => C::Household(household_id),
            ResidentChange::Residence { residence } => C::Residence(residence),
            ResidentChange::AddCareTag { tag } => C::AddCareTag(tag),
            ResidentChange::RemoveCareTag { tag } => C::RemoveCareTag(tag),
            ResidentChange::Notes { notes } => C::Notes(notes),
        })
    }
}

/// Where a photo's bytes come from.
#[allow(missing_docs)] // the variant docs name the field
#[derive(uniffi::Enum, Clone)]
pub enum PhotoSource {
    /// A file the camera wrote; it is copied into the store, the original is left alone.
    File { path: String },
    /// Bytes in memory.
    Bytes { bytes: Vec<u8> },
}

/// A photo to attach.
#[derive(uniffi::Record, Clone)]
pub struct NewPhoto {
    /// The bytes.
    pub source: PhotoSource,
    /// When it was taken (device clock), if known.
    #[uniffi(default)]
    pub taken_at_ms: Option<i64>,
    /// Where it was taken, if known.
    #[uniffi(default)]
    pub location: Option<Location>,
}

impl From<NewPhoto> for core::NewPhoto {
    fn from(p: NewPhoto) -> Self {
        core::NewPhoto {
            source: match p.source {
                PhotoSource::File { path } => core::PhotoSource::File(PathBuf::from(path)),
                PhotoSource::Bytes { bytes } => core::PhotoSource::Bytes(bytes),
            },
            taken_at_ms: p.taken_at_ms,
            location: p.location,
        }
    }
}

pub(crate) fn photos(list: Vec<NewPhoto>) -> Vec<core::NewPhoto> {
    list.into_iter().map(Into::into).collect()
}

/// An incident (网格事件). `description` and `address` may hold personal data.
#[derive(uniffi::Record, Clone, Debug)]
pub struct Incident {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// Category code from the catalogue.
    pub category: String,
    /// Short title.
    pub title: String,
    /// What was seen.
    pub description: String,
    /// Where (GPS).
    pub location: Option<Location>,
    /// Address text.
    pub address: String,
    /// When it was observed (device clock).
    pub occurred_at_ms: i64,
    /// Account id of the reporting worker.
    pub reporter: Option<String>,
    /// Residents concerned.
    pub involved_residents: Vec<String>,
    /// Current status (from the timeline).
    pub status: IncidentStatus,
    /// Department handling it, once dispatched.
    pub department: Option<String>,
    /// Deadline by server time, once dispatched.
    pub deadline_at_ms: Option<i64>,
    /// Photos attached when reporting.
    pub photos: Vec<Photo>,
    /// The district's own fields, one answer per field given.
    pub extra: Extra,
    /// Bookkeeping and sync status.
    pub meta: RecordMeta,
}

impl From<core::Incident> for Incident {
    fn from(i: core::Incident) -> Self {
        Incident {
            id: i.id,
            grid_id: i.grid_id,
            category: i.category,
            title: i.title,
            description: i.description.as_str().to_owned(),
            location: i.location,
            address: i.address.as_str().to_owned(),
            occurred_at_ms: i.occurred_at_ms,
            reporter: i.reporter,
            involved_residents: i.involved_residents,
            status: i.status,
            department: i.department,
            deadline_at_ms: i.deadline_at_ms,
            photos: i.photos,
            extra: i.extra,
            meta: i.meta,
        }
    }
}

/// One entry of an incident's timeline.
#[derive(uniffi::Record, Clone, Debug)]
pub struct IncidentEvent {
    /// UUIDv7.
    pub id: String,
    /// The incident.
    pub incident_id: String,
    /// What happened.
    pub kind: EventKind,
    /// Who did it (account or department id).
    pub actor: Option<String>,
    /// Note.
    pub note: String,
    /// Department (dispatch events).
    pub department: Option<String>,
    /// Deadline by server time (dispatch events).
    pub deadline_at_ms: Option<i64>,
    /// When it was recorded.
    pub at_ms: i64,
    /// Server time, once the server has it.
    pub server_at_ms: Option<i64>,
    /// Photos of the event.
    pub photos: Vec<Photo>,
    /// Sync status of this event.
    pub sync: SyncStatus,
}

impl From<core::IncidentEvent> for IncidentEvent {
    fn from(e: core::IncidentEvent) -> Self {
        IncidentEvent {
            id: e.id,
            incident_id: e.incident_id,
            kind: e.kind,
            actor: e.actor,
            note: e.note.as_str().to_owned(),
            department: e.department,
            deadline_at_ms: e.deadline_at_ms,
            at_ms: e.at_ms,
            server_at_ms: e.server_at_ms,
            photos: e.photos,
            sync: e.sync,
        }
    }
}

/// A timeline event added by the worker ("resolved on the spot", a note).
#[derive(uniffi::Record, Clone)]
pub struct NewIncidentEvent {
    /// `ResolvedOnSite` or `Note`.
    pub kind: EventKind,
    /// What was done (required for resolved on site).
    #[uniffi(default)]
    pub note: String,
    /// Photos of the result.
    #[uniffi(default)]
    pub photos: Vec<NewPhoto>,
}

/// A livelihood service log (民生服务日志).
#[derive(uniffi::Record, Clone, Debug)]
pub struct ServiceLog {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// Kind of help.
    pub kind: ServiceKind,
    /// Residents served.
    pub resident_ids: Vec<String>,
    /// What was done.
    pub notes: String,
    /// When (device clock).
    pub occurred_at_ms: i64,
    /// Photos.
    pub photos: Vec<Photo>,
    /// Bookkeeping and sync status.
    pub meta: RecordMeta,
}

impl From<core::ServiceLog> for ServiceLog {
    fn from(s: core::ServiceLog) -> Self {
        ServiceLog {
            id: s.id,
            grid_id: s.grid_id,
            kind: s.kind,
            resident_ids: s.resident_ids,
            notes: s.notes.as_str().to_owned(),
            occurred_at_ms: s.occurred_at_ms,
            photos: s.photos,
            meta: s.meta,
        }
    }
}

/// A new service log.
#[derive(uniffi::Record, Clone)]
pub struct NewServiceLog {
    /// Owning grid.
    pub grid_id: String,
    /// Kind of help.
    pub kind: ServiceKind,
    /// Residents served.
    #[uniffi(default)]
    pub resident_ids: Vec<String>,
    /// What was done.
    #[uniffi(default)]
    pub notes: String,
    /// When; none means now.
    #[uniffi(default)]
    pub occurred_at_ms: Option<i64>,
    /// Photos.
    #[uniffi(default)]
    pub photos: Vec<NewPhoto>,
}

impl From<NewServiceLog> for core::NewServiceLog {
    fn from(s: NewServiceLog) -> Self {
        core::NewServiceLog {
            grid_id: s.grid_id,
            kind: s.kind,
            resident_ids: s.resident_ids,
            notes: s.notes,
            occurred_at_ms: s.occurred_at_ms,
            photos: photos(s.photos),
        }
    }
}

// ----- Inspections -----

/// One question of a checklist, as a form shows it.
#[derive(uniffi::Record, Clone, Debug)]
pub struct ChecklistItem {
    /// Stable code, unique in its checklist.
    pub code: String,
    /// The question.
    pub label_zh: String,
    /// What answers it.
    pub answer: AnswerType,
    /// An inspection must answer it (a photo item: with a photo).
    pub required: bool,
    /// The choices of a choice item.
    pub options: Vec<String>,
    /// Smallest number a number item accepts.
    pub min: Option<f64>,
    /// Largest number a number item accepts.
    pub max: Option<f64>,
    /// Longest text a text item accepts.
    pub max_len: Option<u32>,
    /// The answers that fail the item.
    pub fails_on: Vec<Answer>,
    /// The incident category a failed item raises, if any.
    pub raises: Option<String>,
}

/// An inspection checklist of the catalogue.
#[derive(uniffi::Record, Clone, Debug)]
pub struct Checklist {
    /// Stable code.
    pub code: String,
    /// Name shown to workers.
    pub name_zh: String,
    /// The questions, in order.
    pub items: Vec<ChecklistItem>,
}

impl From<&core::Checklist> for Checklist {
    fn from(c: &core::Checklist) -> Self {
        Checklist {
            code: c.code.clone(),
            name_zh: c.name_zh.clone(),
            items: c.items.iter().map(ChecklistItem::from).collect(),
        }
    }
}

impl From<&core::ChecklistItem> for ChecklistItem {
    fn from(i: &core::ChecklistItem) -> Self {
        ChecklistItem {
            code: i.code.clone(),
            label_zh: i.label_zh.clone(),
            answer: i.answer,
            required: i.required,
            options: i.options.clone(),
            min: i.min,
            max: i.max,
            max_len: i.max_len,
            fails_on: i
                .fails_on
                .iter()
                .filter_map(|v| {
                    v.as_bool()
                        .map(Answer::YesNo)
                        .or_else(|| v.as_f64().map(Answer::Number))
                        .or_else(|| v.as_str().map(|t| Answer::Text(t.to_owned())))
                })
                .collect(),
            raises: i.raises.clone(),
        }
    }
}

#[uniffi::remote(Record)]
pub struct ItemAnswer {
    pub item: String,
    pub answer: Answer,
}

/// A photo of one item.
#[derive(uniffi::Record, Clone)]
pub struct ItemPhoto {
    /// The item's code.
    pub item: String,
    /// The photo.
    pub photo: NewPhoto,
}

/// The photos of one item (photo record ids).
#[derive(uniffi::Record, Clone, Debug)]
pub struct ItemPhotos {
    /// The item's code.
    pub item: String,
    /// Ids of the inspection's photos of this item.
    pub photo_ids: Vec<String>,
}

/// An inspection as the worker fills it in.
#[derive(uniffi::Record, Clone)]
pub struct NewInspection {
    /// Owning grid.
    pub grid_id: String,
    /// The place inspected (compound, building or unit).
    #[uniffi(default)]
    pub place_id: Option<String>,
    /// The checklist's code.
    pub checklist: String,
    /// One answer per item answered.
    pub answers: Vec<ItemAnswer>,
    /// Photos, each of one item.
    #[uniffi(default)]
    pub photos: Vec<ItemPhoto>,
    /// Where (GPS): required.
    pub location: Option<Location>,
    /// What else the worker noted.
    #[uniffi(default)]
    pub notes: String,
    /// When; none means now.
    #[uniffi(default)]
    pub occurred_at_ms: Option<i64>,
}

impl From<NewInspection> for core::NewInspection {
    fn from(i: NewInspection) -> Self {
        core::NewInspection {
            grid_id: i.grid_id,
            place_id: i.place_id,
            checklist: i.checklist,
            answers: i.answers,
            photos: i
                .photos
                .into_iter()
                .map(|p| core::ItemPhoto {
                    item: p.item,
                    photo: p.photo.into(),
                })
                .collect(),
            location: i.location,
            notes: i.notes,
            occurred_at_ms: i.occurred_at_ms,
        }
    }
}

/// An inspection of a place (安全隐患排查). `notes` may hold personal data.
#[derive(uniffi::Record, Clone, Debug)]
pub struct Inspection {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// The place inspected.
    pub place_id: Option<String>,
    /// The checklist's code.
    pub checklist: String,
    /// The answers, in item-code order.
    pub answers: Vec<ItemAnswer>,
    /// The photos of each item.
    pub item_photos: Vec<ItemPhotos>,
    /// The incidents its failed items raised.
    pub raised_incidents: Vec<String>,
    /// Where.
    pub location: Option<Location>,
    /// Notes.
    pub notes: String,
    /// When (device clock).
    pub occurred_at_ms: i64,
    /// Photos.
    pub photos: Vec<Photo>,
    /// Bookkeeping and sync status.
    pub meta: RecordMeta,
}

impl From<core::Inspection> for Inspection {
    fn from(i: core::Inspection) -> Self {
        Inspection {
            id: i.id,
            grid_id: i.grid_id,
            place_id: i.place_id,
            checklist: i.checklist,
            answers: i
                .answers
                .into_iter()
                .map(|(item, answer)| ItemAnswer { item, answer })
                .collect(),
            item_photos: i
                .item_photos
                .into_iter()
                .map(|(item, photo_ids)| ItemPhotos { item, photo_ids })
                .collect(),
            raised_incidents: i.raised_incidents,
            location: i.location,
            notes: i.notes.as_str().to_owned(),
            occurred_at_ms: i.occurred_at_ms,
            photos: i.photos,
            meta: i.meta,
        }
    }
}

/// What recording an inspection wrote.
#[derive(uniffi::Record, Clone, Debug)]
pub struct InspectionReport {
    /// The inspection.
    pub inspection: Inspection,
    /// The incidents its failed items raised.
    pub raised: Vec<Incident>,
}

impl From<core::InspectionReport> for InspectionReport {
    fn from(r: core::InspectionReport) -> Self {
        InspectionReport {
            inspection: r.inspection.into(),
            raised: r.raised.into_iter().map(Into::into).collect(),
        }
    }
}

// ----- Queries -----

/// Filters for resident search; all given filters must match.
#[derive(uniffi::Record, Clone, Debug, Default)]
pub struct ResidentQuery {
    /// Only this grid.
    #[uniffi(default)]
    pub grid_id: Option<String>,
    /// Only this household.
    #[uniffi(default)]
    pub household_id: Option<String>,
    /// Only this building.
    #[uniffi(default)]
    pub building_id: Option<String>,
    /// Name contains this (two-character names work).
    #[uniffi(default)]
    pub name: Option<String>,
    /// The full ID number, or its last 4 or more characters.
    #[uniffi(default)]
    pub id_number: Option<String>,
    /// The full phone number, or its last 4 or more digits.
    #[uniffi(default)]
    pub phone: Option<String>,
    /// Household address contains this.
    #[uniffi(default)]
    pub address: Option<String>,
    /// Has this care tag.
    #[uniffi(default)]
    pub care_tag: Option<CareTag>,
}

impl From<ResidentQuery> for core::ResidentQuery {
    fn from(q: ResidentQuery) -> Self {
        core::ResidentQuery {
            grid_id: q.grid_id,
            household_id: q.household_id,
            building_id: q.building_id,
            name: q.name,
            id_number: q.id_number,
            phone: q.phone,
            address: q.address,
            care_tag: q.care_tag,
        }
    }
}

/// Filters for incident lists; newest first.
#[derive(uniffi::Record, Clone, Debug, Default)]
pub struct IncidentQuery {
    /// Only this grid.
    #[uniffi(default)]
    pub grid_id: Option<String>,
    /// Only these statuses (all when empty).
    #[uniffi(default)]
    pub statuses: Vec<IncidentStatus>,
    /// Only this category.
    #[uniffi(default)]
    pub category: Option<String>,
    /// Observed at or after (ms).
    #[uniffi(default)]
    pub from_ms: Option<i64>,
    /// Observed before (ms).
    #[uniffi(default)]
    pub to_ms: Option<i64>,
}

impl From<IncidentQuery> for core::IncidentQuery {
    fn from(q: IncidentQuery) -> Self {
        core::IncidentQuery {
            grid_id: q.grid_id,
            statuses: q.statuses,
            category: q.category,
            from_ms: q.from_ms,
            to_ms: q.to_ms,
        }
    }
}

/// Which page to read.
#[derive(uniffi::Record, Clone, Debug)]
pub struct PageRequest {
    /// Items per page, 1..=500.
    #[uniffi(default = 50)]
    pub limit: u32,
    /// The `next` cursor of the previous page; none for the first.
    #[uniffi(default)]
    pub after: Option<String>,
}

impl From<PageRequest> for core::PageRequest {
    fn from(p: PageRequest) -> Self {
        core::PageRequest {
            limit: p.limit,
            after: p.after,
        }
    }
}

/// One page of residents.
#[derive(uniffi::Record, Clone, Debug)]
pub struct ResidentPage {
    /// The residents.
    pub items: Vec<Resident>,
    /// Cursor of the next page; none on the last.
    pub next: Option<String>,
}

/// One page of incidents.
#[derive(uniffi::Record, Clone, Debug)]
pub struct IncidentPage {
    /// The incidents.
    pub items: Vec<Incident>,
    /// Cursor of the next page; none on the last.
    pub next: Option<String>,
}

/// What a bulk import did: the ids created, and each refused row with why.
#[derive(uniffi::Record, Clone, Debug)]
pub struct ImportReport {
    /// Ids of the residents created, in input order.
    pub created: Vec<String>,
    /// Rows refused; nothing of them was written.
    pub rejected: Vec<RejectedRow>,
}

/// A refused import row.
#[derive(uniffi::Record, Clone, Debug)]
pub struct RejectedRow {
    /// Index in the input list.
    pub index: u64,
    /// The field refused.
    pub field: String,
    /// Stable code of the rule broken.
    pub code: String,
    /// Explanation, without the value.
    pub message: String,
}

impl From<core::ImportReport> for ImportReport {
    fn from(r: core::ImportReport) -> Self {
        ImportReport {
            created: r.created,
            rejected: r
                .rejected
                .into_iter()
                .map(|(index, e)| RejectedRow {
                    index: index as u64,
                    field: e.field.clone(),
                    code: e.code.as_str().to_owned(),
                    message: e.to_string(),
                })
                .collect(),
        }
    }
}

/// Residents with one care tag.
#[derive(uniffi::Record, Clone, Debug)]
pub struct CareTagCount {
    /// The tag.
    pub tag: CareTag,
    /// Live residents with it.
    pub residents: u64,
}

/// The counts on a grid's home screen.
#[derive(uniffi::Record, Clone, Debug)]
pub struct Dashboard {
    /// Live residents.
    pub residents: u64,
    /// Live households.
    pub households: u64,
    /// Residents per care tag (every tag, zero included).
    pub care_tags: Vec<CareTagCount>,
    /// Submitted incidents still needing action.
    pub open_incidents: u64,
    /// Open incidents past their deadline, by server time.
    pub overdue_incidents: u64,
    /// Incident drafts on this phone.
    pub drafts: u64,
    /// Visits and check-ins under the district's visit rules, by server time.
    pub visits: VisitCounts,
}

/// One resident's visit or phone check-in under one visit rule, not yet
/// made in its period.
#[derive(uniffi::Record, Clone, Debug)]
pub struct DueVisit {
    /// The rule's code.
    pub rule: String,
    /// The rule's name, for the worker.
    pub rule_name: String,
    /// Overdue, due soon or due.
    pub state: VisitState,
    /// When it is (or was) due: the end of its period, server time.
    pub due_by_ms: i64,
    /// The latest visit the rule counts, if within the last two periods.
    pub last_visit_ms: Option<i64>,
    /// Who to visit or call.
    pub resident: Resident,
}

impl From<core::DueVisit> for DueVisit {
    fn from(d: core::DueVisit) -> Self {
        DueVisit {
            rule: d.rule,
            rule_name: d.rule_name,
            state: d.state,
            due_by_ms: d.due_by_ms,
            last_visit_ms: d.last_visit_ms,
            resident: d.resident.into(),
        }
    }
}

impl From<core::Dashboard> for Dashboard {
    fn from(d: core::Dashboard) -> Self {
        Dashboard {
            residents: d.residents,
            households: d.households,
            care_tags: d
                .care_tags
                .into_iter()
                .map(|(tag, residents)| CareTagCount { tag, residents })
                .collect(),
            open_incidents: d.open_incidents,
            overdue_incidents: d.overdue_incidents,
            drafts: d.drafts,
            visits: d.visits,
        }
    }
}
