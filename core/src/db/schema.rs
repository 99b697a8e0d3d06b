//! The on-device schema, as an append-only list of migrations.
//!
//! Rules: never edit a migration that has shipped; add a new one at the end.
//! Each runs in its own IMMEDIATE transaction together with the
//! `user_version` bump, so a crash leaves the file at the old version or the
//! new one, never between. `tests::every_earlier_version_upgrades_to_fresh`
//! checks that a database at every earlier version ends at exactly the schema
//! of a fresh one.

use rusqlite::Connection;

use crate::error::{Error, Result};
use crate::migrate::{MigrateError, Migrations};

/// The migrations, in order; migration `i` takes the schema from version `i`
/// to `i + 1`.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// Schema version of a fresh store built by this code.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

const V1: &str = r#"
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- The built-in or server-sent incident category catalogue (one row).
CREATE TABLE catalogue (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    version INTEGER NOT NULL,
    body    TEXT NOT NULL
);

-- Grids are reference data assigned by the district; never captured here.
CREATE TABLE grids (
    id           TEXT PRIMARY KEY,
    code         TEXT NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    community    TEXT NOT NULL,
    sub_district TEXT NOT NULL
) WITHOUT ROWID;

-- Compounds (小区), buildings (楼栋) and units (单元).
CREATE TABLE places (
    id             TEXT PRIMARY KEY,
    grid_id        TEXT NOT NULL REFERENCES grids(id),
    kind           TEXT NOT NULL CHECK (kind IN ('compound', 'building', 'unit')),
    parent_id      TEXT REFERENCES places(id) DEFERRABLE INITIALLY DEFERRED,
    name           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    server_version INTEGER,
    deleted_at     INTEGER
);
CREATE INDEX places_parent ON places(parent_id);
CREATE INDEX places_grid ON places(grid_id, kind);

-- Rooms / households (户).
CREATE TABLE households (
    id             TEXT PRIMARY KEY,
    grid_id        TEXT NOT NULL REFERENCES grids(id),
    unit_id        TEXT REFERENCES places(id) DEFERRABLE INITIALLY DEFERRED,
    building_id    TEXT,   -- derived from unit_id, for building filters
    room           TEXT NOT NULL,
    address        TEXT NOT NULL,
    notes          TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    server_version INTEGER,
    deleted_at     INTEGER
);
CREATE INDEX households_unit ON households(unit_id);
CREATE INDEX households_building ON households(building_id);
CREATE INDEX households_grid ON households(grid_id);

-- Residents. `rid` is a local row number used by the search tables; `id` is
-- the UUIDv7 every device and the server know the resident by.
CREATE TABLE residents (
    rid            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    grid_id        TEXT NOT NULL REFERENCES grids(id),
    household_id   TEXT REFERENCES households(id) DEFERRABLE INITIALLY DEFERRED,
    building_id    TEXT,   -- derived from the household (search index rows use it)
    name           TEXT NOT NULL,
    sex            TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    id_number      TEXT,
    id_rev         TEXT,   -- id_number reversed: suffix search as a range scan
    birth_date     TEXT,
    phone          TEXT,
    phone_rev      TEXT,   -- phone digits reversed
    residence      TEXT NOT NULL,
    care_tags      TEXT NOT NULL DEFAULT '[]',
    notes          TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    server_version INTEGER,
    deleted_at     INTEGER
);
CREATE INDEX residents_household ON residents(household_id);
CREATE INDEX residents_grid ON residents(grid_id);
CREATE INDEX residents_name ON residents(name, id);
CREATE INDEX residents_id_rev ON residents(id_rev) WHERE id_rev IS NOT NULL;
CREATE INDEX residents_phone_rev ON residents(phone_rev) WHERE phone_rev IS NOT NULL;

-- Search index: every two-character substring of every live resident's name.
CREATE TABLE resident_name_grams (
    gram TEXT NOT NULL,
    rid  INTEGER NOT NULL,
    PRIMARY KEY (gram, rid)
) WITHOUT ROWID;

-- Care tags of live residents, for "all elderly living alone in building 3".
CREATE TABLE resident_tags (
    tag         TEXT NOT NULL,
    building_id TEXT NOT NULL DEFAULT '',
    rid         INTEGER NOT NULL,
    PRIMARY KEY (tag, building_id, rid)
) WITHOUT ROWID;

