//! The core's error type.
//!
//! One enum for the whole core, with a [`Code`] for every way input can be
//! invalid. Messages name the field and the rule, never the value: an error may
//! be logged or shown, and the value may be a resident's ID number.

use std::fmt;

/// Result of every fallible core call.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a field was refused. `as_str` is the stable machine code (it travels in
/// the sync protocol); `Display` is a short English explanation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Code {
    /// A required field is missing or blank.
    Required,
    /// Text longer than the field allows.
    TooLong {
        /// Maximum length in characters.
        max: usize,
    },
    /// Characters or shape not allowed for the field.
    BadFormat,
    /// Control characters in a text field.
    ControlCharacter,
    /// The ISO 7064 MOD 11-2 check character of an ID number does not match.
    BadCheckCharacter,
    /// The first two digits are not a province-level region code.
    BadRegion,
    /// Not a real calendar date (or before 1900).
    BadDate,
    /// A date or time in the future.
    InFuture,
    /// A first-generation 15-digit ID number; only 18-digit numbers are valid.
    Legacy15Digit,
    /// The sex given does not match the sex digit of the ID number.
    SexMismatch,
    /// The birth date given does not match the ID number.
    BirthDateMismatch,
    /// A number outside its allowed range.
    OutOfRange,
    /// A category code that is not in the catalogue.
    UnknownCategory,
    /// A reference to a record that does not exist here.
    UnknownReference,
    /// A reference to a record of the wrong kind (a unit where a building is required).
    WrongKind,
    /// The record has been deleted.
    Deleted,
    /// A reference to a record of another grid.
    OtherGrid,
    /// Another live record already holds this value.
    Duplicate,
    /// The change is not allowed in the record's current state.
    NotAllowed,
    /// An empty file or value where content is required.
    Empty,
    /// A file that does not exist or cannot be read.
    Unreadable,
    /// A file larger than allowed.
    TooLarge {
        /// Maximum size in bytes.
        max: u64,
    },
    /// A file type that is not accepted.
    UnsupportedType,
    /// Too many items in a list.
    TooMany {
        /// Maximum number of items.
        max: usize,
    },
}

impl Code {
    /// Stable machine-readable code.
    pub fn as_str(&self) -> &'static str {
        match self {
            Code::Required => "required",
            Code::TooLong { .. } => "too_long",
            Code::BadFormat => "bad_format",
            Code::ControlCharacter => "control_character",
            Code::BadCheckCharacter => "bad_check_character",
            Code::BadRegion => "bad_region",
            Code::BadDate => "bad_date",
            Code::InFuture => "in_future",
            Code::Legacy15Digit => "legacy_15_digit",
            Code::SexMismatch => "sex_mismatch",
            Code::BirthDateMismatch => "birth_date_mismatch",
            Code::OutOfRange => "out_of_range",
            Code::UnknownCategory => "unknown_category",
            Code::UnknownReference => "unknown_reference",
            Code::WrongKind => "wrong_kind",
            Code::Deleted => "deleted",
            Code::OtherGrid => "other_grid",
            Code::Duplicate => "duplicate",
            Code::NotAllowed => "not_allowed",
            Code::Empty => "empty",
            Code::Unreadable => "unreadable",
            Code::TooLarge { .. } => "too_large",
            Code::UnsupportedType => "unsupported_type",
            Code::TooMany { .. } => "too_many",
        }
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Code::Required => f.write_str("is required"),
            Code::TooLong { max } => write!(f, "is longer than {max} characters"),
            Code::BadFormat => f.write_str("has an invalid format"),
            Code::ControlCharacter => f.write_str("contains control characters"),
            Code::BadCheckCharacter => f.write_str("has a wrong check character"),
            Code::BadRegion => f.write_str("has an unknown region code"),
            Code::BadDate => f.write_str("is not a valid date"),
            Code::InFuture => f.write_str("is in the future"),
            Code::Legacy15Digit => f.write_str("is a first-generation 15-digit number; enter the 18-digit number"),
            Code::SexMismatch => f.write_str("does not match the sex digit of the ID number"),
            Code::BirthDateMismatch => f.write_str("does not match the ID number"),
            Code::OutOfRange => f.write_str("is out of range"),
            Code::UnknownCategory => f.write_str("is not a known category"),
            Code::UnknownReference => f.write_str("refers to a record that does not exist"),
            Code::WrongKind => f.write_str("refers to a record of the wrong kind"),
            Code::Deleted => f.write_str("refers to a deleted record"),
            Code::OtherGrid => f.write_str("refers to a record of another grid"),
            Code::Duplicate => f.write_str("is already used by another record"),
            Code::NotAllowed => f.write_str("cannot be changed in the record's current state"),
            Code::Empty => f.write_str("is empty"),
            Code::Unreadable => f.write_str("cannot be read"),
            Code::TooLarge { max } => write!(f, "is larger than {max} bytes"),
            Code::UnsupportedType => f.write_str("is not a supported type"),
            Code::TooMany { max } => write!(f, "has more than {max} items"),
        }
    }
}

/// A refused field: which one, and why. Never carries the value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidationError {
    /// The field, as named in the API and the protocol (`id_number`, `location.latitude`).
    pub field: String,
    /// The rule it broke.
    pub code: Code,
}

impl ValidationError {
    /// A refusal of `field` for `code`.
    pub fn new(field: impl Into<String>, code: Code) -> Self {
        ValidationError {
            field: field.into(),
            code,
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.field, self.code)
    }
}

impl std::error::Error for ValidationError {}

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
