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

/// What one incident adds to the statistics of its grid, category and the
/// month it was reported in (a draft adds nothing).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Contribution {
    /// Reported (1 unless a draft).
    pub reported: i64,
    /// Finished, with a deadline.
    pub finished_with_deadline: i64,
    /// Of those, by the deadline.
    pub finished_on_time: i64,
}

impl Contribution {
    /// The contribution of an incident row.
    pub fn of(row: &IncidentRow) -> Contribution {
        if row.status == "draft" {
            return Contribution::default();
        }
        let finished_with_deadline = matches!((row.deadline_at, row.finished_at), (Some(_), Some(_)));
        let on_time = matches!((row.deadline_at, row.finished_at), (Some(d), Some(f)) if f <= d);
        Contribution {
            reported: 1,
            finished_with_deadline: i64::from(finished_with_deadline),
            finished_on_time: i64::from(on_time),
        }
    }

    /// `self + other`.
    pub fn plus(self, other: Contribution) -> Contribution {
        Contribution {
            reported: self.reported + other.reported,
            finished_with_deadline: self.finished_with_deadline + other.finished_with_deadline,
            finished_on_time: self.finished_on_time + other.finished_on_time,
        }
    }

    /// `self - other`.
    pub fn minus(self, other: Contribution) -> Contribution {
        Contribution {
            reported: self.reported - other.reported,
            finished_with_deadline: self.finished_with_deadline - other.finished_with_deadline,
            finished_on_time: self.finished_on_time - other.finished_on_time,
        }
    }

    /// Whether it changes nothing.
    pub fn is_zero(&self) -> bool {
        *self == Contribution::default()
    }
}

/// The month (`YYYY-MM`, China time) of a server time in ms: the period the
/// centre's statistics are kept by.
pub fn month_of(at_ms: i64) -> String {
    fieldgrid_domain::china_time::local(at_ms)
        .map(|t| t.format("%Y-%m").to_string())
        .unwrap_or_else(|| "1970-01".to_owned())
}

/// The changes an incident's write makes to the monthly statistics: its old
/// row's contribution taken away, its new row's added (per month, grid and
/// category, which do not change in practice but are handled if they do).
pub fn month_deltas(
    old: Option<&IncidentRow>,
    new: Option<&IncidentRow>,
) -> Vec<(String, String, String, Contribution)> {
    let key = |r: &IncidentRow| (month_of(r.reported_at), r.grid_id.clone(), r.category.clone());
    let mut out: Vec<(String, String, String, Contribution)> = Vec::new();
    let mut add = |k: (String, String, String), c: Contribution, sign: i64| {
        let c = Contribution {
            reported: c.reported * sign,
            finished_with_deadline: c.finished_with_deadline * sign,
            finished_on_time: c.finished_on_time * sign,
        };
        match out.iter_mut().find(|(m, g, cat, _)| (m, g, cat) == (&k.0, &k.1, &k.2)) {
            Some(entry) => entry.3 = entry.3.plus(c),
            None => out.push((k.0, k.1, k.2, c)),
        }
    };
    if let Some(o) = old {
        add(key(o), Contribution::of(o), -1);
    }
    if let Some(n) = new {
        add(key(n), Contribution::of(n), 1);
    }
    out.retain(|(_, _, _, c)| !c.is_zero());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(status: &str, deadline: Option<i64>, finished: Option<i64>) -> IncidentRow {
        IncidentRow {
            id: "i".into(),
            grid_id: "g".into(),
            category: "c".into(),
            status: status.into(),
            department: None,
            deadline_at: deadline,
            reported_at: 1_795_665_600_000,
            finished_at: finished,
        }
    }

    #[test]
    fn a_write_moves_the_monthly_statistics_by_its_change_only() {
        let draft = row("draft", None, None);
        let reported = row("reported", None, None);
        let late = row("resolved", Some(10), Some(20));
        let on_time = row("closed", Some(30), Some(20));
        assert!(month_deltas(Some(&draft), Some(&draft)).is_empty());
        let d = month_deltas(Some(&draft), Some(&reported));
        assert_eq!(d.len(), 1);
        assert_eq!((d[0].0.as_str(), d[0].3.reported), ("2026-11", 1));
        let d = month_deltas(Some(&reported), Some(&late));
        assert_eq!(
            (d[0].3.reported, d[0].3.finished_with_deadline, d[0].3.finished_on_time),
            (0, 1, 0)
        );
        let d = month_deltas(Some(&late), Some(&on_time));
        assert_eq!((d[0].3.finished_with_deadline, d[0].3.finished_on_time), (0, 1));
        let d = month_deltas(Some(&on_time), None);
        assert_eq!((d[0].3.reported, d[0].3.finished_on_time), (-1, -1));
    }
}
