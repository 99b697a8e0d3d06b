//! What can go wrong in storage, said without HTTP: storage returns a
//! [`StoreError`], and the HTTP layer maps it to an answer once
//! (`From<StoreError> for ApiError`, in `server/src/service/mod.rs`).

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The request was abandoned, or took longer than the server allows:
    /// its database work was stopped (SQLite interrupted, PostgreSQL's
    /// statement cancelled) and nothing of it was kept.
    #[error("the request was stopped")]
    Stopped,
    /// What was asked breaks a rule of the schema (an unknown grid, account
    /// or department): a mistake of the caller's, said without its values.
    #[error("{0}")]
    Refused(&'static str),
    /// Anything else: an engine failure or a storage bug. Logged where it is
    /// mapped, never shown.
    #[error("{0}")]
    Internal(String),
}

impl StoreError {
    /// An internal failure, described.
    pub fn internal(what: impl std::fmt::Display) -> Self {
        StoreError::Internal(what.to_string())
    }
}

/// A storage result.
pub type StoreResult<T> = Result<T, StoreError>;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> Self {
        // Interrupted: its request was abandoned, nobody waits.
        if e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted) {
            return StoreError::Stopped;
        }
        StoreError::internal(format!("sqlite: {e}"))
    }
}

impl From<serde_json::Error> for StoreError {
    fn from(e: serde_json::Error) -> Self {
        // Line and column only: the text may be personal.
        StoreError::internal(format!("stored JSON: line {}, column {}", e.line(), e.column()))
    }
}

/// An error that says whether its work was stopped (the stopped-work
/// counter), and that storage's errors convert into: storage's own, or the
/// API's for a transaction that runs policy (a push).
pub trait Stoppable: From<StoreError> {
    /// Whether the work was stopped, not failed.
    fn stopped(&self) -> bool;
}

impl Stoppable for StoreError {
    fn stopped(&self) -> bool {
        matches!(self, StoreError::Stopped)
    }
}
