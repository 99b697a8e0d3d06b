//! The `records` table: one row per record, its fields as JSON, a version,
//! the sequence of its latest change, and per-field versions for conflicts.

use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::db::next_seq;

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
#[derive(Clone, Debug)]
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

/// Loads a record by id.
pub fn load(conn: &Connection, id: &str) -> rusqlite::Result<Option<Record>> {
    conn.prepare_cached("SELECT entity, grid_id, version, deleted, fields, field_versions FROM records WHERE id = ?1")?
        .query_row([id], |r| {
            let fields: String = r.get(4)?;
            let fv: String = r.get(5)?;
            Ok(Record {
                id: id.to_owned(),
                entity: r.get(0)?,
                grid_id: r.get(1)?,
                version: r.get(2)?,
                deleted: r.get::<_, i64>(3)? != 0,
                fields: serde_json::from_str(&fields).unwrap_or_default(),
                field_versions: serde_json::from_str(&fv).unwrap_or_default(),
            })
        })
        .optional()
}

/// Writes a record (insert or replace) with a new sequence number.
pub fn save(conn: &Connection, rec: &Record, now: i64) -> rusqlite::Result<i64> {
    let seq = next_seq(conn)?;
    conn.prepare_cached(
        "INSERT INTO records (id, entity, grid_id, version, seq, deleted, fields, field_versions, created_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)
         ON CONFLICT (id) DO UPDATE SET version = ?4, seq = ?5, deleted = ?6, fields = ?7, field_versions = ?8,
           updated_at = ?9",
    )?
    .execute(params![
        rec.id,
        rec.entity,
        rec.grid_id,
        rec.version,
        seq,
        rec.deleted as i64,
        Value::Object(rec.fields.clone()).to_string(),
        Value::Object(rec.field_versions.clone()).to_string(),
        now
    ])?;
    Ok(seq)
}

/// Records of one entity, optionally of one grid.
pub fn of_entity(conn: &Connection, entity: &str, grid: Option<&str>) -> rusqlite::Result<Vec<Record>> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, grid_id, version, deleted, fields, field_versions FROM records
         WHERE entity = ?1 AND (?2 IS NULL OR grid_id = ?2) ORDER BY seq",
    )?;
    let rows = stmt.query_map(params![entity, grid], |r| {
        let fields: String = r.get(4)?;
        let fv: String = r.get(5)?;
        Ok(Record {
            id: r.get(0)?,
            entity: entity.to_owned(),
            grid_id: r.get(1)?,
            version: r.get(2)?,
            deleted: r.get::<_, i64>(3)? != 0,
            fields: serde_json::from_str(&fields).unwrap_or_default(),
            field_versions: serde_json::from_str(&fv).unwrap_or_default(),
        })
    })?;
    rows.collect()
}
