//! Pulled records this phone cannot apply (SYNC.md invariant 13): set aside,
//! never in the way of the rest of a pull, as a refused operation is never
//! in the way of the outbox.
//!
//! A record that does not read in its entity's wire shape is set aside
//! before anything of it is written. A page whose apply still fails in the
//! store (a record the store's own rules refuse) is applied again record by
//! record, each in a savepoint, and the records that fail are set aside;
//! a failure of the store itself (disk full, I/O, corruption) still stops
//! the pull, as it must. A record set aside is kept as the server sent it,
//! reported to the server (`POST /v1/sync/problems`, seen by the centre),
//! tried again at the start of each pull (a newer build may read it), and
//! replaced when the server sends a newer version of it.

use rusqlite::{ErrorCode, OptionalExtension, Transaction, params};

use super::apply::{self, Applied};
use crate::error::{Error, Result};
use fieldgrid_protocol::{Change, RecordProblem, codes};

/// What applying a batch of pulled changes did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Counts {
    /// Changes written (or here already).
    pub applied: u64,
    /// Changes set aside.
    pub set_aside: u64,
}

/// Applies `changes` in `tx`. With `careful`, each change runs in a
/// savepoint, and one the store refuses is set aside instead of failing the
/// batch.
pub(crate) fn apply_all(tx: &Transaction<'_>, changes: &[Change], now: i64, careful: bool) -> Result<Counts> {
    let mut counts = Counts::default();
    // Only a phone holding records set aside looks for them to replace.
    let holding = any_set_aside(tx)?;
    for c in changes {
        let applied = if careful {
            in_savepoint(tx, || apply::apply_change(tx, c, now))
        } else {
            apply::apply_change(tx, c, now)
        };
        match applied {
            Ok(Applied::Yes) => {
                counts.applied += 1;
                if holding {
                    tx.prepare_cached("DELETE FROM set_aside WHERE entity_id = ?1 AND version <= ?2")?
                        .execute(params![c.entity_id, c.version])?;
                }
            }
            Ok(Applied::Unknown) => {}
            Ok(Applied::Unreadable(why)) => {
                tracing::warn!(entity = %c.entity, field = %why.field, "a pulled record this version cannot read was set aside");
                set_aside(tx, c, codes::UNREADABLE, Some(&why.field), now)?;
                counts.set_aside += 1;
            }
            Err(e) if careful && is_record_problem(&e) => {
                tracing::warn!(entity = %c.entity, error = %e, "a pulled record the store refused was set aside");
                set_aside(tx, c, codes::NOT_APPLIED, None, now)?;
                counts.set_aside += 1;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(counts)
}

/// Whether an error applying one record is that record's (the store refused
/// what it holds), not the store's (which must stop the pull).
pub(crate) fn is_record_problem(e: &Error) -> bool {
    match e {
        Error::Storage(rusqlite::Error::SqliteFailure(f, _)) => matches!(
            f.code,
            ErrorCode::ConstraintViolation
                | ErrorCode::TypeMismatch
                | ErrorCode::TooBig
                | ErrorCode::ParameterOutOfRange
        ),
        Error::Storage(
            rusqlite::Error::ToSqlConversionFailure(_)
            | rusqlite::Error::FromSqlConversionFailure(..)
            | rusqlite::Error::IntegralValueOutOfRange(..)
            | rusqlite::Error::InvalidColumnType(..)
            | rusqlite::Error::Utf8Error(..)
            | rusqlite::Error::QueryReturnedNoRows,
        ) => true,
        Error::Validation(_) | Error::NotFound { .. } | Error::Internal(_) => true,
        _ => false,
    }
}

fn in_savepoint<T>(tx: &Transaction<'_>, f: impl FnOnce() -> Result<T>) -> Result<T> {
    tx.execute_batch("SAVEPOINT pulled_change")?;
    match f() {
        Ok(v) => {
            tx.execute_batch("RELEASE pulled_change")?;
            Ok(v)
        }
        Err(e) => {
            tx.execute_batch("ROLLBACK TO pulled_change; RELEASE pulled_change")?;
            Err(e)
        }
    }
}

fn any_set_aside(tx: &Transaction<'_>) -> Result<bool> {
    Ok(tx
        .prepare_cached("SELECT 1 FROM set_aside LIMIT 1")?
        .query_row([], |_| Ok(()))
        .optional()?
        .is_some())
}

fn set_aside(tx: &Transaction<'_>, c: &Change, code: &str, field: Option<&str>, now: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO set_aside (entity_id, entity, grid_id, version, fields, code, field, at, reported)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, 0)
         ON CONFLICT (entity_id) DO UPDATE SET entity = ?2, grid_id = ?3, version = ?4, fields = ?5, code = ?6,
           field = ?7, at = ?8, reported = 0
         WHERE excluded.version > set_aside.version",
    )?
    .execute(params![
        c.entity_id,
        c.entity,
        c.grid_id,
        c.version,
        serde_json::to_string(&c.fields)?,
        code,
        field,
        now
    ])?;
    Ok(())
}

/// The records set aside, as the server sent them (oldest first).
pub(crate) fn held(tx: &Transaction<'_>) -> Result<Vec<Change>> {
    let mut stmt =
        tx.prepare_cached("SELECT entity_id, entity, grid_id, version, fields FROM set_aside ORDER BY at, entity_id")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, i64>(3)?,
            r.get::<_, String>(4)?,
        ))
    })?;
    let mut out = Vec::new();
    for row in rows {
        let (entity_id, entity, grid_id, version, fields) = row?;
        out.push(Change {
            seq: 0,
            entity,
            entity_id,
            grid_id,
            version,
            deleted: false,
            fields: serde_json::from_str(&fields).unwrap_or_default(),
        });
    }
    Ok(out)
}

