//! The registry of record kinds: what each [`Entity`] is on the phone, its
//! table, whether it belongs to a grid directly, and how to read one record
//! as wire fields. Its field rules are [`crate::rules::fields_of`]. Every
//! function here and there matches on the kind without a catch-all: a new
//! kind does not compile until each one says what it is.

use rusqlite::Connection;
use serde_json::{Map, Value};

use crate::capture::{fields_of, load};
use crate::error::Result;
pub use fieldgrid_protocol::Entity;

/// The local table of a kind.
pub(crate) fn table(entity: Entity) -> &'static str {
    match entity {
        Entity::Place => "places",
        Entity::Household => "households",
        Entity::Resident => "residents",
        Entity::Incident => "incidents",
        Entity::IncidentEvent => "incident_events",
        Entity::ServiceLog => "service_logs",
        Entity::Inspection => "inspections",
        Entity::Photo => "photos",
    }
}

/// The kind whose records live in `table`, if any.
pub(crate) fn of_table(name: &str) -> Option<Entity> {
    Entity::ALL.into_iter().find(|&e| table(e) == name)
}

/// The grid of each of the given rows of a kind's table (`rowids` as a JSON
/// array), as SQL with `?1` for the array. Rows no longer there give none.
pub(crate) fn grids_of_rows(entity: Entity) -> &'static str {
    match entity {
        Entity::Place => "SELECT grid_id FROM places WHERE rowid IN (SELECT value FROM json_each(?1))",
        Entity::Household => "SELECT grid_id FROM households WHERE rowid IN (SELECT value FROM json_each(?1))",
        Entity::Resident => "SELECT grid_id FROM residents WHERE rowid IN (SELECT value FROM json_each(?1))",
        Entity::Incident => "SELECT grid_id FROM incidents WHERE rowid IN (SELECT value FROM json_each(?1))",
        Entity::ServiceLog => "SELECT grid_id FROM service_logs WHERE rowid IN (SELECT value FROM json_each(?1))",
        Entity::Inspection => "SELECT grid_id FROM inspections WHERE rowid IN (SELECT value FROM json_each(?1))",
        Entity::IncidentEvent => {
            "SELECT i.grid_id FROM incident_events e JOIN incidents i ON i.id = e.incident_id
             WHERE e.rowid IN (SELECT value FROM json_each(?1))"
        }
        Entity::Photo => {
            "SELECT coalesce(i.grid_id, s.grid_id, ei.grid_id, n.grid_id) FROM photos p
             LEFT JOIN incidents i ON i.id = p.owner_id
             LEFT JOIN service_logs s ON s.id = p.owner_id
             LEFT JOIN inspections n ON n.id = p.owner_id
             LEFT JOIN incident_events e ON e.id = p.owner_id
             LEFT JOIN incidents ei ON ei.id = e.incident_id
             WHERE p.rowid IN (SELECT value FROM json_each(?1))"
        }
    }
}

/// Whether the kind's records have server versions (photos never change).
pub(crate) fn has_versions(entity: Entity) -> bool {
    match entity {
        Entity::Place
        | Entity::Household
        | Entity::Resident
        | Entity::Incident
        | Entity::IncidentEvent
        | Entity::ServiceLog
        | Entity::Inspection => true,
        Entity::Photo => false,
    }
}

/// Whether the kind's records name their grid (`grid_id`); events and
/// photos belong to a grid through what they are attached to.
pub(crate) fn has_grid(entity: Entity) -> bool {
    match entity {
        Entity::Place
        | Entity::Household
        | Entity::Resident
        | Entity::Incident
        | Entity::ServiceLog
        | Entity::Inspection => true,
        Entity::IncidentEvent | Entity::Photo => false,
    }
}

/// Which rows of the kind's table the phone counts by sync status (SQL over
/// the table as `t`); `None` for photos, which show theirs through what they
/// are attached to. Drafts and deleted records are not counted.
pub(crate) fn status_rows(entity: Entity) -> Option<&'static str> {
    match entity {
        Entity::Place | Entity::Household | Entity::Resident | Entity::ServiceLog | Entity::Inspection => {
            Some("t.deleted_at IS NULL")
        }
        Entity::Incident => Some("t.deleted_at IS NULL AND t.status <> 'draft'"),
        Entity::IncidentEvent => Some("1"),
        Entity::Photo => None,
    }
}

/// A record as it stands on the phone, as wire fields (deleted ones
/// included): the payload of a create when it is sent, and what local
/// edits keep when the server's version of the record arrives.
pub(crate) fn current_fields(conn: &Connection, entity: Entity, id: &str) -> Result<Map<String, Value>> {
    match entity {
        Entity::Place => fields_of(&load::place(conn, id)?),
        Entity::Household => fields_of(&load::household(conn, id)?),
        Entity::Resident => fields_of(&crate::capture::residents::resident_fields(conn, id)?),
        Entity::Incident => fields_of(&load::incident(conn, id)?),
        Entity::IncidentEvent => fields_of(&load::incident_event(conn, id)?),
        Entity::ServiceLog => fields_of(&load::service_log(conn, id)?),
        Entity::Inspection => fields_of(&load::inspection(conn, id)?),
        Entity::Photo => fields_of(&load::photo(conn, id)?),
    }
}
