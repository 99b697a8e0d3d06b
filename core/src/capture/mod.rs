//! Capture: every write a grid worker makes.
//!
//! Each public call validates its input, then writes the record and its
//! outbox operation(s) in one transaction, and returns the saved record with
//! its sync status. Bad input returns a [`crate::Error::Validation`] naming
//! the field, and nothing is written.

pub(crate) mod extra;
pub(crate) mod incidents;
mod inspections;
mod photos;
mod places;
pub(crate) mod residents;
mod residents_csv;
mod service_logs;

use rusqlite::{Connection, OptionalExtension};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::entity::Entity;
use crate::error::{Code, Error, Result};

pub use fieldgrid_domain::input::*;

/// Loaders of every captured record kind by id (deleted ones included).
pub(crate) mod load {
    pub(crate) use super::incidents::{load_event as incident_event, load_incident as incident};
    pub(crate) use super::inspections::load_inspection as inspection;
    pub(crate) use super::photos::load_photo as photo;
    pub(crate) use super::places::{load_household as household, load_place as place};
    pub(crate) use super::service_logs::load_service_log as service_log;
}
pub use inspections::InspectionReport;
pub use residents::ImportReport;
pub use residents_csv::{CsvImportReport, ResidentsCsv, parse_residence_label, parse_residents_csv, parse_sex_label};

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
