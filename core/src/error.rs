//! The core's error type.
//!
//! One enum for the whole core, with a [`Code`] for every way input can be
//! invalid. Messages name the field and the rule, never the value: an error may
//! be logged or shown, and the value may be a resident's ID number.

/// Result of every fallible core call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

pub use fieldgrid_domain::error::{Code, ValidationError};

/// Every error the core returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Input was refused; nothing was written.
    #[error("invalid input: {0}")]
    Validation(#[from] ValidationError),
    /// No record of this kind with this id.
    #[error("{entity} {id} not found")]
    NotFound {
        /// Kind of record (`resident`, `incident`, ...).
        entity: &'static str,
        /// The record id (a UUID, not personal data).
        id: String,
    },
    /// The file is encrypted with another key, or is not a FieldGrid store.
    #[error("the store cannot be opened with this key (wrong key, or not a FieldGrid store)")]
    WrongKey,
    /// A key was given but the file is a plain, unencrypted database.
    #[error("the store is not encrypted but a key was given")]
    NotEncrypted,
    /// No key was given and the file is not a plain SQLite database.
    #[error("the file is not a plain SQLite database; if it is an encrypted store, supply its key")]
    NotADatabase,
    /// The file was written by a newer version of FieldGrid.
    #[error(
        "the store has schema version {found}; this version of FieldGrid supports up to {supported}: update the app"
    )]
    NewerSchema {
        /// Version found in the file.
        found: i64,
        /// Highest version this build knows.
        supported: i64,
    },
    /// SQLite reported an error.
    #[error("storage error: {0}")]
    Storage(#[from] rusqlite::Error),
    /// A file could not be read or written.
    #[error("file error: {0}")]
    Io(#[from] std::io::Error),
    /// The server cannot be reached (after retries): try again later.
    #[error("offline: the server cannot be reached; try again later")]
    Offline,
    /// No session, or it expired: the worker must sign in again. Nothing is lost.
    #[error("signed out: sign in again")]
    AuthExpired,
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    BadCredentials,
    /// The server no longer speaks this app's protocol: update the app.
    #[error("this app version is too old for the server: update the app")]
    ProtocolTooOld,
    /// The account may not do this (a grid not assigned).
    #[error("not allowed for this account")]
    Forbidden,
    /// The server answered with an error that retrying did not fix.
    #[error("server error {status} ({code})")]
    Server {
        /// HTTP status (0: unreadable answer).
        status: u16,
        /// Error code.
        code: String,
    },
    /// The store still holds work the server has not confirmed.
    #[error("{operations} operations have not reached the server yet: sync first, or force")]
    Unsynced {
        /// Operations waiting or in flight.
        operations: u64,
    },
    /// The sync was cancelled; what was done stays done.
    #[error("cancelled")]
    Cancelled,
    /// The store belongs to another account: each worker on a shared phone
    /// has a store of their own (`store_path_for_account`).
    #[error("this store belongs to another account: open that account's store")]
    OtherAccount,
    /// The district asked for this phone to be wiped (lost, or retired):
    /// what was asked to be sent first has been sent; the store is to be
    /// erased now (`Store::remote_wipe`).
    #[error("the district asked for this phone to be wiped")]
    WipeRequested,
    /// A bug: an invariant of the core did not hold.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// Shorthand for a validation error.
    pub fn invalid(field: impl Into<String>, code: Code) -> Self {
        Error::Validation(ValidationError::new(field, code))
    }

    /// The validation error inside, if this is one.
    pub fn as_validation(&self) -> Option<&ValidationError> {
        match self {
            Error::Validation(v) => Some(v),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        // serde_json messages quote the offending input only for syntax errors in
        // text we produced ourselves; keep the category, drop the detail.
        Error::Internal(format!("json {:?} at line {}", e.classify(), e.line()))
    }
}
