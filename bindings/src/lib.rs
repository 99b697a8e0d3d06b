//! FieldGrid's foreign-language surface: the library (`libfieldgrid`) that
//! the Android and iOS shells and the Python QA tools load, through uniffi.
//!
//! It only delegates to `fieldgrid-core`:
//! - [`FieldGridStore`]: the open store with capture and queries (blocking calls);
//! - [`SyncClient`]: sign-in and sync with the district server (async calls);
//! - [`FieldGridError`]: the one error type, with few actionable variants;
//! - [`set_log_sink`]: the core's log lines to the app's logger;
//! - masking and ID-number helpers for forms and lists.
//!
//! Every object is safe to use from any thread. A panic inside becomes
//! `FieldGridError::Internal`; it never unwinds into the app.

mod changes;
mod error;
mod logging;
mod store;
mod sync;
mod types;

pub use changes::{ChangeListener, DataChange, RecordKind};
pub use error::{FieldGridError, StorageProblem};
pub use logging::{LogLevel, LogRecord, LogSink, set_log_sink};
pub use store::{
    FieldGridStore, IdNumberInfo, check_id_number, mask_id_number, mask_name, mask_phone, move_store_aside,
};
pub use sync::{Session, SyncClient, SyncListener, SyncPhase, SyncProgress, SyncReport, SyncSettings};
pub use types::*;

uniffi::setup_scaffolding!();
