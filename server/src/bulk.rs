//! Builds a whole district for tests, demos and measurements: grids, one
//! worker a grid, the centre, departments, residents, a year of visits to
//! the residents the visit rules cover, and two years of incidents with
//! their timelines (reported, dispatched with a department and
//! a deadline, resolved on time or late, closed; a few still open), all
//! deterministic for a seed. The reference district is 973 grids, about
//! 570,000 residents and 3 million incidents.
//!
//! Nothing skips the protocol's rules: every resident and incident is
//! checked by `fieldgrid_domain::rules::check` (what a device may send), and
//! every timeline step is applied with `decide::apply_event` (the transition
//! table both sides use), as a push and the centre's actions would. Only the
//! HTTP round trips are skipped; records are written a grid at a time, in
//! large transactions.

use std::time::Instant;

use argon2::Argon2;
use fieldgrid_domain::catalogue::{Catalogue, CategoryGroup};
use fieldgrid_domain::datagen::{self, Rng};
use fieldgrid_domain::model::EventKind;
use fieldgrid_domain::rules;
use fieldgrid_protocol::{Entity, GridInfo, Role};
use serde_json::{Map, Value, json};

use crate::admin::Admin;
use crate::decide;
use crate::records::Record;
use crate::store::Store;

/// What to build.
#[derive(Clone, Debug)]
pub struct DistrictPlan {
    /// Grids (the reference district: 973).
    pub grids: usize,
    /// Residents in all (about 570,000).
    pub residents: usize,
    /// Incidents in all (about 3,000,000).
    pub incidents: usize,
    /// Seed of the generator.
    pub seed: u64,
    /// "Now": incidents are spread over the two years before it.
    pub now_ms: i64,
}

/// What was built.
#[derive(Clone, Debug, Default)]
pub struct DistrictReport {
    /// Grids.
    pub grids: usize,
    /// Residents.
    pub residents: usize,
    /// Incidents.
    pub incidents: usize,
    /// Timeline events.
    pub events: usize,
    /// Service logs (a year of visits to the residents visit rules cover).
    pub service_logs: usize,
    /// Seconds it took.
    pub seconds: f64,
}

/// Sub-districts and their communities: those of the reference report
/// first, then numbered ones to reach the district's size.
const SUB_DISTRICTS: [&str; 3] = ["黄河路街道", "胜园街道", "文汇街道"];
const COMMUNITIES: [&str; 5] = ["玉景社区", "汇泉社区", "汇丰社区", "科苑社区", "中山社区"];
/// Grids per community (Yujing alone has 16 grid party branches).
const GRIDS_PER_COMMUNITY: usize = 24;

/// Departments the centre dispatches to, by category group.
pub const DEPARTMENTS: [(&str, &str); 6] = [
    ("dept-gas", "燃气公司"),
    ("dept-fire", "消防救援"),
    ("dept-urban", "城管执法"),
    ("dept-property", "物业公司"),
    ("dept-civil", "民政服务站"),
    ("dept-street", "街道办事处"),
];

/// Grid `i` of a district of this plan.
pub fn grid(i: usize) -> GridInfo {
    let c = i / GRIDS_PER_COMMUNITY;
    let community = match COMMUNITIES.get(c) {
        Some(name) => (*name).to_owned(),
        None => format!("东城第{}社区", c + 1),
    };
    GridInfo {
        id: format!("grid-{i}"),
        code: format!("370502{:06}", i + 1),
        name: format!("{community}第{}网格", i % GRIDS_PER_COMMUNITY + 1),
        community,
        sub_district: SUB_DISTRICTS[c % SUB_DISTRICTS.len()].to_owned(),
    }
}

const DAY_MS: i64 = 86_400_000;

/// The department a category goes to.
fn department(group: CategoryGroup, code: &str, rng: &mut Rng) -> &'static str {
    match group {
        CategoryGroup::SafetyHazard if code.starts_with("gas") => "dept-gas",
        CategoryGroup::SafetyHazard => "dept-fire",
        CategoryGroup::Governance if rng.chance(0.5) => "dept-urban",
        CategoryGroup::Governance => "dept-property",
        CategoryGroup::Livelihood if rng.chance(0.7) => "dept-civil",
        CategoryGroup::Livelihood => "dept-street",
    }
}

