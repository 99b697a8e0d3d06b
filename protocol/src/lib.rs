//! The FieldGrid sync protocol, version 1: the JSON bodies devices and the
//! district server exchange. No I/O here. `docs/protocol.md` describes the
//! flows; `docs/openapi.yaml` every endpoint.
//!
//! Bodies are JSON, gzip-compressed in both directions when large
//! (`Content-Encoding: gzip`). Every request names its protocol version in the
//! [`PROTOCOL_HEADER`]; a server that no longer speaks it answers 426 with
//! the code [`codes::PROTOCOL_TOO_OLD`].

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Version of this protocol.
pub const PROTOCOL_VERSION: u32 = 1;
/// Request header carrying the client's protocol version.
pub const PROTOCOL_HEADER: &str = "fieldgrid-protocol";
/// Header with the byte offset of a photo upload (HEAD answer, PATCH request and answer).
pub const UPLOAD_OFFSET_HEADER: &str = "upload-offset";
/// Header with the total size of a photo (PATCH request).
pub const UPLOAD_LENGTH_HEADER: &str = "upload-length";

/// Limits both sides observe.
pub mod limits {
    /// Operations in one push.
    pub const PUSH_MAX_OPERATIONS: usize = 500;
    /// Uncompressed bytes of one push body.
    pub const PUSH_MAX_BYTES: usize = 4 * 1024 * 1024;
    /// Largest page of changes a client may ask for.
    pub const PULL_MAX_LIMIT: u32 = 2_000;
    /// Largest photo.
    pub const PHOTO_MAX_BYTES: u64 = 10 * 1024 * 1024;
    /// Largest chunk of one photo PATCH.
    pub const PHOTO_MAX_CHUNK: usize = 1024 * 1024;
    /// Largest request body the server reads (a compressed push, a chunk).
    pub const REQUEST_MAX_BYTES: usize = 5 * 1024 * 1024;
    /// Records set aside in one problem report.
    pub const PROBLEMS_PER_REPORT: usize = 100;
}

/// Error codes in [`ErrorBody::code`] and [`Outcome::Rejected`].
pub mod codes {
    /// No token, or a token the server does not know.
    pub const UNAUTHENTICATED: &str = "unauthenticated";
    /// The token has expired: sign in again.
    pub const AUTH_EXPIRED: &str = "auth_expired";
    /// Wrong user name or password.
    pub const BAD_CREDENTIALS: &str = "bad_credentials";
    /// The grid or record is outside the caller's grids, or the role may not do this.
    pub const FORBIDDEN: &str = "forbidden";
    /// The client's protocol version is no longer served: update the app.
    pub const PROTOCOL_TOO_OLD: &str = "protocol_too_old";
    /// The request body is malformed.
    pub const BAD_REQUEST: &str = "bad_request";
    /// The body, the URI or the headers are larger than allowed.
    pub const TOO_LARGE: &str = "too_large";
    /// The server is overloaded: retry after `Retry-After` seconds.
    pub const OVERLOADED: &str = "overloaded";
    /// A photo upload offset does not match the server's.
    pub const OFFSET_MISMATCH: &str = "offset_mismatch";
    /// The uploaded bytes do not hash to the photo's address.
    pub const HASH_MISMATCH: &str = "hash_mismatch";
    /// Not found.
    pub const NOT_FOUND: &str = "not_found";
    /// An operation on a record the server does not have.
    pub const UNKNOWN_RECORD: &str = "unknown_record";
    /// An entity or kind the server does not accept.
    pub const UNSUPPORTED: &str = "unsupported";
    /// A state change not allowed in the record's current state.
    pub const NOT_ALLOWED: &str = "not_allowed";
    /// Anything else that went wrong on the server.
    pub const INTERNAL: &str = "internal";
    /// Too many unfinished photo uploads for this account: finish them first.
    pub const QUOTA_EXCEEDED: &str = "quota_exceeded";
    /// The path exists but not with this method.
    pub const METHOD_NOT_ALLOWED: &str = "method_not_allowed";
    /// The body's type or encoding is not one the endpoint takes.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "unsupported_media_type";
    /// The request took longer than the server allows and was stopped.
    pub const TIMEOUT: &str = "timeout";
    /// Too many failed sign-ins for this account or from this address: wait `Retry-After`.
    pub const LOCKED: &str = "locked";
    /// The account is disabled.
    pub const ACCOUNT_DISABLED: &str = "account_disabled";
    /// This device was revoked: it may not sign in.
    pub const DEVICE_REVOKED: &str = "device_revoked";
    /// The device is to be wiped (see the `fieldgrid-wipe` header): no more data for it.
    pub const WIPE_REQUESTED: &str = "wipe_requested";
    /// A record that phones could not read in its entity's wire shape: the
    /// server refuses to store one, and a phone that meets one sets it aside
    /// and reports it (SYNC.md invariant 13).
    pub const UNREADABLE: &str = "unreadable";
    /// A pulled record that read, but that the phone's store refused: set
    /// aside and reported as [`UNREADABLE`] records are.
    pub const NOT_APPLIED: &str = "not_applied";
}

