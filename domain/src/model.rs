//! The domain records (DOMAIN.md) and the inputs that create and change them.
//!
//! Records derive `Debug`, which is safe: personal fields are wrapped in types
//! that print masked ([`PersonName`], [`IdNumber`], [`Phone`], [`PrivateText`]).
//! Every record carries its [`RecordMeta`], including the honest sync status.
//! Times are milliseconds since the Unix epoch, UTC.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

use crate::privacy::{PersonName, PrivateText};
use crate::validate::{IdNumber, Location, Phone};

macro_rules! string_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum $name { $($(#[$vm])* #[serde(rename = $s)] $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The stable code used in storage and on the wire.
            pub fn as_str(&self) -> &'static str {
                match self { $($name::$variant => $s),+ }
            }

            /// The value for a stable code.
            pub fn parse(s: &str) -> Option<$name> {
                match s { $($s => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

/// A code type: built-in values as constants, named like enum variants, and
/// any other code a district's catalogue adds. Serialised as the bare code.
macro_rules! code_type {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident = $s:literal / $zh:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(std::borrow::Cow<'static, str>);

        #[allow(non_upper_case_globals)]
        impl $name {
            $($(#[$vm])* pub const $variant: $name = $name(std::borrow::Cow::Borrowed($s));)+

            /// The built-in values, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The code used in storage and on the wire.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The built-in value with this code, if there is one.
            pub fn builtin(code: &str) -> Option<$name> {
                Self::ALL.iter().find(|v| v.as_str() == code).cloned()
            }

            /// The value with this code, built in or a district's (whether
            /// the catalogue has it is checked where it is captured).
            pub fn new(code: impl Into<String>) -> $name {
                let code = code.into();
                Self::builtin(&code).unwrap_or($name(std::borrow::Cow::Owned(code)))
            }

            /// The Chinese name of a built-in value (a district's are in its catalogue).
            pub fn builtin_name(&self) -> Option<&'static str> {
                match self.as_str() {
                    $($s => Some($zh),)+
                    _ => None,
                }
            }
        }
    };
}

string_enum! {
    /// Sex as recorded on the identity card.
    Sex { /** Male. */ Male = "male", /** Female. */ Female = "female" }
}

string_enum! {
    /// How a resident relates to the place they are recorded at.
    ResidenceStatus {
        /// Household registration (户籍) here, and living here.
        Registered = "registered",
        /// Living here (实际居住) with the registration elsewhere in the district.
        Actual = "actual",
        /// Floating population (流动人口): registered outside the district.
        Floating = "floating",
    }
}

code_type! {
    /// A care tag: residents the grid worker looks after with particular
    /// care. A code: the built-in ones are constants here
    /// (`CareTag::ElderlyLivingAlone`); a district adds its own in the
    /// catalogue (`care_tags`), so a code is checked against the catalogue
    /// where it is captured.
    CareTag {
        /// 独居老人
        ElderlyLivingAlone = "elderly_living_alone" / "独居老人",
        /// 空巢老人
        EmptyNestElderly = "empty_nest_elderly" / "空巢老人",
        /// 残疾人
        Disabled = "disabled" / "残疾人",
        /// 低保 (subsistence allowance)
        SubsistenceAllowance = "subsistence_allowance" / "低保",
        /// 特困供养
        SpecialHardship = "special_hardship" / "特困供养",
        /// 留守儿童
        LeftBehindChild = "left_behind_child" / "留守儿童",
        /// 重病患者
        SeriousIllness = "serious_illness" / "重病患者",
        /// 退役军人
        Veteran = "veteran" / "退役军人",
    }
}

string_enum! {
    /// Kinds of place above a household.
    PlaceKind {
        /// 小区, a residential compound.
        Compound = "compound",
        /// 楼栋, a building in a compound.
        Building = "building",
        /// 单元, a unit (stairwell) of a building.
        Unit = "unit",
    }
}

string_enum! {
    /// Where an incident is in its life cycle. Derived from its timeline.
    IncidentStatus {
        /// Being written on this phone; not queued for the server.
        Draft = "draft",
        /// Submitted by the worker.
        Reported = "reported",
        /// The centre has sent it to a department with a deadline.
        Dispatched = "dispatched",
        /// The department has accepted it.
        Accepted = "accepted",
        /// The worker solved it on the spot.
        ResolvedOnSite = "resolved_on_site",
        /// The department reports it solved.
        Resolved = "resolved",
        /// The centre has closed it.
        Closed = "closed",
        /// The centre returned it to the worker for more information.
        Returned = "returned",
    }
}

impl IncidentStatus {
    /// Still needs someone's action (counted as open on the dashboard).
    pub fn is_open(&self) -> bool {
        matches!(
            self,
            IncidentStatus::Reported | IncidentStatus::Dispatched | IncidentStatus::Accepted | IncidentStatus::Returned
        )
    }
}

string_enum! {
    /// What happened, in an incident's timeline.
    EventKind {
        /// Submitted by the worker.
        Reported = "reported",
        /// Sent to a department, with a deadline (centre).
        Dispatched = "dispatched",
        /// Accepted by the department.
        Accepted = "accepted",
        /// Progress reported by the department (no status change).
        Progress = "progress",
        /// Solved on the spot by the worker.
        ResolvedOnSite = "resolved_on_site",
        /// Solved by the department.
        Resolved = "resolved",
        /// Closed by the centre.
        Closed = "closed",
        /// Returned to the worker by the centre.
        Returned = "returned",
        /// A note or extra photos from the worker (no status change).
        Note = "note",
    }
}

impl EventKind {
    /// Kinds a grid worker may add on the phone; the others come from the centre.
    pub fn is_worker_event(&self) -> bool {
        matches!(self, EventKind::ResolvedOnSite | EventKind::Note)
    }

    /// The status after this event is applied to an incident in `from`, or
    /// `None` if the transition is not allowed. Used on both sides.
    pub fn next_status(&self, from: IncidentStatus) -> Option<IncidentStatus> {
        use IncidentStatus as S;
        let open = from.is_open();
        match self {
            EventKind::Reported => (from == S::Draft).then_some(S::Reported),
            EventKind::Dispatched => matches!(from, S::Reported | S::Returned | S::Dispatched).then_some(S::Dispatched),
            EventKind::Accepted => (from == S::Dispatched).then_some(S::Accepted),
            EventKind::Progress => matches!(from, S::Dispatched | S::Accepted).then_some(from),
            EventKind::ResolvedOnSite => matches!(from, S::Reported | S::Returned).then_some(S::ResolvedOnSite),
            EventKind::Resolved => open.then_some(S::Resolved),
            EventKind::Closed => (open || matches!(from, S::Resolved | S::ResolvedOnSite)).then_some(S::Closed),
            EventKind::Returned => matches!(from, S::Reported | S::Dispatched | S::Accepted).then_some(S::Returned),
            EventKind::Note => (from != S::Draft).then_some(from),
        }
    }
}

code_type! {
    /// A kind of livelihood service log (民生服务类日志). A code, as care tags
    /// are: the built-in kinds are constants here; a district adds its own
    /// in the catalogue (`service_kinds`).
    ServiceKind {
        /// A home visit.
        Visit = "visit" / "入户走访",
        /// Groceries or meals delivered.
        FoodDelivery = "food_delivery" / "送餐送物",
        /// Medicine delivered.
        MedicineDelivery = "medicine_delivery" / "送药",
        /// A phone call to check on a resident.
        PhoneCheckIn = "phone_check_in" / "电话问候",
        /// Any other help given.
        OtherAssistance = "other_assistance" / "其他帮扶",
    }
}

#[allow(clippy::derivable_impls)] // the enum comes from a macro shared with others
impl Default for IncidentStatus {
    fn default() -> Self {
        IncidentStatus::Draft
    }
}

/// Where a record stands between this phone and the server (SYNC.md invariant 8).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum SyncStatus {
    /// An incident draft: kept on this phone, not queued.
    Draft,
    /// Changes are saved on this phone and queued; the server does not have them yet.
    #[default]
    OnlyOnDevice,
    /// Changes are being sent; no receipt yet.
    Sending,
    /// The server has confirmed every change.
    OnServer,
    /// Another device changed the same field at the same time; the server kept
    /// one value and recorded the other (see `Store::conflicts_of`).
    Conflict {
        /// The fields concerned.
        fields: Vec<String>,
    },
    /// The server refused a change; it will not be resent as it is.
    Rejected {
        /// Machine code from the server.
        code: String,
        /// Field the server named, if any.
        field: Option<String>,
        /// The server's explanation (free of personal data).
        message: String,
    },
}

/// Bookkeeping common to every captured record.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct RecordMeta {
    /// When this device created the record (device clock).
    pub created_at_ms: i64,
    /// When it was last changed here.
    pub updated_at_ms: i64,
    /// The server's version of the record, if the server has ever confirmed it.
    pub server_version: Option<i64>,
    /// Deleted (kept as a tombstone until the server confirms).
    pub deleted: bool,
    /// Honest sync status.
    pub sync: SyncStatus,
}

/// A grid (网格): reference data assigned by the district.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Grid {
    /// Server id.
    pub id: String,
    /// District grid code.
    pub code: String,
    /// Grid name.
    pub name: String,
    /// Community (社区).
    pub community: String,
    /// Sub-district (街道).
    pub sub_district: String,
}

impl From<&fieldgrid_protocol::GridInfo> for Grid {
    fn from(g: &fieldgrid_protocol::GridInfo) -> Self {
        Grid {
            id: g.id.clone(),
            code: g.code.clone(),
            name: g.name.clone(),
            community: g.community.clone(),
            sub_district: g.sub_district.clone(),
        }
    }
}

/// A compound, building or unit.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Place {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// Compound, building or unit.
    pub kind: PlaceKind,
    /// The compound of a building, the building of a unit.
    pub parent_id: Option<String>,
    /// Name (`格林盛景小区`, `3号楼`, `2单元`).
    pub name: String,
    /// The district's own fields (catalogue `field_defs`), by code.
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
    /// Bookkeeping.
    #[serde(skip)]
    pub meta: RecordMeta,
}

/// A room / household (户).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Household {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// The unit (or building, for buildings without units) it is in.
    pub unit_id: Option<String>,
    /// The building, derived from `unit_id`.
    #[serde(skip)]
    pub building_id: Option<String>,
    /// Room number (`301`).
    pub room: String,
    /// Full address line.
    #[serde(default)]
    pub address: PrivateText,
    /// Notes.
    #[serde(default)]
    pub notes: PrivateText,
    /// The district's own fields (catalogue `field_defs`), by code.
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
    /// Bookkeeping.
    #[serde(skip)]
    pub meta: RecordMeta,
}

/// A resident (居民).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Resident {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// Household, if known.
    pub household_id: Option<String>,
    /// Full name.
    pub name: PersonName,
    /// Sex.
    pub sex: Sex,
    /// Resident ID number, if known.
    pub id_number: Option<IdNumber>,
    /// Birth date (from the ID number when there is one).
    pub birth_date: Option<NaiveDate>,
    /// Phone number.
    pub phone: Option<Phone>,
    /// Registration status.
    pub residence: ResidenceStatus,
    /// Care tags, sorted, without repeats.
    #[serde(default)]
    pub care_tags: Vec<CareTag>,
    /// Notes.
    #[serde(default)]
    pub notes: PrivateText,
    /// The district's own fields (catalogue `field_defs`), by code.
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
    /// Bookkeeping.
    #[serde(skip)]
    pub meta: RecordMeta,
}

