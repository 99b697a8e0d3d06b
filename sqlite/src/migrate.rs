//! The one schema migration runner, for the phone's store and the district
//! server's SQLite database: a list of SQL steps, append-only, and
//! `PRAGMA user_version` counting the steps applied.
//!
//! Each step runs in its own IMMEDIATE transaction together with its
//! version bump, so a crash leaves the file at the old version or the new
//! one, never between. A database newer than the list is refused untouched.
//! With `check_foreign_keys`, foreign keys are off while steps run (SQLite's
//! own procedure for rebuilding a table others refer to) and each step must
//! leave none broken before it commits.
//!
//! Why not rusqlite_migration, which does the same: its newest release (2.6)
//! is built for rusqlite 0.40, and one binary can link only one SQLite, while
//! the SQLCipher build needs rusqlite 0.43. Replace this with it once it
//! catches up; the contract is the same (`user_version`, one transaction
//! per step, foreign-key checks).

use rusqlite::{Connection, TransactionBehavior};

/// A schema's migrations.
#[derive(Clone, Copy, Debug)]
pub struct Migrations<'a> {
    /// The SQL of each step, oldest first; never edit a step once shipped.
    pub steps: &'a [&'a str],
    /// Run steps with foreign keys off, and refuse a step that leaves
    /// broken references.
    pub check_foreign_keys: bool,
}

/// Why a database could not be brought up to date. Nothing of the failed
/// step is kept.
#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    /// The database was written by a newer version.
    #[error("the database has schema version {found}; this version knows up to {supported}")]
    Newer {
        /// Its version.
        found: i64,
        /// The last version this build knows.
        supported: i64,
    },
    /// A step's SQL failed.
    #[error("schema step {step} failed: {source}")]
    Step {
        /// The version the step leads to.
        step: i64,
        /// What SQLite said.
        source: rusqlite::Error,
    },
    /// A step left rows referring to rows that are not there.
    #[error("schema step {step} left {count} broken references")]
    BrokenReferences {
        /// The version the step leads to.
        step: i64,
        /// Rows in breach.
        count: i64,
    },
    /// Reading or writing the version, or the transaction itself, failed.
    #[error("migration: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl Migrations<'_> {
    /// The version a fully migrated database has.
    pub fn latest(&self) -> i64 {
        self.steps.len() as i64
    }

    /// Brings `conn` from its `user_version` to [`Migrations::latest`];
    /// returns how many steps ran.
    pub fn run(&self, conn: &mut Connection) -> Result<u32, MigrateError> {
        // The server opens its databases without the core's store: with
        // SQLCipher, this keeps its crypto provider in the binary too.
        #[cfg(feature = "sqlcipher")]
        std::hint::black_box(crate::cipher::linked());
        if self.check_foreign_keys {
            conn.pragma_update(None, "foreign_keys", false)?;
        }
        let ran = self.steps_from_current(conn);
        if self.check_foreign_keys {
            conn.pragma_update(None, "foreign_keys", true)?;
        }
        ran
    }

    fn steps_from_current(&self, conn: &mut Connection) -> Result<u32, MigrateError> {
        let latest = self.latest();
        let mut ran = 0;
        loop {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let version: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
            if version > latest {
                return Err(MigrateError::Newer {
                    found: version,
                    supported: latest,
                });
            }
            // `version` is in 0..latest here, which indexes `steps`.
            let Some(sql) = usize::try_from(version).ok().and_then(|v| self.steps.get(v)) else {
                return Ok(ran);
            };
            let step = version + 1;
            tracing::info!(from = version, to = step, "migrating the database schema");
            tx.execute_batch(sql)
                .map_err(|source| MigrateError::Step { step, source })?;
            if self.check_foreign_keys {
                let count: i64 = tx.query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| r.get(0))?;
                if count > 0 {
                    return Err(MigrateError::BrokenReferences { step, count });
                }
            }
            tx.pragma_update(None, "user_version", step)?;
            tx.commit()?;
            ran += 1;
        }
    }
}

/// The schema as SQLite records it, comments and whitespace aside: (type,
/// name, SQL) of every table, index and trigger, for upgrade tests that
/// compare an upgraded database with a fresh one.
pub fn schema(conn: &Connection) -> rusqlite::Result<Vec<(String, String, String)>> {
    let mut stmt =
        conn.prepare("SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL ORDER BY type, name")?;
    let rows = stmt.query_map([], |r| {
        let sql: String = r.get(2)?;
        let words: Vec<&str> = sql
            .lines()
            .map(|l| l.split("--").next().unwrap_or(""))
            .flat_map(str::split_whitespace)
            .collect();
        Ok((r.get(0)?, r.get(1)?, words.join(" ")))
    })?;
    rows.collect()
}
