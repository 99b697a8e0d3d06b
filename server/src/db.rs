//! The server's SQLite database (WAL) in the data folder, and its schema.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

/// Schema migrations, append-only; `user_version` counts those applied.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('seq', '0');

CREATE TABLE grids (
    id TEXT PRIMARY KEY, code TEXT NOT NULL UNIQUE, name TEXT NOT NULL,
    community TEXT NOT NULL, sub_district TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE accounts (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('worker', 'operator')),
    created_at    INTEGER NOT NULL
);
-- A grid taken away keeps its row with `revoked_at` for a while: the old
-- device may still push what it captured there (it no longer reads it).
CREATE TABLE assignments (
    account_id TEXT NOT NULL REFERENCES accounts(id),
    grid_id    TEXT NOT NULL REFERENCES grids(id),
    revoked_at INTEGER,
    PRIMARY KEY (account_id, grid_id)
) WITHOUT ROWID;
CREATE TABLE departments (id TEXT PRIMARY KEY, name TEXT NOT NULL UNIQUE);

-- Bearer tokens, stored as SHA-256 of the token.
CREATE TABLE tokens (
    hash       TEXT PRIMARY KEY,
    account_id TEXT NOT NULL REFERENCES accounts(id),
    device_id  TEXT NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Every record devices and the centre write, one row each; `seq` is the
-- server sequence of its latest change (the pull cursor orders by it).
CREATE TABLE records (
    id             TEXT PRIMARY KEY,
    entity         TEXT NOT NULL,
    grid_id        TEXT NOT NULL,
    version        INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    deleted        INTEGER NOT NULL DEFAULT 0,
    fields         TEXT NOT NULL,
    field_versions TEXT NOT NULL DEFAULT '{}',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL
);
CREATE INDEX records_grid_seq ON records(grid_id, seq);
CREATE INDEX records_entity ON records(entity, grid_id);

-- The answer to every operation received, for repeats (kept >= 90 days).
CREATE TABLE receipts (
    op_id      TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    device_id  TEXT NOT NULL,
    receipt    TEXT NOT NULL,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX receipts_created ON receipts(created_at);

-- Photo blobs by SHA-256; bytes in <data>/photos/.
CREATE TABLE blobs (
    sha256     TEXT PRIMARY KEY,
    size       INTEGER NOT NULL,
    received   INTEGER NOT NULL DEFAULT 0,
    complete   INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
"#,
    r#"
-- Photos belong to records (trust boundary): which grids' photo records name
-- a hash, and the size they give. Uploads are accepted only for a photo of a
-- grid the uploader may write, and only at that size.
CREATE TABLE photo_refs (
    sha256  TEXT NOT NULL,
    grid_id TEXT NOT NULL,
    size    INTEGER NOT NULL,
    PRIMARY KEY (sha256, grid_id, size)
) WITHOUT ROWID;
INSERT OR IGNORE INTO photo_refs (sha256, grid_id, size)
    SELECT json_extract(fields, '$.sha256'), grid_id, json_extract(fields, '$.size') FROM records
    WHERE entity = 'photo' AND json_type(fields, '$.sha256') = 'text' AND json_type(fields, '$.size') = 'integer';

-- One partial upload per photo and uploader (bytes in
-- <data>/photos/<sha256>.<account>.part): one account's bad bytes never reset
-- another's upload. Rows not touched for a while expire with their file.
CREATE TABLE uploads (
    sha256     TEXT NOT NULL,
    account_id TEXT NOT NULL,
    size       INTEGER NOT NULL,
    received   INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (sha256, account_id)
) WITHOUT ROWID;
CREATE INDEX uploads_account ON uploads(account_id);
CREATE INDEX uploads_updated ON uploads(updated_at);

-- `blobs` now lists complete photos only; partial uploads restart.
DELETE FROM blobs WHERE complete = 0;
"#,
];

/// Opens (creating if needed) the database in `dir` and brings its schema up to date.
pub fn open(dir: &Path) -> rusqlite::Result<Connection> {
    std::fs::create_dir_all(dir).map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))?;
    let mut conn = Connection::open(dir.join("server.db"))?;
    let _: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.pragma_update(None, "cache_size", -65536)?;
    conn.busy_timeout(std::time::Duration::from_secs(10))?;
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let v: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if v > MIGRATIONS.len() as i64 {
            return Err(rusqlite::Error::ToSqlConversionFailure(
                format!(
                    "the database has schema version {v}; this server knows up to {}: use a newer server",
                    MIGRATIONS.len()
                )
                .into(),
            ));
        }
        let Some(step) = MIGRATIONS.get(v as usize) else {
            break;
        };
        tx.execute_batch(step)?;
        tx.pragma_update(None, "user_version", v + 1)?;
        tx.commit()?;
    }
    Ok(conn)
}

/// The next server sequence number (inside the caller's transaction).
pub fn next_seq(conn: &Connection) -> rusqlite::Result<i64> {
    conn.prepare_cached(
        "UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'seq' RETURNING CAST(value AS INTEGER)",
    )?
    .query_row([], |r| r.get(0))
}