CREATE TABLE incidents (
    id             TEXT PRIMARY KEY,
    grid_id        TEXT NOT NULL REFERENCES grids(id),
    category       TEXT NOT NULL,
    title          TEXT NOT NULL DEFAULT '',
    description    TEXT NOT NULL DEFAULT '',
    location       TEXT,    -- JSON Location
    address        TEXT NOT NULL DEFAULT '',
    occurred_at    INTEGER NOT NULL,
    reporter       TEXT,
    involved       TEXT NOT NULL DEFAULT '[]',  -- JSON array of resident ids
    status         TEXT NOT NULL,
    department     TEXT,
    deadline_at    INTEGER,  -- server time
    submitted_at   INTEGER,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    server_version INTEGER,
    deleted_at     INTEGER
);
CREATE INDEX incidents_grid_status ON incidents(grid_id, status, occurred_at);
CREATE INDEX incidents_occurred ON incidents(occurred_at, id);
CREATE INDEX incidents_deadline ON incidents(deadline_at) WHERE deadline_at IS NOT NULL;

-- The timeline of an incident; its status is derived from these.
CREATE TABLE incident_events (
    id             TEXT PRIMARY KEY,
    incident_id    TEXT NOT NULL REFERENCES incidents(id),
    kind           TEXT NOT NULL,
    actor          TEXT,
    note           TEXT NOT NULL DEFAULT '',
    department     TEXT,
    deadline_at    INTEGER,
    at             INTEGER NOT NULL,  -- device clock when recorded here
    server_at      INTEGER,           -- server clock, once known
    server_version INTEGER
);
CREATE INDEX incident_events_incident ON incident_events(incident_id, at);

CREATE TABLE service_logs (
    id             TEXT PRIMARY KEY,
    grid_id        TEXT NOT NULL REFERENCES grids(id),
    kind           TEXT NOT NULL,
    residents      TEXT NOT NULL DEFAULT '[]',  -- JSON array of resident ids
    notes          TEXT NOT NULL DEFAULT '',
    occurred_at    INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    server_version INTEGER,
    deleted_at     INTEGER
);
CREATE INDEX service_logs_grid ON service_logs(grid_id, occurred_at);

-- Photo metadata; the bytes live in the store's photo folder, named by hash.
CREATE TABLE photos (
    id            TEXT PRIMARY KEY,
    owner_kind    TEXT NOT NULL CHECK (owner_kind IN ('incident', 'incident_event', 'service_log')),
    owner_id      TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    mime          TEXT NOT NULL,
    taken_at      INTEGER,
    location      TEXT,
    created_at    INTEGER NOT NULL,
    uploaded_at   INTEGER   -- set when the server has confirmed the hash
);
CREATE INDEX photos_owner ON photos(owner_kind, owner_id);
CREATE INDEX photos_sha256 ON photos(sha256);

-- Operations waiting for the server. A row leaves only when its receipt has
-- been committed (SYNC.md invariant 3).
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY,  -- no AUTOINCREMENT: order only matters among live rows
    op_id        TEXT NOT NULL,  -- UUIDv7; receipts are matched within the batch sent
    entity       TEXT NOT NULL,
    entity_id    TEXT NOT NULL,
    kind         TEXT NOT NULL CHECK (kind IN ('create', 'update', 'delete')),
    patch        TEXT,  -- changed fields (JSON); NULL for a create: the record as sent
    base_version INTEGER,
    created_at   INTEGER NOT NULL,
    state        TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sending', 'rejected')),
    attempts     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT
);
CREATE INDEX outbox_entity ON outbox(entity_id, seq);
"#;

