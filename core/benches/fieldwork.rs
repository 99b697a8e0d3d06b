//! Field-work benchmarks with same-run baselines (issue 14):
//!   (a) the due list of a grid of 600 residents (`Store::due_visits`: every
//!       visit rule of the built-in catalogue, the residents each covers, their
//!       last visits over the last two periods, the residents loaded) with half
//!       a year of service logs, against one raw query reading the same
//!       residents' rows with their latest visit;
//!   (b) the same with every resident covered by every rule (the worst grid);
//!   (c) recording a 30-item inspection (every answer checked against its
//!       item, the row, its outbox operation), against raw inserts of the
//!       same two rows in one transaction with the same pragmas.
//! Run: `cargo bench -p fieldgrid-core --bench fieldwork`. Keyed stores, as on
//! a phone.

#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::path::Path;
use std::time::{Duration, Instant};

use fieldgrid_core::datagen::{self, Rng};
use fieldgrid_core::*;
use rusqlite::Connection;

const KEY: [u8; 32] = [0x5A; 32];
const RESIDENTS: usize = 600;
const DAY: i64 = 86_400_000;
const RUNS: usize = 60;

fn main() {
    let dir = tempfile::tempdir().unwrap();
    println!("FieldGrid field-work benchmark: a grid of {RESIDENTS} residents, keyed (SQLCipher) store");
    println!("{}", "-".repeat(100));
    due_list(dir.path(), "typical", false);
    due_list(dir.path(), "all covered", true);
    inspection(dir.path(), 400);
}

/// A district checklist of 30 items: 26 yes/no, 2 numbers, a choice, a text.
fn checklist_30() -> Checklist {
    let item = |i: usize, answer| ChecklistItem {
        code: format!("item_{i:02}"),
        label_zh: format!("检查项目{i}"),
        answer,
        required: true,
        options: if answer == AnswerType::Choice {
            vec!["良好".into(), "一般".into(), "差".into()]
        } else {
            vec![]
        },
        min: Some(0.0).filter(|_| answer == AnswerType::Number),
        max: Some(100.0).filter(|_| answer == AnswerType::Number),
        max_len: None,
        fails_on: if answer == AnswerType::YesNo {
            vec![serde_json::json!(false)]
        } else {
            vec![]
        },
        raises: (answer == AnswerType::YesNo).then(|| "other_safety_hazard".to_owned()),
    };
    let mut items: Vec<ChecklistItem> = (0..26).map(|i| item(i, AnswerType::YesNo)).collect();
    items.push(item(26, AnswerType::Number));
    items.push(item(27, AnswerType::Number));
    items.push(item(28, AnswerType::Choice));
    items.push(item(29, AnswerType::Text));
    Checklist {
        code: "building_30".into(),
        name_zh: "楼栋安全综合检查".into(),
        name_en: String::new(),
        items,
    }
}

fn inspection(dir: &Path, n: usize) {
    let path = dir.join("inspection.db");
    let store = Store::open(&path, Some(&StoreKey::from_bytes(&KEY).unwrap())).unwrap();
    let grid = store.put_grid(&datagen::grid(1)).unwrap();
    let mut catalogue = store.catalogue().as_ref().clone();
    catalogue.version = 2;
    catalogue.checklists.push(checklist_30());
    store.replace_catalogue(catalogue).unwrap();
    let raw = keyed_raw(&dir.join("inspection-raw.db"));
    raw.execute_batch(
        "PRAGMA synchronous = FULL;
         CREATE TABLE inspections (id TEXT PRIMARY KEY, grid_id TEXT, place_id TEXT, checklist TEXT, answers TEXT,
           item_photos TEXT, raised_incidents TEXT, location TEXT, notes TEXT, occurred_at INTEGER, created_at INTEGER,
           updated_at INTEGER, server_version INTEGER, deleted_at INTEGER);
         CREATE TABLE outbox (seq INTEGER PRIMARY KEY, op_id TEXT, entity TEXT, entity_id TEXT, kind TEXT, patch TEXT,
           base_version INTEGER, created_at INTEGER);",
    )
    .unwrap();
    let answers: Vec<ItemAnswer> = checklist_30()
        .items
        .iter()
        .map(|i| ItemAnswer {
            item: i.code.clone(),
            answer: match i.answer {
                AnswerType::YesNo => Answer::YesNo(true),
                AnswerType::Number => Answer::Number(12.0),
                AnswerType::Choice => Answer::Text("良好".into()),
                _ => Answer::Text("楼道整洁，无杂物堆放".into()),
            },
        })
        .collect();
    let input = NewInspection {
        grid_id: grid.id.clone(),
        place_id: None,
        checklist: "building_30".into(),
        answers: answers.clone(),
        photos: vec![],
        location: Some(validate::Location {
            latitude: 37.46,
            longitude: 118.49,
            accuracy_m: Some(5.0),
            crs: validate::CoordinateSystem::Wgs84,
        }),
        notes: String::new(),
        occurred_at_ms: None,
    };
    let answers_json: serde_json::Map<String, serde_json::Value> = answers
        .iter()
        .map(|a| (a.item.clone(), serde_json::to_value(&a.answer).unwrap()))
        .collect();
    let answers_json = serde_json::Value::Object(answers_json).to_string();
    let mut ours = Vec::with_capacity(n);
    let mut baseline = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let r = store.record_inspection(&input).unwrap();
        ours.push(t.elapsed());
        assert!(r.raised.is_empty());
        let t = Instant::now();
        let c = raw.unchecked_transaction().unwrap();
        let id = new_id();
        c.execute(
            "INSERT INTO inspections VALUES (?1, ?2, NULL, 'building_30', ?3, '{}', '[]', ?4, '', 0, 0, 0, NULL, NULL)",
            rusqlite::params![id, grid.id, answers_json, r#"{"latitude":37.46,"longitude":118.49}"#],
        )
        .unwrap();
        c.execute(
            "INSERT INTO outbox (op_id, entity, entity_id, kind, created_at) VALUES (?1, 'inspection', ?2, 'create', 0)",
            rusqlite::params![new_id(), id],
        )
        .unwrap();
        c.commit().unwrap();
        baseline.push(t.elapsed());
    }
    row(
        "(c) record a 30-item inspection, p50",
        percentile(&mut ours, 0.5),
        percentile(&mut baseline, 0.5),
        "<= 2 ms",
    );
    row(
        "(c) record a 30-item inspection, p99",
        percentile(&mut ours, 0.99),
        percentile(&mut baseline, 0.99),
        "",
    );
}

