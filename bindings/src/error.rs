//! The one error type the shells see, and the guard that turns a panic into it.
//!
//! Variants are few and each calls for one action in the app. Messages name
//! fields and rules, never values (they may be shown or logged).

use std::panic::{AssertUnwindSafe, catch_unwind};

use fieldgrid_core::Error;

/// Why a store could not be opened or written.
#[derive(uniffi::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageProblem {
    /// The file is encrypted with another key (or is not a FieldGrid store).
    /// Keep the file (`move_store_aside`) and ask the worker to sync from fresh.
    WrongKey,
    /// The file is a plain database but a key was given.
    NotEncrypted,
    /// The file is not a plain database and no key was given.
    NotADatabase,
    /// The file was written by a newer app version: update the app.
    NewerSchema,
    /// The database refused a read or write (disk full, file damaged).
    Database,
    /// A file (a photo, the store folder) could not be read or written.
    File,
}

/// Every error a FieldGrid call returns. In Kotlin it is `FieldGridException`
/// with one subclass per variant; in Swift an `enum FieldGridError: Error`.
#[derive(uniffi::Error, thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum FieldGridError {
    /// The input was refused; nothing was written. Show `reason` next to `field`.
    #[error("invalid input: {reason}")]
    Validation {
        /// The field as named in the API (`id_number`, `location.latitude`, `photos[1]`).
        field: String,
        /// Stable code of the rule broken (`bad_check_character`, `required`, ...).
        code: String,
        /// Short English explanation, without the value.
        reason: String,
    },
    /// No record of this kind with this id on this phone.
    #[error("{entity} not found")]
    NotFound {
        /// Kind of record (`resident`, `incident`, ...).
        entity: String,
        /// The id asked for.
        id: String,
    },
    /// The call does not fit the store's state now: operations not yet synced
    /// (wipe without force), a sync already running, a closed store.
    #[error("{reason}")]
    Conflict {
        /// What stands in the way.
        reason: String,
    },
    /// The server cannot be reached, or cannot answer now: try again later.
    /// Nothing captured is lost.
    #[error("{reason}")]
    Offline {
        /// What happened (no personal data).
        reason: String,
    },
    /// The session expired or there is none: sign in again. Nothing is lost.
    #[error("signed out: sign in again")]
    AuthExpired,
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    BadCredentials,
    /// The account may not do this (a grid that is not assigned to it).
    #[error("not allowed for this account")]
    Forbidden,
    /// The server no longer speaks this app's protocol: update the app.
    #[error("this app version is too old for the server: update the app")]
    ProtocolTooOld,
    /// The store could not be opened, read or written.
    #[error("{reason}")]
    Storage {
        /// Which problem.
        problem: StorageProblem,
        /// What happened (no personal data).
        reason: String,
    },
    /// The sync was cancelled; what was done stays done.
    #[error("cancelled")]
    Cancelled,
    /// The district had this phone wiped (lost or retired): the store and
    /// its photos are gone, and the server was told. Delete the store's key
    /// and show the sign-in screen.
    #[error("this phone was wiped at the district's request")]
    Wiped,
    /// A bug in FieldGrid. The call changed nothing; please report it.
    #[error("internal error: {reason}")]
    Internal {
        /// What failed (no personal data).
        reason: String,
    },
}

impl From<Error> for FieldGridError {
    fn from(e: Error) -> Self {
        let storage = |problem| FieldGridError::Storage {
            problem,
            reason: e.to_string(),
        };
        match e {
            Error::Validation(ref v) => FieldGridError::Validation {
                field: v.field.clone(),
                code: v.code.as_str().to_owned(),
                reason: v.to_string(),
            },
            Error::NotFound { entity, ref id } => FieldGridError::NotFound {
                entity: entity.to_owned(),
                id: id.clone(),
            },
            Error::WrongKey => storage(StorageProblem::WrongKey),
            Error::NotEncrypted => storage(StorageProblem::NotEncrypted),
            Error::NotADatabase => storage(StorageProblem::NotADatabase),
            Error::NewerSchema { .. } => storage(StorageProblem::NewerSchema),
            Error::Storage(_) => storage(StorageProblem::Database),
            Error::Io(_) => storage(StorageProblem::File),
            Error::Offline | Error::Server { .. } => FieldGridError::Offline { reason: e.to_string() },
            Error::AuthExpired => FieldGridError::AuthExpired,
            Error::BadCredentials => FieldGridError::BadCredentials,
            Error::Forbidden => FieldGridError::Forbidden,
            Error::ProtocolTooOld => FieldGridError::ProtocolTooOld,
            Error::Unsynced { .. } | Error::OtherAccount => FieldGridError::Conflict { reason: e.to_string() },
            // The sync client erases the store before this reaches the app.
            Error::WipeRequested => FieldGridError::Wiped,
            Error::Cancelled => FieldGridError::Cancelled,
            Error::Internal(_) => FieldGridError::Internal { reason: e.to_string() },
        }
    }
}

impl From<fieldgrid_core::ValidationError> for FieldGridError {
    fn from(v: fieldgrid_core::ValidationError) -> Self {
        Error::Validation(v).into()
    }
}

/// Result of every exported call.
pub type Result<T, E = FieldGridError> = std::result::Result<T, E>;

/// Runs `f`, turning a panic into [`FieldGridError::Internal`]. The panic's
/// message is not kept: it may quote a value (a string slice panic prints the
/// string), and values here are residents' data.
pub(crate) fn guard<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(panicked()))
}

pub(crate) fn panicked() -> FieldGridError {
    FieldGridError::Internal {
        reason: "unexpected failure inside FieldGrid (a bug; nothing was written by this call)".to_owned(),
    }
}

/// Replaces the default panic hook, which prints the panic message (possibly
/// quoting personal data) to stderr, with one that logs where it happened only.
pub(crate) fn install_quiet_panic_hook() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        std::panic::set_hook(Box::new(|info| {
            let (file, line) = info.location().map_or(("?", 0), |l| (l.file(), l.line()));
            tracing::error!(
                file,
                line,
                "panic inside FieldGrid (message withheld: it may quote data)"
            );
        }));
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldgrid_core::Code;

    #[test]
    fn a_panic_becomes_an_internal_error_without_its_message() {
        install_quiet_panic_hook();
        let r: Result<()> = guard(|| {
            let name = "张三丰";
            let _ = &name[..1]; // panics, quoting the name
            Ok(())
        });
        let e = r.unwrap_err();
        assert!(matches!(e, FieldGridError::Internal { .. }));
        assert!(!e.to_string().contains('张'));
    }

    #[test]
    fn core_errors_map_to_actionable_variants_without_values() {
        let v: FieldGridError = Error::invalid("id_number", Code::BadCheckCharacter).into();
        assert_eq!(
            v,
            FieldGridError::Validation {
                field: "id_number".into(),
                code: "bad_check_character".into(),
                reason: "id_number has a wrong check character".into(),
            }
        );
        assert!(matches!(
            FieldGridError::from(Error::WrongKey),
            FieldGridError::Storage {
                problem: StorageProblem::WrongKey,
                ..
            }
        ));
        assert!(matches!(
            FieldGridError::from(Error::Server {
                status: 503,
                code: "overloaded".into()
            }),
            FieldGridError::Offline { .. }
        ));
        assert!(matches!(
            FieldGridError::from(Error::Unsynced { operations: 3 }),
            FieldGridError::Conflict { .. }
        ));
    }
}
