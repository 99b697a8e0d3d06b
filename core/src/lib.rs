//! FieldGrid core: everything a grid worker captures lands here first.
//!
//! - [`Store`]: the on-device SQLite store (SQLCipher-encrypted when keyed),
//!   with append-only migrations and one writer connection.
//! - [`model`]: grids, places, households, residents, incidents with their
//!   timeline, service logs, photos.
//! - [`validate`]: the rules every write obeys (ID numbers, phones, text,
//!   coordinates, photos), shared with the server.
//! - Capture (`create_*`, `update_*`, `delete_*`, drafts, photos) and queries
//!   (search, paging, dashboard) are methods of [`Store`].
//! - [`outbox`]: the operations waiting for the server.
//! - [`privacy`]: masked forms; no record prints personal data in `Debug`.
//!
//! Every call is blocking and safe from any thread.

mod capture;
pub mod catalogue;
pub mod datagen;
mod db;
pub mod entity;
pub mod error;
pub mod migrate;
pub mod model;
pub mod outbox;
pub mod privacy;
pub mod query;
pub mod rules;
mod search;
mod store;
pub mod sync;
pub mod validate;

pub use capture::{
    CsvImportReport, HouseholdChange, ImportReport, IncidentChange, NewHousehold, NewIncident, NewIncidentEvent,
    NewPhoto, NewPlace, NewResident, NewServiceLog, PhotoSource, PlaceChange, ResidentChange, ResidentsCsv,
    parse_residence_label, parse_residents_csv, parse_sex_label,
};
pub use catalogue::{Catalogue, Category, CategoryGroup};
pub use db::schema::LATEST as SCHEMA_VERSION;
pub use entity::Entity;
pub use error::{Code, Error, Result, ValidationError};
pub use model::*;
pub use query::{Dashboard, IncidentQuery, Page, PageRequest, ResidentQuery};
pub use store::{
    ChangeListener, Clock, DataChange, Store, StoreKey, StoreOptions, SystemClock, store_path_for_account,
};

/// A new record or operation id: a UUIDv7, time-ordered and unique without
/// coordination, generated on the device (SYNC.md invariant 2).
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}
