//! Store benchmarks with same-run baselines (issue "Core"):
//!   (a) report one incident with its outbox operations, p50/p99, against raw
//!       rusqlite inserts of the same rows with the same pragmas;
//!   (b) bulk import of 100,000 residents (validation, search index, outbox)
//!       against a raw rusqlite bulk insert of the same resident rows;
//!   (c) search over 100,000 residents, p95, against a plain LIKE scan;
//!   (d) opening a 100,000-resident store, against a raw keyed open.
//! Run: `cargo bench -p fieldgrid-core --bench store` (`-- --quick` for a
//! 10,000-resident smoke run, `-- --only import` to stop after (b), e.g. under
//! `perf record`). Every store is encrypted, as on a phone.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use fieldgrid_core::datagen::{self, Rng};
use fieldgrid_core::*;
use rusqlite::{Connection, params};

const KEY: [u8; 32] = [0x5A; 32];

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    // `--only import` stops after the import (for profiling it alone)
    let only_import = args.windows(2).any(|w| w[0] == "--only" && w[1] == "import");
    let residents = if quick { 10_000 } else { 100_000 };
    let dir = tempfile::tempdir().unwrap();
    println!("FieldGrid store benchmark: {residents} residents, keyed (SQLCipher) stores, synchronous=FULL");
    println!("{}", "-".repeat(100));
    if !only_import {
        capture(dir.path(), if quick { 100 } else { 400 });
    }
    let (store_path, sample) = bulk_import(dir.path(), residents);
    if only_import {
        return;
    }
    search(&store_path, &sample, if quick { 50 } else { 200 });
    open_store(&store_path, 20);
}

fn key() -> StoreKey {
    StoreKey::from_bytes(&KEY).unwrap()
}

fn keyed_raw(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\"; PRAGMA cipher_hmac_algorithm = HMAC_SHA256; PRAGMA cipher_page_size = 8192;",
        hex::encode(KEY)
    ))
    .unwrap();
    c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
    c.execute_batch("PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; PRAGMA cache_size = -16384;")
        .unwrap();
    c
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let i = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[i]
}

fn ms(d: Duration) -> String {
    format!("{:.3} ms", d.as_secs_f64() * 1e3)
}

fn row(what: &str, ours: String, baseline: String, ratio: f64, target: &str) {
    println!("{what:<44} {ours:>14}   baseline {baseline:>14}   ratio {ratio:>5.2}   target {target}");
}

fn new_store(path: &Path) -> (Store, Grid) {
    let store = Store::open(path, Some(&key())).unwrap();
    let grid = store.put_grid(&datagen::grid(1)).unwrap();
    (store, grid)
}

fn incident(grid: &Grid, rng: &mut Rng) -> NewIncident {
    NewIncident {
        extra: Vec::new(),
        grid_id: grid.id.clone(),
        category: "resident_request".into(),
        title: String::new(),
        description: format!(
            "居民反映楼道声控灯损坏，夜间上下楼不便，请物业维修（{}）",
            rng.below(1000)
        ),
        location: Some(validate::Location {
            latitude: 37.45 + rng.below(1000) as f64 / 1e5,
            longitude: 118.49 + rng.below(1000) as f64 / 1e5,
            accuracy_m: Some(8.0),
            crs: validate::CoordinateSystem::Wgs84,
        }),
        address: "科教小区5号楼1单元402".into(),
        occurred_at_ms: None,
        involved_residents: vec![],
    }
}

