//! What the server keeps of a record: its fields as JSON, a version, whether
//! it is deleted, and per-field versions for conflicts. Storage lives in
//! `store/`; this is the shape both engines read and write.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Who last changed a field, at which version.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FieldVersion {
    /// Record version of the change.
    pub v: i64,
    /// Device that made it (empty for the centre).
    pub device: String,
    /// Operation that made it.
    pub op: String,
}

/// A stored record.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    /// Id.
    pub id: String,
    /// Entity.
    pub entity: String,
    /// Grid.
    pub grid_id: String,
    /// Version.
    pub version: i64,
    /// Tombstone.
    pub deleted: bool,
    /// Fields.
    pub fields: Map<String, Value>,
    /// Per-field versions.
    pub field_versions: Map<String, Value>,
}

impl Record {
    /// A string field.
    pub fn str(&self, field: &str) -> Option<&str> {
        self.fields.get(field).and_then(Value::as_str)
    }

    /// An integer field.
    pub fn i64(&self, field: &str) -> Option<i64> {
        self.fields.get(field).and_then(Value::as_i64)
    }

    /// The fields as stored (compact JSON).
    pub fn fields_json(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }

    /// The per-field versions as stored (compact JSON).
    pub fn field_versions_json(&self) -> String {
        Value::Object(self.field_versions.clone()).to_string()
    }

    /// A record from its stored columns (fields unreadable as JSON count as
    /// none: the server wrote them, so this does not happen).
    pub fn from_columns(
        id: String,
        entity: String,
        grid_id: String,
        version: i64,
        deleted: bool,
        fields: &str,
        field_versions: &str,
    ) -> Record {
        Record {
            id,
            entity,
            grid_id,
            version,
            deleted,
            fields: serde_json::from_str(fields).unwrap_or_default(),
            field_versions: serde_json::from_str(field_versions).unwrap_or_default(),
        }
    }
}

/// The columns of the `incidents` table kept beside an incident record, so
/// the centre's lists and statistics are indexed queries.
#[derive(Clone, Debug, PartialEq)]
pub struct IncidentRow {
    /// Incident id.
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
    pub deadline_at: Option<i64>,
    /// When the server received it (server ms).
    pub reported_at: i64,
    /// When it was resolved or closed (server ms).
    pub finished_at: Option<i64>,
}

impl IncidentRow {
    /// The row of an incident record.
    pub fn of(rec: &Record) -> IncidentRow {
        IncidentRow {
            id: rec.id.clone(),
            grid_id: rec.grid_id.clone(),
            category: rec.str("category").unwrap_or_default().to_owned(),
            status: rec.str("status").unwrap_or("draft").to_owned(),
            department: rec.str("department").map(str::to_owned),
            deadline_at: rec.i64("deadline_at_ms"),
            reported_at: rec.i64("reported_at_ms").unwrap_or(0),
            finished_at: rec.i64("finished_at_ms"),
        }
    }
}