/// Body of every error answer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Machine code from [`codes`].
    pub code: String,
    /// Explanation, free of personal data.
    pub message: String,
}

/// What an account may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A grid worker: reads and writes the grids assigned.
    Worker,
    /// A centre operator: dispatches and tracks every grid's incidents,
    /// manages workers' accounts and devices.
    Operator,
    /// A department the centre dispatches to: sees the incidents dispatched
    /// to it, accepts, resolves or returns them.
    Department,
    /// District IT: accounts, devices and the audit log.
    Admin,
}

impl Role {
    /// The role's name on the wire and in the database.
    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Worker => "worker",
            Role::Operator => "operator",
            Role::Department => "department",
            Role::Admin => "admin",
        }
    }

    /// The role of a name.
    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "worker" => Role::Worker,
            "operator" => Role::Operator,
            "department" => Role::Department,
            "admin" => Role::Admin,
            _ => return None,
        })
    }
}

/// Response header carrying an instruction for the device that sent the
/// request: `wipe` (erase the store, its keys and photos now) or
/// `send-then-wipe` (push what is waiting, then erase). Present on every
/// authenticated answer until the device confirms with `POST /v1/device/wiped`.
pub const WIPE_HEADER: &str = "fieldgrid-wipe";

/// `POST /v1/session`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    /// Account name.
    pub username: String,
    /// Password.
    pub password: String,
    /// Stable id of the device (a UUID the app generates once).
    pub device_id: String,
}

/// A grid as the district defines it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridInfo {
    /// Id.
    pub id: String,
    /// District code.
    pub code: String,
    /// Name.
    pub name: String,
    /// Community (社区).
    pub community: String,
    /// Sub-district (街道).
    pub sub_district: String,
}

/// Answer to a login.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginResponse {
    /// Bearer token for the `Authorization` header.
    pub token: String,
    /// When it expires (server time, ms).
    pub expires_at_ms: i64,
    /// The account's id.
    pub account_id: String,
    /// Its role.
    pub role: Role,
    /// The grids assigned (workers); empty for operators.
    pub grids: Vec<GridInfo>,
    /// The department of a department account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub department: Option<String>,
    /// Server time when answering (ms).
    pub server_time_ms: i64,
}

/// What an operation does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    /// A new record with all its fields.
    Create,
    /// Changed fields of a record.
    Update,
    /// A deletion.
    Delete,
}

/// The kinds of record devices write and the server keeps: the wire names
/// of [`Operation::entity`] and [`Change::entity`]. What each kind is, on the
/// phone (its table, its loader) and in the rules (its fields), is decided by
/// `match`es on this enum with no catch-all, so a new kind does not compile
/// until every one of them handles it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Entity {
    /// A compound, building or unit.
    Place,
    /// A household in a unit.
    Household,
    /// A resident.
    Resident,
    /// An incident report.
    Incident,
    /// A step in an incident's life (note, dispatch, resolution...).
    IncidentEvent,
    /// A service given to residents (a visit, a delivery...).
    ServiceLog,
    /// An inspection of a place against a checklist.
    Inspection,
    /// A photo's record (its bytes travel separately).
    Photo,
}

impl Entity {
    /// Every kind, in the order parents come before children.
    pub const ALL: [Entity; 8] = [
        Entity::Place,
        Entity::Household,
        Entity::Resident,
        Entity::Incident,
        Entity::IncidentEvent,
        Entity::ServiceLog,
        Entity::Inspection,
        Entity::Photo,
    ];

    /// The wire name.
    pub const fn as_str(self) -> &'static str {
        match self {
            Entity::Place => "place",
            Entity::Household => "household",
            Entity::Resident => "resident",
            Entity::Incident => "incident",
            Entity::IncidentEvent => "incident_event",
            Entity::ServiceLog => "service_log",
            Entity::Inspection => "inspection",
            Entity::Photo => "photo",
        }
    }

    /// The kind of a wire name; `None` for a name this version does not know.
    pub fn parse(name: &str) -> Option<Entity> {
        Entity::ALL.into_iter().find(|e| e.as_str() == name)
    }
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What else a pull carries besides records ([`Change::entity`]).
pub mod pulled {
    /// A conflict the server recorded on one of the device's edits.
    pub const CONFLICT: &str = "conflict";
    /// A new version of the district's catalogue.
    pub const CATALOGUE: &str = "catalogue";
}