/// (a) one incident reported in one call, against the same rows inserted raw.
fn capture(dir: &Path, n: usize) {
    let (store, grid) = new_store(&dir.join("capture.db"));
    let raw = keyed_raw(&dir.join("capture-raw.db"));
    raw.execute_batch(
        "CREATE TABLE incidents (id TEXT PRIMARY KEY, grid_id TEXT, category TEXT, title TEXT, description TEXT,
           location TEXT, address TEXT, occurred_at INTEGER, involved TEXT, status TEXT, created_at INTEGER,
           updated_at INTEGER);
         CREATE TABLE incident_events (id TEXT PRIMARY KEY, incident_id TEXT, kind TEXT, note TEXT, at INTEGER);
         CREATE TABLE outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT, op_id TEXT UNIQUE, entity TEXT, entity_id TEXT,
           kind TEXT, patch TEXT, created_at INTEGER);",
    )
    .unwrap();
    let mut rng = Rng::new(1);
    let (mut ours, mut base) = (Vec::with_capacity(n), Vec::with_capacity(n));
    let mut heard = Vec::with_capacity(n);
    struct Listener;
    impl ChangeListener for Listener {
        fn changed(&self, change: &DataChange) {
            std::hint::black_box(change);
        }
    }
    let listener: std::sync::Arc<dyn ChangeListener> = std::sync::Arc::new(Listener);
    // Interleaved, so that both see the same machine noise. No photos: their
    // file copy and fsync are the same work either way.
    for _ in 0..n {
        let input = incident(&grid, &mut rng);
        let t = Instant::now();
        store.report_incident(&input, &[]).unwrap();
        ours.push(t.elapsed());

        // The same capture with a screen following the data.
        let input2 = incident(&grid, &mut rng);
        store.set_change_listener(Some(listener.clone()));
        let t = Instant::now();
        store.report_incident(&input2, &[]).unwrap();
        heard.push(t.elapsed());
        store.set_change_listener(None);

        let id = new_id();
        let patch = serde_json::json!({"grid_id": input.grid_id, "category": input.category,
            "description": input.description, "location": input.location, "address": input.address})
        .to_string();
        let t = Instant::now();
        let c = raw.unchecked_transaction().unwrap();
        c.execute(
            "INSERT INTO incidents VALUES (?1, ?2, ?3, '', ?4, ?5, ?6, 0, '[]', 'reported', 0, 0)",
            params![
                id,
                input.grid_id,
                input.category,
                input.description,
                serde_json::to_string(&input.location).unwrap(),
                input.address
            ],
        )
        .unwrap();
        c.execute("INSERT INTO outbox (op_id, entity, entity_id, kind, patch, created_at) VALUES (?1, 'incident', ?2, 'create', ?3, 0)", params![new_id(), id, patch]).unwrap();
        let ev = new_id();
        c.execute(
            "INSERT INTO incident_events VALUES (?1, ?2, 'reported', '', 0)",
            params![ev, id],
        )
        .unwrap();
        c.execute("INSERT INTO outbox (op_id, entity, entity_id, kind, patch, created_at) VALUES (?1, 'incident_event', ?2, 'create', '{}', 0)", params![new_id(), ev]).unwrap();
        c.commit().unwrap();
        base.push(t.elapsed());
    }
    let (p50, p99) = (percentile(&mut ours, 0.5), percentile(&mut ours, 0.99));
    let (b50, b99) = (percentile(&mut base, 0.5), percentile(&mut base, 0.99));
    row(
        "(a) report incident + outbox, p50",
        ms(p50),
        ms(b50),
        p50.as_secs_f64() / b50.as_secs_f64(),
        "<= 1.5x raw",
    );
    row(
        "(a) report incident + outbox, p99",
        ms(p99),
        ms(b99),
        p99.as_secs_f64() / b99.as_secs_f64(),
        "",
    );
    let h50 = percentile(&mut heard, 0.5);
    row(
        "(a) same, with a change listener, p50",
        ms(h50),
        ms(p50),
        h50.as_secs_f64() / p50.as_secs_f64(),
        "within noise of no listener",
    );
}