/// A photo's metadata; its bytes are in the store's photo folder.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Photo {
    /// UUIDv7.
    pub id: String,
    /// What the photo belongs to.
    pub owner: PhotoOwner,
    /// SHA-256 of the bytes, lower-case hex: the photo's address.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// `image/jpeg`, `image/png`, `image/webp` or `image/heic`.
    pub mime: String,
    /// When it was taken (device clock), if known.
    pub taken_at_ms: Option<i64>,
    /// Where it was taken, if known.
    pub location: Option<Location>,
    /// The server has confirmed the hash of the uploaded bytes.
    #[serde(skip)]
    pub uploaded: bool,
}

/// The record a photo is attached to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum PhotoOwner {
    /// An incident (while it is a draft).
    Incident(String),
    /// A timeline event ("resolved on the spot" with photos).
    IncidentEvent(String),
    /// A service log.
    ServiceLog(String),
    /// An inspection (photos of its items).
    Inspection(String),
}

impl PhotoOwner {
    /// Stable name of the owner's kind.
    pub fn kind(&self) -> &'static str {
        match self {
            PhotoOwner::Incident(_) => "incident",
            PhotoOwner::IncidentEvent(_) => "incident_event",
            PhotoOwner::ServiceLog(_) => "service_log",
            PhotoOwner::Inspection(_) => "inspection",
        }
    }

    /// The owner's id.
    pub fn id(&self) -> &str {
        match self {
            PhotoOwner::Incident(id)
            | PhotoOwner::IncidentEvent(id)
            | PhotoOwner::ServiceLog(id)
            | PhotoOwner::Inspection(id) => id,
        }
    }
}

