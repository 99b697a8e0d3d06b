-- Records phones set aside: as the SQLite engine's step of the same name.
CREATE TABLE record_problems (
    entity_id   text NOT NULL,
    version     bigint NOT NULL,
    device_id   text NOT NULL,
    account_id  text NOT NULL,
    entity      text NOT NULL,
    grid_id     text NOT NULL,
    code        text NOT NULL,
    field       text,
    reported_at bigint NOT NULL,
    PRIMARY KEY (entity_id, version, device_id)
);
CREATE INDEX record_problems_reported ON record_problems(reported_at);
