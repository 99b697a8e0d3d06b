-- Records phones could not apply and set aside, as each device reported
-- them (SYNC.md invariant 13): ids and codes, seen by the centre.
CREATE TABLE record_problems (
    entity_id   TEXT NOT NULL,
    version     INTEGER NOT NULL,
    device_id   TEXT NOT NULL,
    account_id  TEXT NOT NULL,
    entity      TEXT NOT NULL,
    grid_id     TEXT NOT NULL,
    code        TEXT NOT NULL,
    field       TEXT,
    reported_at INTEGER NOT NULL,
    PRIMARY KEY (entity_id, version, device_id)
) WITHOUT ROWID;
CREATE INDEX record_problems_reported ON record_problems(reported_at);