/// An incident (网格事件).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// Category code from the catalogue.
    pub category: String,
    /// Short title.
    #[serde(default)]
    pub title: String,
    /// What was seen.
    #[serde(default)]
    pub description: PrivateText,
    /// Where (GPS).
    pub location: Option<Location>,
    /// Address text.
    #[serde(default)]
    pub address: PrivateText,
    /// When it was observed (device clock).
    pub occurred_at_ms: i64,
    /// Account id of the reporting worker, when signed in.
    pub reporter: Option<String>,
    /// Residents concerned.
    #[serde(default)]
    pub involved_residents: Vec<String>,
    /// Current status (derived from the timeline).
    #[serde(skip)]
    pub status: IncidentStatus,
    /// Department handling it, once dispatched.
    #[serde(skip)]
    pub department: Option<String>,
    /// Deadline by server time, once dispatched.
    #[serde(skip)]
    pub deadline_at_ms: Option<i64>,
    /// Photos attached when reporting.
    #[serde(skip)]
    pub photos: Vec<Photo>,
    /// The district's own fields (catalogue `field_defs`), by code.
    #[serde(default, skip_serializing_if = "Extra::is_empty")]
    pub extra: Extra,
    /// Bookkeeping.
    #[serde(skip)]
    pub meta: RecordMeta,
}