/// Sync state: conflicts learned from the server, grids taken away.
const V2: &str = r#"
-- Concurrent edits of one field, as the server recorded them.
CREATE TABLE conflicts (
    id            TEXT PRIMARY KEY,
    entity        TEXT NOT NULL,
    entity_id     TEXT NOT NULL,
    grid_id       TEXT NOT NULL,
    field         TEXT NOT NULL,
    winning_value TEXT NOT NULL,
    losing_value  TEXT NOT NULL,
    at            INTEGER NOT NULL,
    seen          INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX conflicts_entity ON conflicts(entity_id);

-- A grid no longer assigned: its data leaves once its operations are sent.
ALTER TABLE grids ADD COLUMN revoked INTEGER NOT NULL DEFAULT 0;
"#;

/// Order-free pull (SYNC.md invariant 11): references between records are
/// not foreign keys. A pull applies pages in server order, and the server's
/// order says nothing about parents and children (dispatch rewrites an
/// incident after its "reported" event; an edited household comes after its
/// residents), so a reference may point at a record a later page brings.
/// Capture checks references itself (`capture::places`, `residents`,
/// `incidents`); the grid references stay foreign keys (grids come with the
/// session, before any record). Children are rebuilt before parents, so no
/// table is dropped while another still refers to it.
const V3: &str = r#"
CREATE TABLE incident_events_v3 (
    id             TEXT PRIMARY KEY,
    incident_id    TEXT NOT NULL,
    kind           TEXT NOT NULL,
    actor          TEXT,
    note           TEXT NOT NULL DEFAULT '',
    department     TEXT,
    deadline_at    INTEGER,
    at             INTEGER NOT NULL,  -- device clock when recorded here
    server_at      INTEGER,           -- server clock, once known
    server_version INTEGER
);
INSERT INTO incident_events_v3 SELECT id, incident_id, kind, actor, note, department, deadline_at, at, server_at,
    server_version FROM incident_events;
DROP TABLE incident_events;
ALTER TABLE incident_events_v3 RENAME TO incident_events;
CREATE INDEX incident_events_incident ON incident_events(incident_id, at);

CREATE TABLE residents_v3 (
    rid            INTEGER PRIMARY KEY,
    id             TEXT NOT NULL UNIQUE,
    grid_id        TEXT NOT NULL REFERENCES grids(id),
    household_id   TEXT,
    building_id    TEXT,   -- derived from the household (search index rows use it)
    name           TEXT NOT NULL,
    sex            TEXT NOT NULL CHECK (sex IN ('male', 'female')),
    id_number      TEXT,
    id_rev         TEXT,   -- id_number reversed: suffix search as a range scan
    birth_date     TEXT,
    phone          TEXT,
    phone_rev      TEXT,   -- phone digits reversed
    residence      TEXT NOT NULL,
    care_tags      TEXT NOT NULL DEFAULT '[]',
    notes          TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    server_version INTEGER,
    deleted_at     INTEGER
);
INSERT INTO residents_v3 SELECT rid, id, grid_id, household_id, building_id, name, sex, id_number, id_rev,
    birth_date, phone, phone_rev, residence, care_tags, notes, created_at, updated_at, server_version, deleted_at
    FROM residents;
DROP TABLE residents;
ALTER TABLE residents_v3 RENAME TO residents;
CREATE INDEX residents_household ON residents(household_id);
CREATE INDEX residents_grid ON residents(grid_id);
CREATE INDEX residents_name ON residents(name, id);
CREATE INDEX residents_id_rev ON residents(id_rev) WHERE id_rev IS NOT NULL;
CREATE INDEX residents_phone_rev ON residents(phone_rev) WHERE phone_rev IS NOT NULL;

CREATE TABLE households_v3 (
    id             TEXT PRIMARY KEY,
    grid_id        TEXT NOT NULL REFERENCES grids(id),
    unit_id        TEXT,
    building_id    TEXT,   -- derived from unit_id, for building filters
    room           TEXT NOT NULL,
    address        TEXT NOT NULL,
    notes          TEXT NOT NULL DEFAULT '',
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    server_version INTEGER,
    deleted_at     INTEGER
);
INSERT INTO households_v3 SELECT id, grid_id, unit_id, building_id, room, address, notes, created_at, updated_at,
    server_version, deleted_at FROM households;
DROP TABLE households;
ALTER TABLE households_v3 RENAME TO households;
CREATE INDEX households_unit ON households(unit_id);
CREATE INDEX households_building ON households(building_id);
CREATE INDEX households_grid ON households(grid_id);

CREATE TABLE places_v3 (
    id             TEXT PRIMARY KEY,
    grid_id        TEXT NOT NULL REFERENCES grids(id),
    kind           TEXT NOT NULL CHECK (kind IN ('compound', 'building', 'unit')),
    parent_id      TEXT,
    name           TEXT NOT NULL,
    created_at     INTEGER NOT NULL,
    updated_at     INTEGER NOT NULL,
    server_version INTEGER,
    deleted_at     INTEGER
);
INSERT INTO places_v3 SELECT id, grid_id, kind, parent_id, name, created_at, updated_at, server_version, deleted_at
    FROM places;
DROP TABLE places;
ALTER TABLE places_v3 RENAME TO places;
CREATE INDEX places_parent ON places(parent_id);
CREATE INDEX places_grid ON places(grid_id, kind);
"#;

/// Inspections against the catalogue's checklists (issue 14); photos may
/// belong to one (the owner check is rebuilt to allow it).
const V4: &str = r#"
CREATE TABLE inspections (
    id               TEXT PRIMARY KEY,
    grid_id          TEXT NOT NULL REFERENCES grids(id),
    place_id         TEXT,
    checklist        TEXT NOT NULL,
    answers          TEXT NOT NULL DEFAULT '{}',  -- JSON object: item code -> answer
    item_photos      TEXT NOT NULL DEFAULT '{}',  -- JSON object: item code -> photo ids
    raised_incidents TEXT NOT NULL DEFAULT '[]',  -- JSON array of incident ids
    location         TEXT,
    notes            TEXT NOT NULL DEFAULT '',
    occurred_at      INTEGER NOT NULL,
    created_at       INTEGER NOT NULL,
    updated_at       INTEGER NOT NULL,
    server_version   INTEGER,
    deleted_at       INTEGER
);
CREATE INDEX inspections_grid ON inspections(grid_id, occurred_at);
CREATE TABLE photos_v4 (
    id            TEXT PRIMARY KEY,
    owner_kind    TEXT NOT NULL CHECK (owner_kind IN ('incident', 'incident_event', 'service_log', 'inspection')),
    owner_id      TEXT NOT NULL,
    sha256        TEXT NOT NULL,
    size          INTEGER NOT NULL,
    mime          TEXT NOT NULL,
    taken_at      INTEGER,
    location      TEXT,
    created_at    INTEGER NOT NULL,
    uploaded_at   INTEGER   -- set when the server has confirmed the hash
);
INSERT INTO photos_v4 SELECT id, owner_kind, owner_id, sha256, size, mime, taken_at, location, created_at, uploaded_at
    FROM photos;
DROP TABLE photos;
ALTER TABLE photos_v4 RENAME TO photos;
CREATE INDEX photos_owner ON photos(owner_kind, owner_id);
CREATE INDEX photos_sha256 ON photos(sha256);
"#;

const V5: &str = r#"
-- The district's own fields of residents, households, places and incidents
-- (catalogue field_defs), by record id: a JSON object of field code -> value,
-- kept whole (codes this build does not know included).
CREATE TABLE record_extra (
    id     TEXT PRIMARY KEY,
    fields TEXT NOT NULL CHECK (json_type(fields) = 'object')
) WITHOUT ROWID;
"#;

const V6: &str = r#"
-- Pulled records this phone could not apply (SYNC.md invariant 13): kept as
-- the server sent them, reported to the server once, tried again at each
-- pull, and replaced by a newer version that applies.
CREATE TABLE set_aside (
    entity_id TEXT PRIMARY KEY,
    entity    TEXT NOT NULL,
    grid_id   TEXT NOT NULL,
    version   INTEGER NOT NULL,
    fields    TEXT NOT NULL,
    code      TEXT NOT NULL,
    field     TEXT,
    at        INTEGER NOT NULL,
    reported  INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
"#;

/// Brings `conn` from its `user_version` to the end of `migrations` with the
/// shared runner ([`crate::migrate`]). References between synced records are
/// not foreign keys since version 3, so no foreign-key pass is needed.
pub fn migrate(conn: &mut Connection, migrations: &[&str]) -> Result<()> {
    let runner = Migrations {
        steps: migrations,
        check_foreign_keys: false,
    };
    match runner.run(conn) {
        Ok(_) => Ok(()),
        Err(MigrateError::Newer { found, supported }) => Err(Error::NewerSchema { found, supported }),
        Err(MigrateError::Step { source, .. } | MigrateError::Sqlite(source)) => Err(source.into()),
        Err(e @ MigrateError::BrokenReferences { .. }) => Err(Error::Internal(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schema as SQLite records it, ignoring whitespace differences.
    fn schema_of(conn: &Connection) -> Vec<(String, String, String)> {
        crate::migrate::schema(conn).unwrap()
    }

    fn at_version(n: usize) -> Connection {
        let mut conn = Connection::open_in_memory().unwrap();
        migrate(&mut conn, &MIGRATIONS[..n]).unwrap();
        conn
    }

    #[test]
    fn every_earlier_version_upgrades_to_fresh() {
        let fresh = at_version(MIGRATIONS.len());
        let expected = schema_of(&fresh);
        assert!(expected.iter().any(|(_, name, _)| name == "outbox"));
        for n in 0..MIGRATIONS.len() {
            let mut conn = at_version(n);
            migrate(&mut conn, MIGRATIONS).unwrap();
            assert_eq!(schema_of(&conn), expected, "upgrade from version {n}");
            let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
            assert_eq!(v, LATEST);
        }
    }

    #[test]
    fn a_failing_step_leaves_the_previous_version_intact() {
        let mut conn = Connection::open_in_memory().unwrap();
        let steps = ["CREATE TABLE a (x)", "CREATE TABLE b (x); CREATE TABLE a (y)"];
        assert!(migrate(&mut conn, &steps).is_err());
        let v: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
        assert_eq!(v, 1);
        let b: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_master WHERE name = 'b'", [], |r| r.get(0))
            .unwrap();
        assert_eq!(b, 0, "the half-applied step was rolled back");
    }

    #[test]
    fn newer_databases_are_refused() {
        let mut conn = at_version(MIGRATIONS.len());
        conn.pragma_update(None, "user_version", LATEST + 1).unwrap();
        assert!(matches!(migrate(&mut conn, MIGRATIONS), Err(Error::NewerSchema { .. })));
    }

    #[test]
    fn migrations_are_valid_sql_and_idempotent_to_rerun() {
        let mut conn = at_version(MIGRATIONS.len());
        migrate(&mut conn, MIGRATIONS).unwrap(); // nothing to do, no error
        assert_eq!(schema_of(&conn), schema_of(&at_version(MIGRATIONS.len())));
    }
    #[test]
    fn v3_keeps_every_row_and_frees_references_from_pull_order() {
        let mut conn = at_version(2);
        conn.execute_batch(
            "INSERT INTO grids (id, code, name, community, sub_district) VALUES ('g', '1', 'n', 'c', 's');
             INSERT INTO places VALUES ('c1', 'g', 'compound', NULL, 'x', 1, 1, 3, NULL);
             INSERT INTO places VALUES ('b1', 'g', 'building', 'c1', 'x', 1, 1, NULL, NULL);
             INSERT INTO households VALUES ('h1', 'g', 'b1', 'b1', '301', 'a', 'n', 1, 2, 4, NULL);
             INSERT INTO residents (rid, id, grid_id, household_id, building_id, name, sex, residence, created_at,
               updated_at) VALUES (7, 'r1', 'g', 'h1', 'b1', 'x', 'male', 'registered', 1, 1);
             INSERT INTO incidents (id, grid_id, category, occurred_at, status, created_at, updated_at)
               VALUES ('i1', 'g', 'c', 1, 'reported', 1, 1);
             INSERT INTO incident_events (id, incident_id, kind, at) VALUES ('e1', 'i1', 'reported', 5);",
        )
        .unwrap();
        let rows = |c: &Connection| -> Vec<String> {
            ["places", "households", "residents", "incident_events"]
                .iter()
                .flat_map(|t| {
                    let mut stmt = c.prepare(&format!("SELECT * FROM {t} ORDER BY 1")).unwrap();
                    let n = stmt.column_count();
                    stmt.query_map([], |r| {
                        Ok((0..n)
                            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
                            .collect::<Vec<_>>()
                            .join("|"))
                    })
                    .unwrap()
                    .map(|r| format!("{t}: {}", r.unwrap()))
                    .collect::<Vec<_>>()
                })
                .collect()
        };
        let before = rows(&conn);
        assert_eq!(before.len(), 5);
        conn.pragma_update(None, "foreign_keys", true).unwrap();
        migrate(&mut conn, MIGRATIONS).unwrap();
        assert_eq!(rows(&conn), before, "every row survives the rebuild");
        // A child may now arrive before its parent (a later pull page).
        conn.execute_batch(
            "INSERT INTO incident_events (id, incident_id, kind, at) VALUES ('e2', 'later', 'dispatched', 6);
             INSERT INTO residents (id, grid_id, household_id, name, sex, residence, created_at, updated_at)
               VALUES ('r2', 'g', 'later', 'x', 'male', 'registered', 1, 1);
             INSERT INTO households VALUES ('h2', 'g', 'later', NULL, '1', 'a', '', 1, 1, 1, NULL);
             INSERT INTO places VALUES ('u2', 'g', 'unit', 'later', 'x', 1, 1, 1, NULL);",
        )
        .unwrap();
        // The grid is still a foreign key.
        assert!(
            conn.execute_batch("INSERT INTO places VALUES ('p9', 'nogrid', 'compound', NULL, 'x', 1, 1, 1, NULL)")
                .is_err()
        );
        let fk: Vec<String> = conn
            .prepare("SELECT \"table\" FROM pragma_foreign_key_list('residents')")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(fk, ["grids"]);
    }
}
