"""Writes frozen snapshots of earlier schema versions, holding data, for the
upgrade tests: core/tests/fixtures/schema/store-v<N>.sql (the phone's store)
and tests/fixtures/schema/server-v<N>.sql (the district server's SQLite).

Each snapshot's schema is the migration SQL *as it was in the commit that
shipped that version* (read with `git show`), not today's list: an edit to a
shipped step, or a step that loses rows, then fails the upgrade tests. The
rows are written here, by hand, the way that version's code wrote them.

Run once per new schema version (append its entry below); commit the output.
    python3 scripts/freeze-schemas.py
"""

import os
import re
import sqlite3
import subprocess

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def show(commit: str, path: str) -> str:
    return subprocess.run(
        ["git", "show", f"{commit}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout


def core_steps(commit: str) -> list[str]:
    src = show(commit, "core/src/db/schema.rs")
    consts = dict(re.findall(r'const (V\d+): &str = r#"(.*?)"#;', src, re.S))
    order = re.search(r"pub const MIGRATIONS: &\[&str\] = &\[(.*?)\];", src, re.S).group(1)
    return [consts[name.strip()] for name in order.split(",") if name.strip()]


def engine_steps(commit: str, engine: str) -> list[str]:
    """An engine's schema steps at `commit`: raw strings in its source
    (before issue 22), or the files of server/migrations/<engine>/ that
    its list includes."""
    src = show(commit, f"server/src/store/{engine}.rs")
    i = src.index("const MIGRATIONS: &[&str] = &[")
    j = src.index("\n];", i)
    files = re.findall(r'include_str!\("\.\./\.\./(migrations/[^"]+)"\)', src[i:j])
    if files:
        return [show(commit, f"server/{f}") for f in files]
    return re.findall(r'r#"(.*?)"#', src[i:j], re.S)


def server_steps(commit: str) -> list[str]:
    return engine_steps(commit, "sqlite")


GRID = "'g-1'"
# Ids as devices make them (UUIDv7).
PLACE, BUILDING, UNIT = (
    "'0190f1d2-8c1a-7b3e-9f00-000000000001'",
    "'0190f1d2-8c1a-7b3e-9f00-000000000002'",
    "'0190f1d2-8c1a-7b3e-9f00-000000000003'",
)
HOUSEHOLD = "'0190f1d2-8c1a-7b3e-9f00-000000000004'"
RESIDENT = "'0190f1d2-8c1a-7b3e-9f00-000000000005'"
INCIDENT = "'0190f1d2-8c1a-7b3e-9f00-000000000006'"
EVENT = "'0190f1d2-8c1a-7b3e-9f00-000000000007'"
LOG = "'0190f1d2-8c1a-7b3e-9f00-000000000008'"
PHOTO = "'0190f1d2-8c1a-7b3e-9f00-000000000009'"
SHA = "'" + "ab" * 32 + "'"
T = 1795665600000  # 2026-11-26 12:00 in China

CORE_V1_ROWS = f"""
INSERT INTO meta (key, value) VALUES ('device_id', '0190f1d2-8c1a-7b3e-9f00-0000000000aa'), ('pull_cursor', '42');
INSERT INTO grids (id, code, name, community, sub_district) VALUES ({GRID}, '370502001001', '一网格', '科教社区', '东城街道');
INSERT INTO places (id, grid_id, kind, parent_id, name, created_at, updated_at, server_version)
  VALUES ({PLACE}, {GRID}, 'compound', NULL, '格林盛景小区', {T}, {T}, 1),
         ({BUILDING}, {GRID}, 'building', {PLACE}, '3号楼', {T}, {T}, 1),
         ({UNIT}, {GRID}, 'unit', {BUILDING}, '2单元', {T}, {T}, NULL);
INSERT INTO households (id, grid_id, unit_id, building_id, room, address, notes, created_at, updated_at)
  VALUES ({HOUSEHOLD}, {GRID}, {UNIT}, {BUILDING}, '301', '', '', {T}, {T});
INSERT INTO residents (rid, id, grid_id, household_id, building_id, name, sex, id_number, id_rev, birth_date,
    phone, phone_rev, residence, care_tags, notes, created_at, updated_at)
  VALUES (1, {RESIDENT}, {GRID}, {HOUSEHOLD}, {BUILDING}, '王秀英', 'female', '370502194503150222',
    '222051305491205073', '1945-03-15', '13812345678', '87654321831', 'registered', '["elderly_living_alone"]',
    '独居', {T}, {T});
INSERT INTO resident_name_grams (gram, rid) VALUES ('王', 1), ('秀', 1), ('英', 1), ('王秀', 1), ('秀英', 1);
INSERT INTO resident_tags (tag, building_id, rid) VALUES ('elderly_living_alone', '', 1),
    ('elderly_living_alone', {BUILDING}, 1);
INSERT INTO incidents (id, grid_id, category, title, description, location, address, occurred_at, reporter,
    involved, status, department, deadline_at, submitted_at, created_at, updated_at, server_version)
  VALUES ({INCIDENT}, {GRID}, 'hornets_nest', '', '三楼窗外马蜂窝',
    '{{"latitude":37.4563,"longitude":118.5031,"accuracy_m":6.5,"crs":"wgs84"}}', '', {T - 60000}, 'acct-1',
    '[]', 'dispatched', 'fire', {T + 86400000}, {T}, {T}, {T}, 2);
INSERT INTO incident_events (id, incident_id, kind, actor, note, department, deadline_at, at, server_at,
    server_version)
  VALUES ({EVENT}, {INCIDENT}, 'reported', 'acct-1', '', NULL, NULL, {T}, {T}, 1);
INSERT INTO service_logs (id, grid_id, kind, residents, notes, occurred_at, created_at, updated_at)
  VALUES ({LOG}, {GRID}, 'visit', '["{RESIDENT.strip("'")}"]', '送药', {T - 3600000}, {T}, {T});
INSERT INTO photos (id, owner_kind, owner_id, sha256, size, mime, taken_at, location, created_at)
  VALUES ({PHOTO}, 'incident', {INCIDENT}, {SHA}, 2052, 'image/jpeg', {T - 60000}, NULL, {T});
INSERT INTO outbox (seq, op_id, entity, entity_id, kind, patch, base_version, created_at)
  VALUES (1, '0190f1d2-8c1a-7b3e-9f00-0000000000b1', 'place', {UNIT}, 'create', NULL, NULL, {T}),
         (2, '0190f1d2-8c1a-7b3e-9f00-0000000000b2', 'household', {HOUSEHOLD}, 'create', NULL, NULL, {T}),
         (3, '0190f1d2-8c1a-7b3e-9f00-0000000000b3', 'resident', {RESIDENT}, 'create', NULL, NULL, {T}),
         (4, '0190f1d2-8c1a-7b3e-9f00-0000000000b4', 'service_log', {LOG}, 'create', NULL, NULL, {T}),
         (5, '0190f1d2-8c1a-7b3e-9f00-0000000000b5', 'photo', {PHOTO}, 'create', NULL, NULL, {T});
"""

CORE_V2_ROWS = CORE_V1_ROWS + f"""
INSERT INTO conflicts (id, entity, entity_id, grid_id, field, winning_value, losing_value, at, seen)
  VALUES ('0190f1d2-8c1a-7b3e-9f00-0000000000c1', 'place', {BUILDING}, {GRID}, 'name', '"3号楼"', '"三号楼"',
    {T}, 0);
"""


# The district server's database as its first version held it: two workers'
# grid, an operator, a department; a grid's records as devices and the
# centre wrote them (JSON fields); a dispatched incident with its timeline and
# a photo; a receipt. Later versions' migrations (from the same commit as the
# snapshot's version) carry these rows forward, as they did in the field.
# Password of both accounts: "correct horse battery" (Argon2id, cheap cost).
HASH = "'$argon2id$v=19$m=64,t=1,p=1$oj2VPeEFWdlP4T6MOBA91g$6fBQteP7w8fcCQ8HUIIZLj5pCWHy8Xn2WcuoONBTePk'"
WORKER, OPERATOR = "'acct-w'", "'acct-o'"


def record(rid: str, entity: str, seq: int, fields: str, version: int = 1) -> str:
    return (
        f"INSERT INTO records (id, entity, grid_id, version, seq, deleted, fields, field_versions, created_at,"
        f" updated_at) VALUES ({rid}, '{entity}', 'grid-a', {version}, {seq}, 0, '{fields}', '{{}}', {T}, {T});\n"
    )


def bare(quoted: str) -> str:
    return quoted.strip("'")


SERVER_V1_ROWS = (
    f"""
UPDATE meta SET value = '7' WHERE key = 'seq';
INSERT INTO grids (id, code, name, community, sub_district)
  VALUES ('grid-a', '370502-grid-a', 'grid-a 网格', '汇泉社区', '黄河路街道');
INSERT INTO accounts (id, username, password_hash, role, created_at)
  VALUES ({WORKER}, 'wa1', {HASH}, 'worker', {T}), ({OPERATOR}, 'centre', {HASH}, 'operator', {T});
INSERT INTO assignments (account_id, grid_id, revoked_at) VALUES ({WORKER}, 'grid-a', NULL);
INSERT INTO departments (id, name) VALUES ('dept-gas', '燃气公司');
INSERT INTO blobs (sha256, size, received, complete, created_at) VALUES ({SHA}, 2052, 2052, 1, {T});
INSERT INTO receipts (op_id, account_id, device_id, receipt, created_at)
  VALUES ('0190f1d2-8c1a-7b3e-9f00-0000000000b3', {WORKER}, 'phone-1',
    '{{"op_id":"0190f1d2-8c1a-7b3e-9f00-0000000000b3","duplicate":false,"outcome":"applied","version":1}}', {T});
"""
    + record(PLACE, "place", 1, '{"grid_id":"grid-a","kind":"compound","parent_id":null,"name":"格林盛景小区"}')
    + record(UNIT, "place", 2, f'{{"grid_id":"grid-a","kind":"unit","parent_id":"{bare(PLACE)}","name":"2单元"}}')
    + record(HOUSEHOLD, "household", 3,
             f'{{"grid_id":"grid-a","unit_id":"{bare(UNIT)}","room":"301","address":"","notes":""}}')
    + record(RESIDENT, "resident", 4,
             f'{{"grid_id":"grid-a","household_id":"{bare(HOUSEHOLD)}","name":"王秀英","sex":"female",'
             '"id_number":"370502194503150222","birth_date":"1945-03-15","phone":"13812345678",'
             '"residence":"registered","care_tags":["elderly_living_alone"],"notes":""}')
    + record(EVENT, "incident_event", 5,
             f'{{"incident_id":"{bare(INCIDENT)}","kind":"reported","note":"","actor":"acct-w",'
             f'"department":null,"deadline_at_ms":null,"at_ms":{T},"server_at_ms":{T}}}')
    + record("'0190f1d2-8c1a-7b3e-9f00-00000000000a'", "incident_event", 6,
             f'{{"incident_id":"{bare(INCIDENT)}","kind":"dispatched","note":"","actor":"acct-o",'
             f'"department":"dept-gas","deadline_at_ms":{T + 86400000},"at_ms":{T + 60000},'
             f'"server_at_ms":{T + 60000}}}')
    + record(INCIDENT, "incident", 7,
             '{"grid_id":"grid-a","category":"gas_no_alarm","title":"","description":"燃气报警器未安装",'
             '"location":{"latitude":37.4563,"longitude":118.5031,"accuracy_m":6.5,"crs":"wgs84"},"address":"",'
             f'"occurred_at_ms":{T - 60000},"involved_residents":["{bare(RESIDENT)}"],"reporter":"acct-w",'
             f'"status":"dispatched","department":"dept-gas","deadline_at_ms":{T + 86400000},'
             f'"reported_at_ms":{T},"finished_at_ms":null}}', version=2)
    + record(PHOTO, "photo", 8,
             f'{{"owner":{{"kind":"incident","id":"{bare(INCIDENT)}"}},"sha256":"{bare(SHA)}","size":2052,'
             f'"mime":"image/jpeg","taken_at_ms":{T - 60000},"location":null}}')
    + "UPDATE meta SET value = '8' WHERE key = 'seq';\n"
)


def freeze(steps: list[str], version: int, rows: str, out: str, rows_at: int | None = None) -> None:
    """`steps[:version]` as that version shipped, with `rows` written once
    the first `rows_at` steps had run (default: all of them)."""
    rows_at = version if rows_at is None else rows_at
    conn = sqlite3.connect(":memory:")
    for step in steps[:rows_at]:
        conn.executescript(step)
    conn.executescript(rows)
    for step in steps[rows_at:version]:
        conn.executescript(step)
    conn.commit()
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"-- Frozen by scripts/freeze-schemas.py: schema version {version}, with data.\n")
        f.write(f"PRAGMA user_version = {version};\n")
        # Tables come in name order, children before parents.
        f.write("PRAGMA foreign_keys = OFF;\n")
        for line in conn.iterdump():
            f.write(line + "\n")
    print(f"{os.path.relpath(out, ROOT)}: version {version}")


def postgres_steps(commit: str) -> list[str]:
    return engine_steps(commit, "postgres")


def pg_rows() -> str:
    """SERVER_V1_ROWS as the PostgreSQL engine's first version held them:
    seq from a sequence, booleans, the centre's incident columns and photo
    references written with the records (no `meta`)."""
    rows = SERVER_V1_ROWS.replace("UPDATE meta SET value = '7' WHERE key = 'seq';", "")
    rows = rows.replace("UPDATE meta SET value = '8' WHERE key = 'seq';", "SELECT setval('records_seq', 8);")
    rows = rows.replace(
        f"INSERT INTO blobs (sha256, size, received, complete, created_at) VALUES ({SHA}, 2052, 2052, 1, {T});",
        f"INSERT INTO blobs (sha256, size, created_at) VALUES ({SHA}, 2052, {T});",
    )
    rows = re.sub(r"(\d+), 0, '\{", r"\1, false, '{", rows)
    rows += (
        f"INSERT INTO photo_refs (photo_id, sha256, grid_id, size, incident_id)"
        f" VALUES ({PHOTO}, {SHA}, 'grid-a', 2052, {INCIDENT});\n"
        f"INSERT INTO incidents (id, grid_id, sub_district, community, category, status, department, deadline_at,"
        f" reported_at, finished_at, complete) VALUES ({INCIDENT}, 'grid-a', '黄河路街道', '汇泉社区',"
        f" 'gas_no_alarm', 'dispatched', 'dept-gas', {T + 86400000}, {T}, NULL, true);\n"
    )
    return rows


def freeze_postgres(commit: str, version: int, out: str) -> None:
    """PostgreSQL cannot be dumped from here: the snapshot is the shipped
    steps' SQL with the rows between the first and the rest, and the version
    row the server reads, for the test to run in a fresh database."""
    steps = postgres_steps(commit)
    with open(out, "w", encoding="utf-8") as f:
        f.write(f"-- Frozen by scripts/freeze-schemas.py: PostgreSQL schema version {version} as {commit}\n")
        f.write("-- shipped it, with a grid's records written after its first step.\n")
        f.write(steps[0] + "\n" + pg_rows() + "\n")
        for step in steps[1:version]:
            f.write(step + "\n")
        f.write(f"CREATE TABLE schema_version (version integer NOT NULL);\nINSERT INTO schema_version VALUES ({version});\n")
    print(f"{os.path.relpath(out, ROOT)}: version {version}")


def main() -> None:
    core = os.path.join(ROOT, "core", "tests", "fixtures", "schema")
    os.makedirs(core, exist_ok=True)
    # The last commit at which each version was the newest.
    freeze(core_steps("27edc83"), 1, CORE_V1_ROWS, os.path.join(core, "store-v1.sql"))
    freeze(core_steps("b0f4186"), 2, CORE_V2_ROWS, os.path.join(core, "store-v2.sql"))
    server = os.path.join(ROOT, "tests", "fixtures", "schema")
    os.makedirs(server, exist_ok=True)
    for version, commit in [(1, "6db560c"), (2, "6db560c"), (3, "a878d48"), (4, "e276a29"), (5, "4881fcf")]:
        out = os.path.join(server, f"server-v{version}.sql")
        freeze(server_steps(commit), version, SERVER_V1_ROWS, out, rows_at=1)
    # Version 5 holding what a worker's push could leave before the server
    # stored only what phones read (issue 21): the reported event without
    # its note, for the repair's upgrade test.
    unreadable = SERVER_V1_ROWS.replace('"kind":"reported","note":"",', '"kind":"reported",')
    assert unreadable != SERVER_V1_ROWS
    freeze(server_steps("4881fcf"), 5, unreadable, os.path.join(server, "server-v5-unreadable.sql"), rows_at=1)
    # PostgreSQL: version 4 as shipped, the last before its statistics step was rewritten.
    freeze_postgres("4881fcf", 4, os.path.join(server, "postgres-v4.sql"))


if __name__ == "__main__":
    main()
