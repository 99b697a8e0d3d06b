-- Visit coverage: as the SQLite engine's step of the same name.
CREATE TABLE care_residents (
    resident_id text NOT NULL,
    tag         text NOT NULL,
    grid_id     text NOT NULL,
    PRIMARY KEY (resident_id, tag)
);
CREATE INDEX care_residents_tag ON care_residents(tag, grid_id);
CREATE TABLE visits (
    log_id      text NOT NULL,
    resident_id text NOT NULL,
    grid_id     text NOT NULL,
    kind        text NOT NULL,
    visited_at  bigint NOT NULL,
    PRIMARY KEY (log_id, resident_id)
);
CREATE INDEX visits_resident ON visits(resident_id, visited_at);
INSERT INTO care_residents (resident_id, tag, grid_id)
    SELECT r.id, t.tag, r.grid_id FROM records r
    CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(r.fields::jsonb -> 'care_tags') = 'array'
        THEN r.fields::jsonb -> 'care_tags' ELSE '[]' END) AS t(tag)
    WHERE r.entity = 'resident' AND NOT r.deleted
    ON CONFLICT DO NOTHING;
INSERT INTO visits (log_id, resident_id, grid_id, kind, visited_at)
    SELECT r.id, j.resident_id, r.grid_id, r.fields::jsonb ->> 'kind',
        greatest(least((r.fields::jsonb ->> 'occurred_at_ms')::bigint, r.created_at), r.created_at - 259200000)
    FROM records r
    CROSS JOIN LATERAL jsonb_array_elements_text(CASE WHEN jsonb_typeof(r.fields::jsonb -> 'resident_ids') = 'array'
        THEN r.fields::jsonb -> 'resident_ids' ELSE '[]' END) AS j(resident_id)
    WHERE r.entity = 'service_log' AND NOT r.deleted
      AND jsonb_typeof(r.fields::jsonb -> 'occurred_at_ms') = 'number'
      AND jsonb_typeof(r.fields::jsonb -> 'kind') = 'string'
    ON CONFLICT DO NOTHING;