/// One entry of an incident's timeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    pub note: PrivateText,
    /// Department (dispatch events).
    pub department: Option<String>,
    /// Deadline by server time (dispatch events).
    pub deadline_at_ms: Option<i64>,
    /// When it was recorded (device clock, or server clock for centre events).
    pub at_ms: i64,
    /// Server time, once the server has it.
    #[serde(skip)]
    pub server_at_ms: Option<i64>,
    /// Photos of the event.
    #[serde(skip)]
    pub photos: Vec<Photo>,
    /// Sync status of this event.
    #[serde(skip)]
    pub sync: SyncStatus,
}

/// A livelihood service log (民生服务日志).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ServiceLog {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// Kind of help.
    pub kind: ServiceKind,
    /// Residents served.
    #[serde(default)]
    pub resident_ids: Vec<String>,
    /// What was done.
    #[serde(default)]
    pub notes: PrivateText,
    /// When (device clock).
    pub occurred_at_ms: i64,
    /// Photos.
    #[serde(skip)]
    pub photos: Vec<Photo>,
    /// Bookkeeping.
    #[serde(skip)]
    pub meta: RecordMeta,
}

/// The values of the district's own fields of a record (catalogue
/// `field_defs`), by field code: JSON values as the rules checked them.
/// Kept whole on the phone, codes it does not know included, so a phone on
/// an older catalogue never drops what a newer one captured. Values may
/// name people: `Debug` shows the codes only.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Extra(pub std::collections::BTreeMap<String, serde_json::Value>);

impl Extra {
    /// Whether no field has a value.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The value of field `code`, as an answer (`None` when there is none,
    /// or it is of a kind this build does not know).
    pub fn get(&self, code: &str) -> Option<Answer> {
        self.0.get(code).and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// Every value that is an answer, by code (a value of a kind this build
    /// does not know is left out).
    pub fn answers(&self) -> Vec<(String, Answer)> {
        self.0.keys().filter_map(|k| Some((k.clone(), self.get(k)?))).collect()
    }

    /// Values from answers, by code (a later answer for a code wins).
    pub fn from_answers(answers: impl IntoIterator<Item = (String, Answer)>) -> Extra {
        Extra(
            answers
                .into_iter()
                .map(|(code, answer)| (code, serde_json::to_value(answer).unwrap_or_default()))
                .collect(),
        )
    }
}

impl std::fmt::Debug for Extra {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.0.keys()).finish()
    }
}

/// The answer to one item of a checklist: `true`/`false`, a number, or text
/// (a choice is its option's text). Photo items have photos, not answers.
/// Text may name people: `Debug` shows its length only.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Answer {
    /// A yes/no item.
    YesNo(bool),
    /// A number item.
    Number(f64),
    /// A text or choice item.
    Text(String),
}

impl std::fmt::Debug for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::YesNo(b) => write!(f, "YesNo({b})"),
            // A district's number field may be an ID-like number: not shown.
            Answer::Number(_) => f.write_str("Number(..)"),
            Answer::Text(t) => write!(f, "Text({} chars)", t.chars().count()),
        }
    }
}

/// An inspection of a place against a checklist of the catalogue (安全隐患排查).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Inspection {
    /// UUIDv7.
    pub id: String,
    /// Owning grid.
    pub grid_id: String,
    /// The place inspected (compound, building or unit), if recorded.
    pub place_id: Option<String>,
    /// The checklist's code.
    pub checklist: String,
    /// Each answered item's answer, by item code.
    #[serde(default)]
    pub answers: std::collections::BTreeMap<String, Answer>,
    /// The photos of each item, by item code (photo record ids).
    #[serde(default)]
    pub item_photos: std::collections::BTreeMap<String, Vec<String>>,
    /// The incidents its failed items raised.
    #[serde(default)]
    pub raised_incidents: Vec<String>,
    /// Where (GPS).
    pub location: Option<Location>,
    /// What else the worker noted.
    #[serde(default)]
    pub notes: PrivateText,
    /// When (device clock).
    pub occurred_at_ms: i64,
    /// Photos.
    #[serde(skip)]
    pub photos: Vec<Photo>,
    /// Bookkeeping.
    #[serde(skip)]
    pub meta: RecordMeta,
}