fn object(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

fn record(id: String, entity: &str, grid: &str, fields: Map<String, Value>) -> Record {
    Record {
        id,
        entity: entity.to_owned(),
        grid_id: grid.to_owned(),
        version: 1,
        deleted: false,
        fields,
        field_versions: Map::new(),
    }
}

/// The resident records of a grid, checked as a device's would be.
fn residents(rng: &mut Rng, grid: &str, n: usize, now: i64, catalogue: &Catalogue) -> Result<Vec<Record>, String> {
    datagen::residents(rng, grid, &[], n)
        .into_iter()
        .map(|r| {
            let sent = object(json!({
                "grid_id": grid, "household_id": null, "name": r.name, "sex": r.sex.as_str(),
                "id_number": r.id_number, "birth_date": null, "phone": r.phone, "residence": r.residence.as_str(),
                "care_tags": r.care_tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(), "notes": "",
            }));
            let fields = rules::check(Entity::Resident, &sent, now, catalogue)
                .map_err(|e| format!("a generated resident: {e}"))?;
            Ok(record(fieldgrid_domain::new_id(), "resident", grid, fields))
        })
        .collect()
}

/// A year of visits to the residents the catalogue's visit rules cover:
/// in each calendar month, a visit to four in five of them on a random day,
/// checked as a device's log would be. Each month's logs come with the time
/// the server received them (the month's end, or now), so that they count
/// when they were made (`visits::counted_visit_time`).
fn service_logs(
    rng: &mut Rng,
    grid: &str,
    residents: &[Record],
    now: i64,
    catalogue: &Catalogue,
) -> Result<Vec<(i64, Vec<Record>)>, String> {
    use fieldgrid_domain::catalogue::Every;
    let tags: Vec<&str> = catalogue
        .visit_rules
        .iter()
        .flat_map(|r| r.care_tags.iter().map(String::as_str))
        .collect();
    let covered: Vec<&Record> = residents
        .iter()
        .filter(|r| {
            r.fields
                .get("care_tags")
                .and_then(Value::as_array)
                .is_some_and(|t| t.iter().any(|t| t.as_str().is_some_and(|t| tags.contains(&t))))
        })
        .collect();
    let mut months = Vec::new();
    let mut at = now;
    for _ in 0..12 {
        let Some(month) = Every::Month.period_at(at) else { break };
        let received = month.end_ms.min(now);
        let mut logs = Vec::new();
        for r in &covered {
            if !rng.chance(0.8) {
                continue;
            }
            let span = (received - 60_000 - month.start_ms).max(1);
            let occurred = month.start_ms + rng.below(span as u64) as i64;
            let sent = object(json!({
                "grid_id": grid, "kind": "visit", "resident_ids": [r.id], "notes": "入户走访", "occurred_at_ms": occurred,
            }));
            let fields = rules::check(Entity::ServiceLog, &sent, received, catalogue)
                .map_err(|e| format!("a generated service log: {e}"))?;
            logs.push(record(fieldgrid_domain::new_id(), "service_log", grid, fields));
        }
        months.push((received, logs));
        at = month.start_ms - 1;
    }
    Ok(months)
}

/// One incident with its timeline: its records (the incident last, as it
/// ends up) and how many events.
fn incident(
    rng: &mut Rng,
    grid: &str,
    catalogue: &Catalogue,
    reported_at: i64,
    now: i64,
    worker: &str,
) -> Result<(Vec<Record>, usize), String> {
    // Governance and safety in the report's proportions (572,300 : 342,800),
    // a few livelihood requests.
    let group = match rng.below(100) {
        0..=59 => CategoryGroup::Governance,
        60..=95 => CategoryGroup::SafetyHazard,
        _ => CategoryGroup::Livelihood,
    };
    let choices: Vec<_> = catalogue.categories.iter().filter(|c| c.group == group).collect();
    let category = *rng.pick(&choices);
    let location = json!({"latitude": 37.40 + rng.below(1_000) as f64 / 10_000.0,
                          "longitude": 118.45 + rng.below(1_000) as f64 / 10_000.0, "accuracy_m": 8.0, "crs": "wgs84"});
    let sent = object(json!({
        "grid_id": grid, "category": category.code, "title": "", "description": "网格员巡查发现，已拍照留存",
        "address": "", "location": location, "occurred_at_ms": reported_at - rng.below(3_600_000) as i64,
        "involved_residents": [],
    }));
    let mut fields = rules::check(Entity::Incident, &sent, reported_at, catalogue)
        .map_err(|e| format!("a generated incident: {e}"))?;
    fields.insert("status".into(), json!("draft"));
    fields.insert("reported_at_ms".into(), json!(reported_at));
    fields.insert("reporter".into(), json!(worker));
    let mut incident = record(fieldgrid_domain::new_id(), "incident", grid, fields);
    let mut out = Vec::new();
    let mut step = |incident: &mut Record, kind: EventKind, at: i64, extra: Value| -> Result<(), String> {
        let mut event = object(json!({"incident_id": incident.id, "kind": kind.as_str(), "note": "",
                                      "actor": worker, "at_ms": at, "server_at_ms": at}));
        event.extend(object(extra));
        decide::apply_event(incident, &event, "", at).map_err(|e| format!("a generated timeline: {e:?}"))?;
        out.push(record(fieldgrid_domain::new_id(), "incident_event", grid, event));
        Ok(())
    };
    step(&mut incident, EventKind::Reported, reported_at, json!({}))?;
    let age = now - reported_at;
    if rng.chance(0.15) && age > DAY_MS {
        // Solved on the spot by the worker.
        step(
            &mut incident,
            EventKind::ResolvedOnSite,
            reported_at + 1_800_000,
            json!({"note": "现场已处理"}),
        )?;
    } else {
        let dispatched = reported_at + 600_000 + rng.below(7_200_000) as i64;
        let hours = i64::from(category.default_deadline_hours.max(1));
        let deadline = dispatched + hours * 3_600_000;
        let department = department(category.group, &category.code, rng);
        step(
            &mut incident,
            EventKind::Dispatched,
            dispatched,
            json!({"department": department, "deadline_at_ms": deadline}),
        )?;
        // Most finish before the deadline; some late; the most recent may
        // still be open.
        let span = deadline - dispatched;
        let finish = if rng.chance(0.96) {
            dispatched + (span * (20 + rng.below(80) as i64)) / 100
        } else {
            deadline + (span * (1 + rng.below(100) as i64)) / 100
        };
        if finish < now {
            step(&mut incident, EventKind::Resolved, finish, json!({"note": "已办结"}))?;
            if rng.chance(0.5) && finish + DAY_MS < now {
                step(&mut incident, EventKind::Closed, finish + DAY_MS, json!({}))?;
            }
        }
    }
    let events = out.len();
    out.push(incident);
    Ok((out, events))
}

/// Builds the district into `store`; progress every 50 grids on the log.
pub async fn build(store: &Store, plan: &DistrictPlan) -> Result<DistrictReport, String> {
    let started = Instant::now();
    let catalogue = store.catalogue().await.map_err(|e| e.message)?;
    let mut report = DistrictReport::default();
    let grids = plan.grids.max(1);
    for i in 0..grids {
        let g = grid(i);
        store.add_grid(&g).await.map_err(|e| e.to_string())?;
        let mut rng = Rng::new(plan.seed ^ (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15));
        // Spread the totals evenly, the remainder on the first grids.
        let share = |total: usize| total / grids + usize::from(i < total % grids);
        let mut records = residents(&mut rng, &g.id, share(plan.residents), plan.now_ms, &catalogue)?;
        report.residents += records.len();
        let logs = service_logs(&mut rng, &g.id, &records, plan.now_ms, &catalogue)?;
        let worker = format!("worker-{i}");
        let n = share(plan.incidents);
        let two_years = 730 * DAY_MS;
        for k in 0..n {
            // Evenly over two years, a little jitter.
            let at = plan.now_ms - two_years + (two_years * k as i64) / n.max(1) as i64 + rng.below(3_600_000) as i64;
            let (rs, events) = incident(
                &mut rng,
                &g.id,
                &catalogue,
                at.min(plan.now_ms - 60_000),
                plan.now_ms,
                &worker,
            )?;
            report.events += events;
            records.extend(rs);
        }
        report.incidents += n;
        store
            .save_records(records, plan.now_ms)
            .await
            .map_err(|e| e.to_string())?;
        for (received, month) in logs {
            report.service_logs += month.len();
            store.save_records(month, received).await.map_err(|e| e.to_string())?;
        }
        report.grids += 1;
        if (i + 1) % 50 == 0 {
            tracing::info!(grids = i + 1, incidents = report.incidents, "district building");
        }
    }
    // The query planner's statistics, for a database that grew from nothing.
    store.analyze().await.map_err(|e| e.to_string())?;
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// The accounts of a built district: `worker-{i}` on grid `grid-{i}`, the
/// operator `centre`, and the departments (cheap password hashing: these
/// are test and demo accounts).
pub fn accounts(admin: &Admin<'_>, grids: usize, password: &str, hasher: &Argon2<'_>) -> Result<(), String> {
    for i in 0..grids {
        let g = grid(i);
        admin.add_grid(&g)?;
        admin.add_worker(&format!("worker-{i}"), password, &[g.id], hasher)?;
    }
    admin.add_account_with("centre", password, Role::Operator, hasher)?;
    for (id, name) in DEPARTMENTS {
        admin.add_department(id, name)?;
    }
    Ok(())
}
