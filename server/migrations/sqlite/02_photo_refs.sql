-- Photos belong to records: one row per photo record with its hash, grid,
-- size and the incident it documents. Uploads are accepted only for a photo
-- of a grid the uploader may write, at that size; an incident is complete
-- once every photo of it is here.
CREATE TABLE photo_refs (
    photo_id    TEXT PRIMARY KEY,
    sha256      TEXT NOT NULL,
    grid_id     TEXT NOT NULL,
    size        INTEGER NOT NULL,
    incident_id TEXT
) WITHOUT ROWID;
INSERT OR IGNORE INTO photo_refs (photo_id, sha256, grid_id, size, incident_id)
    SELECT r.id, json_extract(r.fields, '$.sha256'), r.grid_id, json_extract(r.fields, '$.size'),
        CASE json_extract(r.fields, '$.owner.kind')
            WHEN 'incident' THEN json_extract(r.fields, '$.owner.id')
            WHEN 'incident_event' THEN (SELECT json_extract(e.fields, '$.incident_id') FROM records e
                                        WHERE e.id = json_extract(r.fields, '$.owner.id'))
        END
    FROM records r
    WHERE r.entity = 'photo' AND json_type(r.fields, '$.sha256') = 'text' AND json_type(r.fields, '$.size') = 'integer';
CREATE INDEX photo_refs_sha ON photo_refs(sha256, grid_id);
CREATE INDEX photo_refs_incident ON photo_refs(incident_id);

-- One partial upload per photo and uploader (bytes in
-- <data>/photos/partial/<sha256>.<account>.part): one account's bad bytes
-- never reset another's upload. Rows not touched for a while expire.
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

-- `blobs` lists complete photos only; partial uploads restart.
DELETE FROM blobs WHERE complete = 0;

-- The centre's columns of every incident, kept up to date on write, so its
-- lists and statistics are indexed queries; `complete` is stored when
-- photos arrive.
CREATE TABLE incidents (
    id           TEXT PRIMARY KEY,
    grid_id      TEXT NOT NULL,
    sub_district TEXT NOT NULL,
    community    TEXT NOT NULL,
    category     TEXT NOT NULL,
    status       TEXT NOT NULL,
    department   TEXT,
    deadline_at  INTEGER,
    reported_at  INTEGER NOT NULL,
    finished_at  INTEGER,
    complete     INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;
INSERT INTO incidents
    SELECT r.id, r.grid_id, coalesce(g.sub_district, ''), coalesce(g.community, ''),
        coalesce(json_extract(r.fields, '$.category'), ''), coalesce(json_extract(r.fields, '$.status'), 'draft'),
        json_extract(r.fields, '$.department'), json_extract(r.fields, '$.deadline_at_ms'),
        coalesce(json_extract(r.fields, '$.reported_at_ms'), 0), json_extract(r.fields, '$.finished_at_ms'),
        NOT EXISTS (SELECT 1 FROM photo_refs p WHERE p.incident_id = r.id
                    AND NOT EXISTS (SELECT 1 FROM blobs b WHERE b.sha256 = p.sha256))
    FROM records r LEFT JOIN grids g ON g.id = r.grid_id
    WHERE r.entity = 'incident' AND r.deleted = 0;
CREATE INDEX incidents_reported ON incidents(reported_at, id);
CREATE INDEX incidents_deadline ON incidents(deadline_at, id) WHERE deadline_at IS NOT NULL;
CREATE INDEX incidents_grid ON incidents(grid_id, reported_at);
CREATE INDEX incidents_status ON incidents(status, reported_at);
CREATE INDEX incidents_sub_district ON incidents(sub_district, reported_at);
CREATE INDEX incidents_community ON incidents(community, reported_at);
CREATE INDEX incidents_category ON incidents(category, reported_at);
CREATE INDEX incidents_department ON incidents(department, reported_at);
-- What the statistics read, without touching the table.
CREATE INDEX incidents_stats ON incidents(grid_id, status, deadline_at, finished_at);
