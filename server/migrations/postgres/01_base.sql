CREATE TABLE grids (
    id text PRIMARY KEY, code text NOT NULL UNIQUE, name text NOT NULL,
    community text NOT NULL, sub_district text NOT NULL
);
CREATE TABLE accounts (
    id            text PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('worker', 'operator')),
    created_at    bigint NOT NULL
);
CREATE TABLE assignments (
    account_id text NOT NULL REFERENCES accounts(id),
    grid_id    text NOT NULL REFERENCES grids(id),
    revoked_at bigint,
    PRIMARY KEY (account_id, grid_id)
);
CREATE TABLE departments (id text PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE tokens (
    hash       text PRIMARY KEY,
    account_id text NOT NULL REFERENCES accounts(id),
    device_id  text NOT NULL,
    expires_at bigint NOT NULL
);
CREATE INDEX tokens_expires ON tokens(expires_at);

-- `seq` is stamped in commit order (see the module's comment); NULL only
-- inside the transaction that writes the row.
CREATE SEQUENCE records_seq;
CREATE TABLE records (
    id             text PRIMARY KEY,
    entity         text NOT NULL,
    grid_id        text NOT NULL,
    version        bigint NOT NULL,
    seq            bigint,
    deleted        boolean NOT NULL DEFAULT false,
    fields         text NOT NULL,
    field_versions text NOT NULL DEFAULT '{}',
    created_at     bigint NOT NULL,
    updated_at     bigint NOT NULL
);
CREATE INDEX records_grid_seq ON records(grid_id, seq);
CREATE INDEX records_entity ON records(entity, grid_id);

CREATE TABLE receipts (
    op_id      text PRIMARY KEY,
    account_id text NOT NULL,
    device_id  text NOT NULL,
    receipt    text NOT NULL,
    created_at bigint NOT NULL
);
CREATE INDEX receipts_created ON receipts(created_at);

CREATE TABLE blobs (sha256 text PRIMARY KEY, size bigint NOT NULL, created_at bigint NOT NULL);
CREATE TABLE photo_refs (
    photo_id    text PRIMARY KEY,
    sha256      text NOT NULL,
    grid_id     text NOT NULL,
    size        bigint NOT NULL,
    incident_id text
);
CREATE INDEX photo_refs_sha ON photo_refs(sha256, grid_id);
CREATE INDEX photo_refs_incident ON photo_refs(incident_id);
CREATE TABLE uploads (
    sha256     text NOT NULL,
    account_id text NOT NULL,
    size       bigint NOT NULL,
    received   bigint NOT NULL,
    updated_at bigint NOT NULL,
    PRIMARY KEY (sha256, account_id)
);
CREATE INDEX uploads_account ON uploads(account_id);
CREATE INDEX uploads_updated ON uploads(updated_at);

CREATE TABLE incidents (
    id           text PRIMARY KEY,
    grid_id      text NOT NULL,
    sub_district text NOT NULL,
    community    text NOT NULL,
    category     text NOT NULL,
    status       text NOT NULL,
    department   text,
    deadline_at  bigint,
    reported_at  bigint NOT NULL,
    finished_at  bigint,
    complete     boolean NOT NULL DEFAULT true
);
CREATE INDEX incidents_reported ON incidents(reported_at, id);
CREATE INDEX incidents_deadline ON incidents(deadline_at, id) WHERE deadline_at IS NOT NULL;
CREATE INDEX incidents_grid ON incidents(grid_id, reported_at);
CREATE INDEX incidents_status ON incidents(status, reported_at);
CREATE INDEX incidents_sub_district ON incidents(sub_district, reported_at);
CREATE INDEX incidents_community ON incidents(community, reported_at);
CREATE INDEX incidents_category ON incidents(category, reported_at);
CREATE INDEX incidents_department ON incidents(department, reported_at);
CREATE INDEX incidents_stats ON incidents(grid_id, status, deadline_at, finished_at);
