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
        Entity::Photo => "photos",
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
        | Entity::ServiceLog => true,
        Entity::Photo => false,
    }
}

/// Whether the kind's records name their grid (`grid_id`); events and
/// photos belong to a grid through what they are attached to.
pub(crate) fn has_grid(entity: Entity) -> bool {
    match entity {
        Entity::Place | Entity::Household | Entity::Resident | Entity::Incident | Entity::ServiceLog => true,
        Entity::IncidentEvent | Entity::Photo => false,
    }
}

/// Which rows of the kind's table the phone counts by sync status (SQL over
/// the table as `t`); `None` for photos, which show theirs through what they
/// are attached to. Drafts and deleted records are not counted.
pub(crate) fn status_rows(entity: Entity) -> Option<&'static str> {
    match entity {
        Entity::Place | Entity::Household | Entity::Resident | Entity::ServiceLog => Some("t.deleted_at IS NULL"),
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
        Entity::Photo => fields_of(&load::photo(conn, id)?),
    }
}
