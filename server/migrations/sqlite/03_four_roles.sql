-- Accounts of four roles; departments have accounts; a disabled account
-- keeps its row (and its history) but no session. (Rebuilt for its CHECK:
-- the runner turns foreign keys off around migrations and checks them after.)
CREATE TABLE accounts_v3 (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role          TEXT NOT NULL CHECK (role IN ('worker', 'operator', 'department', 'admin')),
    department_id TEXT REFERENCES departments(id),
    disabled_at   INTEGER,
    created_at    INTEGER NOT NULL
);
INSERT INTO accounts_v3 (id, username, password_hash, role, created_at)
    SELECT id, username, password_hash, role, created_at FROM accounts;
DROP TABLE accounts;
ALTER TABLE accounts_v3 RENAME TO accounts;

-- The devices each account signed in from: last contact (to the minute), a
-- revocation, a remote wipe asked for and confirmed.
CREATE TABLE devices (
    account_id        TEXT NOT NULL REFERENCES accounts(id),
    device_id         TEXT NOT NULL,
    first_seen        INTEGER NOT NULL,
    last_seen         INTEGER NOT NULL,
    revoked_at        INTEGER,
    wipe              TEXT CHECK (wipe IN ('wipe', 'send_then_wipe')),
    wipe_requested_at INTEGER,
    wiped_at          INTEGER,
    PRIMARY KEY (account_id, device_id)
) WITHOUT ROWID;
INSERT OR IGNORE INTO devices (account_id, device_id, first_seen, last_seen)
    SELECT account_id, device_id, min(expires_at), max(expires_at) FROM tokens GROUP BY account_id, device_id;

-- Failed sign-ins per account name and per client address, for growing lockouts.
CREATE TABLE sign_in_failures (
    key          TEXT PRIMARY KEY,
    failures     INTEGER NOT NULL,
    locked_until INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) WITHOUT ROWID;

-- Every operator, department and administrator action: who, when, what, from where.
CREATE TABLE audit (
    id      INTEGER PRIMARY KEY,
    at      INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    role    TEXT NOT NULL,
    action  TEXT NOT NULL,
    target  TEXT,
    detail  TEXT NOT NULL DEFAULT '{}',
    address TEXT
);
CREATE INDEX audit_at ON audit(at);
