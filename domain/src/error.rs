//! Why input is refused: a [`Code`] for every rule, and the field it is
//! about. Messages name the field and the rule, never the value: an error
//! may be logged or shown, and the value may be a resident's ID number.

use std::fmt;

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
