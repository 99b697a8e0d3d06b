-- Visit coverage (the catalogue's visit rules): the care tags of live
-- residents, and one row per resident a service log served, at the time the
-- visit counts (`fieldgrid_domain::visits::counted_visit_time`: the time the
-- worker gave, at most 3 days before the server first received the log).
-- Kept up to date on write, so coverage reads these rows, not the records.
CREATE TABLE care_residents (
    resident_id TEXT NOT NULL,
    tag         TEXT NOT NULL,
    grid_id     TEXT NOT NULL,
    PRIMARY KEY (resident_id, tag)
) WITHOUT ROWID;
CREATE INDEX care_residents_tag ON care_residents(tag, grid_id);
CREATE TABLE visits (
    log_id      TEXT NOT NULL,
    resident_id TEXT NOT NULL,
    grid_id     TEXT NOT NULL,
    kind        TEXT NOT NULL,
    visited_at  INTEGER NOT NULL,
    PRIMARY KEY (log_id, resident_id)
) WITHOUT ROWID;
CREATE INDEX visits_resident ON visits(resident_id, visited_at);
INSERT OR IGNORE INTO care_residents (resident_id, tag, grid_id)
    SELECT r.id, t.value, r.grid_id FROM records r, json_each(r.fields, '$.care_tags') t
    WHERE r.entity = 'resident' AND r.deleted = 0 AND json_type(r.fields, '$.care_tags') = 'array';
INSERT OR IGNORE INTO visits (log_id, resident_id, grid_id, kind, visited_at)
    SELECT r.id, j.value, r.grid_id, json_extract(r.fields, '$.kind'),
        max(min(json_extract(r.fields, '$.occurred_at_ms'), r.created_at), r.created_at - 259200000)
    FROM records r, json_each(r.fields, '$.resident_ids') j
    WHERE r.entity = 'service_log' AND r.deleted = 0 AND json_type(r.fields, '$.resident_ids') = 'array'
      AND json_type(r.fields, '$.occurred_at_ms') = 'integer' AND json_type(r.fields, '$.kind') = 'text';
