//! FieldGrid's domain: the rules the phone and the district server share.
//!
//! - [`model`]: grids, places, households, residents, incidents with their
//!   timeline, service logs, photos; their enums and wire names.
//! - [`input`]: what a worker enters to capture or change a record.
//! - [`validate`]: ID numbers, phones, text, coordinates, photo types, limits.
//! - [`rules`]: each record kind's fields (who writes each one, how it is
//!   checked); the phone's capture and the server's `check` apply the same table.
//! - [`catalogue`]: the district's incident categories and deadlines, and visit rules.
//! - [`visits`]: visit periods and where a resident stands in one.
//! - [`privacy`]: masked forms; no record prints personal data in `Debug`.
//! - [`wire`]: each record kind's one wire shape, read by the phone's pull and
//!   completed by the server before it stores a record.
//! - [`datagen`]: realistic generated people and places, for tests and load.
//!
//! No I/O: no database, no network, no files.

pub mod catalogue;
pub mod china_time;
pub mod datagen;
pub mod error;
pub mod input;
pub mod model;
pub mod privacy;
pub mod rules;
pub mod validate;
pub mod visits;
pub mod wire;

pub use catalogue::{AnswerType, Catalogue, Category, CategoryGroup, Checklist, ChecklistItem, Every, VisitRule};
pub use error::{Code, ValidationError};
pub use fieldgrid_protocol::Entity;

/// A new record or operation id: a UUIDv7, time-ordered and unique without
/// coordination, generated on the device (SYNC.md invariant 2).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