fn keyed_raw(path: &Path) -> Connection {
    let c = Connection::open(path).unwrap();
    c.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\"; PRAGMA cipher_hmac_algorithm = HMAC_SHA256; PRAGMA cipher_page_size = 8192;",
        hex::encode(KEY)
    ))
    .unwrap();
    c.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
    c.execute_batch("PRAGMA cache_size = -16384;").unwrap();
    c
}

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    samples[((samples.len() as f64 - 1.0) * p).round() as usize]
}

fn row(what: &str, ours: Duration, baseline: Duration, target: &str) {
    let ms = |d: Duration| format!("{:.3} ms", d.as_secs_f64() * 1e3);
    let ratio = ours.as_secs_f64() / baseline.as_secs_f64();
    println!(
        "{what:<44} {:>12}   baseline {:>12}   ratio {ratio:>6.2}   target {target}",
        ms(ours),
        ms(baseline)
    );
}

/// A grid of 600 residents with half a year of service logs: each covered
/// resident visited or called about twice a month, on random days.
fn due_list(dir: &Path, label: &str, all_covered: bool) {
    let path = dir.join(format!("{}.db", label.replace(' ', "-")));
    let store = Store::open(&path, Some(&StoreKey::from_bytes(&KEY).unwrap())).unwrap();
    let grid = store.put_grid(&datagen::grid(1)).unwrap();
    let mut rng = Rng::new(14);
    let made = datagen::populate_grid(&store, &mut rng, &grid, 10, 0).unwrap();
    let mut rows = datagen::residents(&mut rng, &grid.id, &made.households, RESIDENTS);
    if all_covered {
        for r in &mut rows {
            r.care_tags = vec![CareTag::ElderlyLivingAlone, CareTag::Disabled];
        }
    }
    let ids = store.import_residents(&rows).unwrap().created;
    let covered: Vec<&String> = ids
        .iter()
        .zip(&rows)
        .filter(|(_, r)| !r.care_tags.is_empty())
        .map(|(id, _)| id)
        .collect();
    let now = store.now_ms();
    let mut logs = 0;
    for id in &covered {
        for _ in 0..12 {
            let kind = rng
                .pick(&[
                    ServiceKind::Visit,
                    ServiceKind::PhoneCheckIn,
                    ServiceKind::MedicineDelivery,
                ])
                .clone();
            store
                .create_service_log(&NewServiceLog {
                    grid_id: grid.id.clone(),
                    kind,
                    resident_ids: vec![(*id).clone()],
                    notes: String::new(),
                    occurred_at_ms: Some(now - rng.below(180 * DAY as u64) as i64),
                    photos: vec![],
                })
                .unwrap();
            logs += 1;
        }
    }
    let raw = keyed_raw(&path);
    let baseline_sql = "SELECT r.*, (SELECT max(s.occurred_at) FROM service_logs s, json_each(s.residents) j
                          WHERE s.grid_id = ?1 AND j.value = r.id) AS last_visit
                        FROM residents r WHERE r.grid_id = ?1 AND r.deleted_at IS NULL
                          AND r.rid IN (SELECT rid FROM resident_tags)";
    let mut ours = Vec::with_capacity(RUNS);
    let mut baseline = Vec::with_capacity(RUNS);
    let mut items = 0;
    for _ in 0..RUNS {
        let t = Instant::now();
        items = store.due_visits(&grid.id).unwrap().len();
        ours.push(t.elapsed());
        let t = Instant::now();
        let mut stmt = raw.prepare_cached(baseline_sql).unwrap();
        let n = stmt
            .query_map([&grid.id], |r| r.get::<_, Option<i64>>("last_visit"))
            .unwrap()
            .count();
        assert_eq!(n, covered.len());
        baseline.push(t.elapsed());
    }
    println!(
        "    {label}: {} of {RESIDENTS} residents covered, {logs} service logs, {items} visits on the list",
        covered.len()
    );
    row(
        &format!("(a) due list, {label}, p50"),
        percentile(&mut ours, 0.5),
        percentile(&mut baseline, 0.5),
        "<= 20 ms",
    );
    row(
        &format!("(a) due list, {label}, p95"),
        percentile(&mut ours, 0.95),
        percentile(&mut baseline, 0.95),
        "",
    );
}