/// One operation of a push.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Operation {
    /// Idempotency key, generated on the device (UUIDv7).
    pub op_id: String,
    /// `place`, `household`, `resident`, `incident`, `incident_event`, `service_log`, `inspection`, `photo`.
    pub entity: String,
    /// The record's id (UUIDv7 from the device).
    pub entity_id: String,
    /// Create, update or delete.
    pub kind: OpKind,
    /// Fields written (a create: all; an update: the changed ones).
    pub patch: Map<String, Value>,
    /// The server version the edit was based on.
    pub base_version: Option<i64>,
    /// Device time of the edit (ms), for the record; never trusted for deadlines.
    pub created_at_ms: i64,
}

/// `POST /v1/sync/push`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PushRequest {
    /// The device sending.
    pub device_id: String,
    /// Operations in the order they were made.
    pub operations: Vec<Operation>,
}

/// What the server did with one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Outcome {
    /// Applied; the record is now at `version`. `conflicts` names fields whose
    /// concurrent value from another device this operation replaced (the
    /// replaced value is kept in a conflict record).
    Applied {
        /// The record's version after this operation.
        version: i64,
        /// Fields that were in conflict.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        conflicts: Vec<String>,
    },
    /// Refused; nothing was written. Resending it gives the same answer.
    Rejected {
        /// Machine code.
        code: String,
        /// Field concerned, if any.
        field: Option<String>,
        /// Explanation, free of personal data.
        message: String,
    },
}

/// The answer for one operation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The operation.
    pub op_id: String,
    /// True when the operation had been received before: this is the stored
    /// original answer, and nothing was applied again.
    #[serde(default)]
    pub duplicate: bool,
    /// What happened.
    #[serde(flatten)]
    pub outcome: Outcome,
}

/// Answer to a push: one receipt per operation, in order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PushResponse {
    /// Receipts.
    pub receipts: Vec<Receipt>,
    /// Server time when answering (ms).
    pub server_time_ms: i64,
}

/// One changed record in the caller's scope.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// Server sequence number of this change; cursors are these.
    pub seq: i64,
    /// Entity (as in [`Operation::entity`], plus `conflict`, `catalogue`).
    pub entity: String,
    /// Record id.
    pub entity_id: String,
    /// The grid it belongs to.
    pub grid_id: String,
    /// The record's version.
    pub version: i64,
    /// A tombstone.
    pub deleted: bool,
    /// All the record's fields as the server has them (empty for tombstones).
    pub fields: Map<String, Value>,
}

/// A pulled record a device could not apply and set aside (SYNC.md
/// invariant 13), as it reports it: ids and codes only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordProblem {
    /// The record's entity (as pulled).
    pub entity: String,
    /// The record's id.
    pub entity_id: String,
    /// The version that could not be applied.
    pub version: i64,
    /// `unreadable` (not in its entity's wire shape) or `not_applied` (the
    /// phone's store refused it).
    pub code: String,
    /// Where reading failed (field names only), if known.
    #[serde(default)]
    pub field: Option<String>,
}

/// `POST /v1/sync/problems`: the records a device set aside.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProblemsRequest {
    /// At most [`limits::PROBLEMS_PER_REPORT`].
    pub problems: Vec<RecordProblem>,
}

/// `GET /v1/sync/changes?after=<seq>&limit=<n>`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChangesResponse {
    /// Changes ordered by `seq`.
    pub changes: Vec<Change>,
    /// Cursor for the next page (the last `seq` here, or `after` if none).
    pub next_after: i64,
    /// More changes are waiting.
    pub more: bool,
    /// Server time when answering (ms).
    pub server_time_ms: i64,
}

/// `POST /v1/centre/incidents/{id}/events`: the centre acts on an incident.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CentreEventRequest {
    /// `dispatched`, `accepted`, `progress`, `resolved`, `closed`, `returned`.
    pub kind: String,
    /// Department (dispatch).
    pub department: Option<String>,
    /// Deadline, server time ms (dispatch).
    pub deadline_at_ms: Option<i64>,
    /// Note.
    #[serde(default)]
    pub note: String,
    /// Photos of the event (a department's proof of the work done): their
    /// bytes are then uploaded like a phone's, `PATCH /v1/photos/{sha256}`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<EventPhoto>,
}

/// A photo an event made at the centre or a department carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventPhoto {
    /// SHA-256 of the bytes, lower-case hex.
    pub sha256: String,
    /// Size in bytes.
    pub size: u64,
    /// `image/jpeg`, `image/png`, `image/webp` or `image/heic`.
    pub mime: String,
}

/// An incident as the centre lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CentreIncident {
    /// Id.
    pub id: String,
    /// Grid.
    pub grid_id: String,
    /// Category code.
    pub category: String,
    /// Status.
    pub status: String,
    /// Department, once dispatched.
    pub department: Option<String>,
    /// Deadline (server ms), once dispatched.
    pub deadline_at_ms: Option<i64>,
    /// When the server received the report (server ms).
    pub reported_at_ms: i64,
    /// When it was resolved or closed (server ms).
    pub finished_at_ms: Option<i64>,
    /// Every photo it references has arrived and matched its hash.
    pub complete: bool,
    /// Past its deadline and not finished, by server time.
    pub overdue: bool,
}

