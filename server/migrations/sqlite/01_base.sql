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