/// The problems not yet reported to the server, at most `limit`.
pub(crate) fn unreported(tx: &Transaction<'_>, limit: usize) -> Result<Vec<RecordProblem>> {
    let mut stmt = tx.prepare_cached(
        "SELECT entity, entity_id, version, code, field FROM set_aside WHERE reported = 0 ORDER BY at, entity_id LIMIT ?1",
    )?;
    let rows = stmt.query_map([limit as i64], |r| {
        Ok(RecordProblem {
            entity: r.get(0)?,
            entity_id: r.get(1)?,
            version: r.get(2)?,
            code: r.get(3)?,
            field: r.get(4)?,
        })
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Marks problems as reported (unless the record was set aside again since,
/// at another version).
pub(crate) fn mark_reported(tx: &Transaction<'_>, problems: &[RecordProblem]) -> Result<()> {
    for p in problems {
        tx.prepare_cached("UPDATE set_aside SET reported = 1 WHERE entity_id = ?1 AND version = ?2")?
            .execute(params![p.entity_id, p.version])?;
    }
    Ok(())
}

/// A pulled record this phone set aside.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetAside {
    /// The record's entity, as pulled.
    pub entity: String,
    /// Its id.
    pub entity_id: String,
    /// The version set aside.
    pub version: i64,
    /// `unreadable` or `not_applied`.
    pub code: String,
    /// Where reading failed (field names only), if known.
    pub field: Option<String>,
    /// When it was set aside (device ms).
    pub at_ms: i64,
    /// The server has been told.
    pub reported: bool,
}

impl crate::Store {
    /// The pulled records this phone could not apply and set aside, oldest
    /// first (ids and codes: what they hold stays in the store).
    pub fn set_aside(&self) -> Result<Vec<SetAside>> {
        self.read(|c| {
            let mut stmt = c.prepare(
                "SELECT entity, entity_id, version, code, field, at, reported FROM set_aside ORDER BY at, entity_id",
            )?;
            let rows = stmt.query_map([], |r| {
                Ok(SetAside {
                    entity: r.get(0)?,
                    entity_id: r.get(1)?,
                    version: r.get(2)?,
                    code: r.get(3)?,
                    field: r.get(4)?,
                    at_ms: r.get(5)?,
                    reported: r.get(6)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_store_failing_is_not_a_record_problem() {
        let failure = |code| {
            Error::Storage(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error { code, extended_code: 0 },
                None,
            ))
        };
        assert!(is_record_problem(&failure(ErrorCode::ConstraintViolation)));
        for fatal in [
            ErrorCode::DiskFull,
            ErrorCode::SystemIoFailure,
            ErrorCode::DatabaseCorrupt,
            ErrorCode::DatabaseBusy,
            ErrorCode::ReadOnly,
        ] {
            assert!(!is_record_problem(&failure(fatal)), "{fatal:?}");
        }
        assert!(!is_record_problem(&Error::Io(std::io::Error::other("disk"))));
        assert!(!is_record_problem(&Error::Cancelled));
    }
}