/// (b) bulk import; returns the store and a sample of residents to search for.
fn bulk_import(dir: &Path, n: usize) -> (std::path::PathBuf, Vec<NewResident>) {
    let path = dir.join("district.db");
    let (store, grid) = new_store(&path);
    let mut rng = Rng::new(2);
    // places and households through the real API
    let compound = store
        .create_place(&NewPlace {
            extra: Vec::new(),
            grid_id: grid.id.clone(),
            kind: PlaceKind::Compound,
            parent_id: None,
            name: "汇泉社区格林盛景小区".into(),
        })
        .unwrap();
    let mut households = Vec::new();
    let buildings = n / 600 + 1;
    for b in 1..=buildings {
        let building = store
            .create_place(&NewPlace {
                extra: Vec::new(),
                grid_id: grid.id.clone(),
                kind: PlaceKind::Building,
                parent_id: Some(compound.id.clone()),
                name: format!("{b}号楼"),
            })
            .unwrap();
        for u in 1..=4 {
            let unit = store
                .create_place(&NewPlace {
                    extra: Vec::new(),
                    grid_id: grid.id.clone(),
                    kind: PlaceKind::Unit,
                    parent_id: Some(building.id.clone()),
                    name: format!("{u}单元"),
                })
                .unwrap();
            for floor in 1..=18 {
                for room in 1..=3 {
                    households.push(NewHousehold {
                        extra: Vec::new(),
                        grid_id: grid.id.clone(),
                        unit_id: Some(unit.id.clone()),
                        room: format!("{floor}{room:02}"),
                        address: None,
                        notes: String::new(),
                    });
                }
            }
        }
    }
    let t = Instant::now();
    let household_ids = store.import_households(&households).unwrap().created;
    let h_time = t.elapsed();
    let rows = datagen::residents(&mut rng, &grid.id, &household_ids, n);

    // The baseline starts from a copy of this store: same schema, grid and
    // households, so that the foreign keys are checked on both sides.
    drop(store);
    let raw_path = dir.join("district-raw.db");
    std::fs::copy(&path, &raw_path).unwrap();
    let store = Store::open(&path, Some(&key())).unwrap();

    let t = Instant::now();
    let report = store.import_residents(&rows).unwrap();
    let ours = t.elapsed();
    assert_eq!(report.created.len(), n, "{:?}", report.rejected.first());

    // Baseline: the same resident rows into the same table and indexes, raw.
    let mut raw = keyed_raw(&raw_path);
    let t = Instant::now();
    for chunk in rows.chunks(20_000) {
        // the batch size of Store::import_residents
        let tx = raw.transaction().unwrap();
        {
            // The row exactly as the store keeps it, reversed search columns included.
            let mut stmt = tx
                .prepare(
                    "INSERT INTO residents (id, grid_id, household_id, building_id, name, sex, id_number, id_rev,
                       birth_date, phone, phone_rev, residence, care_tags, notes, created_at, updated_at)
                     VALUES (?1, ?2, ?3, (SELECT building_id FROM households WHERE id = ?3), ?4, ?5, ?6, ?7, ?8, ?9,
                       ?10, ?11, ?12, ?13, 0, 0)",
                )
                .unwrap();
            for r in chunk {
                let id = r.id_number.clone().unwrap_or_default();
                let phone: String = r
                    .phone
                    .clone()
                    .unwrap_or_default()
                    .chars()
                    .filter(char::is_ascii_digit)
                    .collect();
                stmt.execute(params![
                    new_id(),
                    r.grid_id,
                    r.household_id,
                    r.name,
                    r.sex.as_str(),
                    id,
                    id.chars().rev().collect::<String>(),
                    format!("{}-{}-{}", &id[6..10], &id[10..12], &id[12..14]),
                    r.phone,
                    phone.chars().rev().collect::<String>(),
                    r.residence.as_str(),
                    serde_json::to_string(&r.care_tags).unwrap(),
                    r.notes
                ])
                .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let base = t.elapsed();
    let rate = n as f64 / ours.as_secs_f64();
    let base_rate = n as f64 / base.as_secs_f64();
    println!(
        "    households imported first: {} in {:.2} s ({:.0}/s)",
        household_ids.len(),
        h_time.as_secs_f64(),
        household_ids.len() as f64 / h_time.as_secs_f64()
    );
    row(
        &format!("(b) import {n} residents, residents/s"),
        format!("{rate:.0}/s"),
        format!("{base_rate:.0}/s"),
        rate / base_rate,
        ">= 50,000/s and >= 0.3x raw",
    );
    let counts = store.outbox_counts().unwrap();
    println!("    outbox after import: {} pending operations", counts.pending);
    let sample: Vec<NewResident> = rows.iter().step_by(n / 500).cloned().collect();
    (path, sample)
}

/// (c) the searches a worker types, p95 of the first page (50 results).
fn search(path: &Path, sample: &[NewResident], n: usize) {
    let store = Store::open(path, Some(&key())).unwrap();
    let raw = keyed_raw(path);
    let buildings = store
        .places(&datagen::grid(1).id, Some(PlaceKind::Building), None)
        .unwrap();
    let two: Vec<String> = sample
        .iter()
        .filter(|r| r.name.chars().count() == 2)
        .map(|r| r.name.clone())
        .collect();
    let three: Vec<String> = sample
        .iter()
        .filter(|r| r.name.chars().count() == 3)
        .map(|r| r.name.clone())
        .collect();
    let page = PageRequest { limit: 50, after: None };
    let run = |label: &str, make: &dyn Fn(usize) -> (ResidentQuery, String)| {
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        let mut hits = 0;
        for i in 0..n {
            let (q, like) = make(i);
            let t = Instant::now();
            hits += store.search_residents(&q, &page).unwrap().items.len();
            ours.push(t.elapsed());
            let t = Instant::now();
            let mut stmt = raw
                .prepare_cached(&format!(
                    "SELECT * FROM residents WHERE deleted_at IS NULL AND {like} ORDER BY name, id LIMIT 50"
                ))
                .unwrap();
            let c = stmt.query_map([], |_| Ok(())).unwrap().count();
            std::hint::black_box(c);
            base.push(t.elapsed());
        }
        let (p95, b95) = (percentile(&mut ours, 0.95), percentile(&mut base, 0.95));
        row(
            &format!("(c) {label}, p95"),
            ms(p95),
            ms(b95),
            p95.as_secs_f64() / b95.as_secs_f64(),
            "<= 10 ms",
        );
        println!(
            "    {} queries, {:.1} results on the first page on average",
            n,
            hits as f64 / n as f64
        );
    };
    run("name, 2 characters", &|i| {
        let name = &two[i % two.len()];
        (
            ResidentQuery {
                name: Some(name.clone()),
                ..Default::default()
            },
            format!("name LIKE '%{name}%'"),
        )
    });
    run("name, 3 characters", &|i| {
        let name = &three[i % three.len()];
        (
            ResidentQuery {
                name: Some(name.clone()),
                ..Default::default()
            },
            format!("name LIKE '%{name}%'"),
        )
    });
    run("ID number, last 6", &|i| {
        let id = sample[i % sample.len()].id_number.clone().unwrap();
        let suffix = id[12..].to_owned();
        (
            ResidentQuery {
                id_number: Some(suffix.clone()),
                ..Default::default()
            },
            format!("id_number LIKE '%{suffix}'"),
        )
    });
    run("care tag in one building", &|i| {
        let b = &buildings[i % buildings.len()].id;
        (
            ResidentQuery {
                care_tag: Some(CareTag::ElderlyLivingAlone),
                building_id: Some(b.clone()),
                ..Default::default()
            },
            format!(
                "household_id IN (SELECT id FROM households WHERE building_id = '{b}') AND care_tags LIKE '%elderly_living_alone%'"
            ),
        )
    });
}

/// (d) opening the 100,000-resident store.
fn open_store(path: &Path, n: usize) {
    let (mut ours, mut base) = (Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let s = Store::open(path, Some(&key())).unwrap();
        ours.push(t.elapsed());
        drop(s);
        let t = Instant::now();
        let c = keyed_raw(path);
        c.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .unwrap();
        base.push(t.elapsed());
        drop(c);
    }
    let (p50, b50) = (percentile(&mut ours, 0.5), percentile(&mut base, 0.5));
    let (max, bmax) = (percentile(&mut ours, 1.0), percentile(&mut base, 1.0));
    row(
        "(d) open the store, p50",
        ms(p50),
        ms(b50),
        p50.as_secs_f64() / b50.as_secs_f64(),
        "<= 50 ms",
    );
    row(
        "(d) open the store, max",
        ms(max),
        ms(bmax),
        max.as_secs_f64() / bmax.as_secs_f64(),
        "",
    );
}
