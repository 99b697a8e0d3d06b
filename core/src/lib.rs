//! FieldGrid core: everything a grid worker captures lands here first.
//!
//! - [`Store`]: the on-device SQLite store (SQLCipher-encrypted when keyed),
//!   with append-only migrations and one writer connection.
//! - [`model`], [`validate`], [`rules`], [`catalogue`], [`privacy`]: the
//!   domain (fieldgrid-domain, shared with the server), re-exported.
//! - Capture (`create_*`, `update_*`, `delete_*`, drafts, photos) and queries
//!   (search, paging, dashboard, the due list of [`visits`]) are methods of [`Store`].
//! - [`outbox`]: the operations waiting for the server.
//! - [`sync`]: the sync engine, async on tokio over reqwest
//!   ([`Store::sync_async`]; [`Store::sync`] for blocking callers).
//!
//! Store calls are blocking and safe from any thread; the calls that reach
//! the server are async, each with a blocking twin.

mod capture;
pub mod datagen;
mod db;
pub mod entity;
pub mod error;
pub mod outbox;
pub mod query;
mod search;
mod store;
pub mod sync;
pub mod visits;

// The domain (model, rules, validation, catalogue, masking) is shared with
// the server in fieldgrid-domain; the migration runner in fieldgrid-sqlite.
// Re-exported whole, so an app needs one crate.
pub use fieldgrid_domain::{catalogue, input, model, new_id, privacy, rules, validate};
pub use fieldgrid_sqlite::migrate;

pub use capture::{
    CsvImportReport, HouseholdChange, ImportReport, IncidentChange, InspectionReport, ItemAnswer, ItemPhoto,
    NewHousehold, NewIncident, NewIncidentEvent, NewInspection, NewPhoto, NewPlace, NewResident, NewServiceLog,
    PhotoSource, PlaceChange, ResidentChange, ResidentsCsv, parse_residence_label, parse_residents_csv,
    parse_sex_label,
};
pub use catalogue::{
    AnswerType, Catalogue, Category, CategoryGroup, Checklist, ChecklistItem, Every, FieldDef, VisitRule,
};
pub use db::schema::LATEST as SCHEMA_VERSION;
pub use entity::Entity;
pub use error::{Code, Error, Result, ValidationError};
pub use model::*;
pub use query::{Dashboard, IncidentQuery, Page, PageRequest, ResidentQuery};
pub use store::{
    ChangeListener, Clock, DataChange, Store, StoreKey, StoreOptions, SystemClock, store_path_for_account,
};
pub use visits::{DueVisit, VisitCounts, VisitState};