/// `GET /v1/centre/incidents`: a page of the centre's incident list.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CentreIncidentPage {
    /// The incidents, in the order asked for.
    pub incidents: Vec<CentreIncident>,
    /// Cursor of the next page (`after=`), when there may be more.
    pub next: Option<String>,
}

/// Counts for one grid, community, sub-district or category.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Stats {
    /// Grid id, community, sub-district or category name.
    pub key: String,
    /// What it lies in: a grid's community, a community's sub-district
    /// (absent for sub-districts and categories).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// Incidents reported.
    pub reported: u64,
    /// Not yet resolved or closed.
    pub open: u64,
    /// Open and past the deadline, by server time.
    pub overdue: u64,
    /// Finished with a deadline.
    pub finished_with_deadline: u64,
    /// Of those, finished by the deadline.
    pub finished_on_time: u64,
    /// `finished_on_time / finished_with_deadline`, 1.0 when none.
    pub on_time_rate: f64,
}

/// `GET /v1/centre/stats?from=YYYY-MM&to=YYYY-MM`: the incidents reported
/// in those months (China time, both included; all when absent). Open and
/// overdue are as of now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatsResponse {
    /// First month counted, when given.
    #[serde(default)]
    pub from: Option<String>,
    /// Last month counted, when given.
    #[serde(default)]
    pub to: Option<String>,
    /// Per grid.
    pub grids: Vec<Stats>,
    /// Per community.
    #[serde(default)]
    pub communities: Vec<Stats>,
    /// Per sub-district.
    pub sub_districts: Vec<Stats>,
    /// Per incident category.
    #[serde(default)]
    pub categories: Vec<Stats>,
    /// Server time of the computation.
    pub server_time_ms: i64,
}

/// How one grid, sub-district or the district stands under a visit rule in
/// one period: of the residents the rule covers now, those visited in the
/// period (on time), after it in the next period (late), not at all
/// (missed, once the period is over; pending while it runs).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Coverage {
    /// Grid id, sub-district name, or "district".
    pub key: String,
    /// The sub-district a grid lies in (absent otherwise).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub within: Option<String>,
    /// Residents the rule covers.
    pub residents: u64,
    /// Visited within the period.
    pub on_time: u64,
    /// Visited in the period after it.
    pub late: u64,
    /// Not visited by the end of the period after it (or yet), the period over.
    pub missed: u64,
    /// Not visited yet, the period still running.
    pub pending: u64,
    /// `on_time / residents`, 1.0 when the rule covers no one.
    pub on_time_rate: f64,
}

/// `GET /v1/centre/coverage?rule=CODE&at=YYYY-MM-DD`: visit coverage under
/// one of the catalogue's visit rules, in the period containing `at`
/// (China time; today when absent).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CoverageResponse {
    /// The rule's code.
    pub rule: String,
    /// Its period: `week`, `month` or `quarter`.
    pub every: String,
    /// First instant of the period (server ms).
    pub period_start_ms: i64,
    /// First instant after it.
    pub period_end_ms: i64,
    /// Per grid (grids with residents the rule covers).
    pub grids: Vec<Coverage>,
    /// Per sub-district.
    pub sub_districts: Vec<Coverage>,
    /// The whole district.
    pub district: Coverage,
    /// Server time of the computation.
    pub server_time_ms: i64,
}

/// A concurrent edit of one field, as kept by the server.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ConflictRecord {
    /// Id.
    pub id: String,
    /// Entity of the record.
    pub entity: String,
    /// Record id.
    pub entity_id: String,
    /// Grid.
    pub grid_id: String,
    /// The field.
    pub field: String,
    /// The value now in force.
    pub winning_value: Value,
    /// The value it replaced (from the other device).
    pub losing_value: Value,
    /// Operation that won.
    pub winning_op: String,
    /// Operation whose value lost.
    pub losing_op: String,
    /// Server time (ms).
    pub at_ms: i64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn receipts_are_flat_json() {
        let r = Receipt {
            op_id: "op".into(),
            duplicate: false,
            outcome: Outcome::Applied {
                version: 3,
                conflicts: vec![],
            },
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"op_id": "op", "duplicate": false, "outcome": "applied", "version": 3})
        );
        let rejected: Receipt = serde_json::from_value(serde_json::json!({
            "op_id": "x", "outcome": "rejected", "code": "bad_format", "field": "phone", "message": "phone has an invalid format"
        }))
        .unwrap();
        assert!(matches!(rejected.outcome, Outcome::Rejected { ref field, .. } if field.as_deref() == Some("phone")));
    }
}
