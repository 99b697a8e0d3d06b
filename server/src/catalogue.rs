//! The incident category catalogue the district publishes: stored as one
//! record visible to every grid (grid id `*`), so devices receive it by pull.

use fieldgrid_core::catalogue::Catalogue;
use rusqlite::Connection;
use serde_json::Value;

use crate::records::{self, Record};

/// Grid id of records every worker receives.
pub const ALL_GRIDS: &str = "*";
const ID: &str = "catalogue";

/// The catalogue in force: the published one, or the built-in one when
/// none newer was published.
pub fn current(conn: &Connection) -> rusqlite::Result<Catalogue> {
    let builtin = Catalogue::builtin();
    Ok(records::load(conn, ID)?
        .and_then(|r| serde_json::from_value::<Catalogue>(Value::Object(r.fields)).ok())
        .filter(|c| c.version > builtin.version)
        .unwrap_or(builtin))
}

/// Publishes a catalogue; refused unless its version is newer than the one in force.
pub fn publish(conn: &Connection, catalogue: &Catalogue, now: i64) -> Result<(), String> {
    let in_force = current(conn).map_err(|e| e.to_string())?;
    if catalogue.version <= in_force.version || catalogue.categories.is_empty() {
        return Err(format!(
            "publish a non-empty catalogue newer than version {}",
            in_force.version
        ));
    }
    let Ok(Value::Object(fields)) = serde_json::to_value(catalogue) else {
        return Err("catalogue did not serialise".into());
    };
    let version = records::load(conn, ID)
        .map_err(|e| e.to_string())?
        .map_or(1, |r| r.version + 1);
    records::save(
        conn,
        &Record {
            id: ID.into(),
            entity: "catalogue".into(),
            grid_id: ALL_GRIDS.into(),
            version,
            deleted: false,
            fields,
            field_versions: serde_json::Map::new(),
        },
        now,
    )
    .map_err(|e| e.to_string())?;
    Ok(())
}
