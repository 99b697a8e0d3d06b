//! Visit plans on the phone: which residents of a grid are due a visit or a
//! phone check-in under the district's visit rules, offline and by server
//! time. A visit is completed by a service log of a kind the rule counts,
//! linked to the resident ([`Store::create_service_log`]).

use std::collections::HashMap;

use rusqlite::Connection;
use serde::Serialize;

use crate::capture::residents::{RESIDENT_COLUMNS, resident_from_row};
use crate::catalogue::VisitRule;
use crate::error::Result;
use crate::model::Resident;
use crate::store::Store;
use fieldgrid_domain::visits::standing;
pub use fieldgrid_domain::visits::{Period, VisitState, china_date};

/// One resident's visit under one rule, as the due list shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct DueVisit {
    /// The rule's code.
    pub rule: String,
    /// The rule's name, for the worker.
    pub rule_name: String,
    /// Where the visit stands.
    pub state: VisitState,
    /// When the visit is (or was) due: the end of its period, server time.
    pub due_by_ms: i64,
    /// The latest visit the rule counts, if within the last two periods.
    pub last_visit_ms: Option<i64>,
    /// Who to visit or call (with the phone number and household).
    pub resident: Resident,
}

/// How a grid's visits stand, counted per resident and rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct VisitCounts {
    /// Missed in the last period and not made yet.
    pub overdue: u64,
    /// Not made yet; the period ends soon.
    pub due_soon: u64,
    /// Not made yet; there is time.
    pub due: u64,
    /// Made in this period.
    pub done: u64,
}

impl VisitCounts {
    fn add(&mut self, state: VisitState) {
        match state {
            VisitState::Overdue => self.overdue += 1,
            VisitState::DueSoon => self.due_soon += 1,
            VisitState::Due => self.due += 1,
            VisitState::Done => self.done += 1,
        }
    }
}

/// One resident under one rule, before the resident is loaded.
struct Standing {
    rule: usize,
    rid: i64,
    state: VisitState,
    due_by_ms: i64,
    last_visit_ms: Option<i64>,
}

/// Every (rule, resident) of the grid with its standing, for the rules this
/// build can apply.
fn standings(c: &Connection, grid_id: &str, rules: &[VisitRule], now: i64) -> Result<Vec<Standing>> {
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let Some(previous) = rule.every.period_at(now).and_then(|p| p.previous(rule.every)) else {
            continue; // a period this build does not know
        };
        if !rule.applies() {
            continue;
        }
        let tags = serde_json::to_string(&rule.care_tags)?;
        let listed = serde_json::to_string(&rule.resident_ids)?;
        let kinds = serde_json::to_string(&rule.kinds)?;
        // The latest counted visit per resident since the last period began.
        let mut last: HashMap<String, i64> = HashMap::new();
        let mut stmt = c.prepare_cached(
            "SELECT j.value, max(s.occurred_at) FROM service_logs s, json_each(s.residents) j
             WHERE s.grid_id = ?1 AND s.occurred_at >= ?2 AND s.deleted_at IS NULL
               AND s.kind IN (SELECT value FROM json_each(?3))
             GROUP BY j.value",
        )?;
        let mut rows = stmt.query(rusqlite::params![grid_id, previous.start_ms, kinds])?;
        while let Some(r) = rows.next()? {
            last.insert(r.get(0)?, r.get(1)?);
        }
        let mut stmt = c.prepare_cached(
            "SELECT r.rid, r.id FROM residents r
             WHERE r.grid_id = ?1 AND r.deleted_at IS NULL
               AND (r.rid IN (SELECT t.rid FROM resident_tags t WHERE t.tag IN (SELECT value FROM json_each(?2)))
                    OR r.id IN (SELECT value FROM json_each(?3)))",
        )?;
        let mut rows = stmt.query(rusqlite::params![grid_id, tags, listed])?;
        while let Some(r) = rows.next()? {
            let (rid, id): (i64, String) = (r.get(0)?, r.get(1)?);
            let last_visit_ms = last.get(&id).copied();
            if let Some((state, due_by_ms)) = standing(rule, now, last_visit_ms) {
                out.push(Standing {
                    rule: i,
                    rid,
                    state,
                    due_by_ms,
                    last_visit_ms,
                });
            }
        }
    }
    Ok(out)
}

impl Store {
    /// The visits and phone check-ins of a grid not yet made in their
    /// period, under the catalogue's visit rules, by server time: overdue
    /// first, then by the date each is due, then by name.
    pub fn due_visits(&self, grid_id: &str) -> Result<Vec<DueVisit>> {
        let now = self.server_now_ms()?;
        let catalogue = self.catalogue();
        let rules = &catalogue.visit_rules;
        self.read(|c| {
            let mut stmt = c.prepare_cached(&format!("SELECT {RESIDENT_COLUMNS} FROM residents r WHERE r.rid = ?1"))?;
            let mut loaded: HashMap<i64, Resident> = HashMap::new();
            let mut out = Vec::new();
            for s in standings(c, grid_id, rules, now)? {
                if s.state == VisitState::Done {
                    continue;
                }
                let resident = match loaded.get(&s.rid) {
                    Some(r) => r.clone(),
                    None => {
                        let mut rows = stmt.query([s.rid])?;
                        let Some(row) = rows.next()? else { continue };
                        let r = resident_from_row(c, row)?;
                        loaded.insert(s.rid, r.clone());
                        r
                    }
                };
                let rule = &rules[s.rule];
                out.push(DueVisit {
                    rule: rule.code.clone(),
                    rule_name: rule.name_zh.clone(),
                    state: s.state,
                    due_by_ms: s.due_by_ms,
                    last_visit_ms: s.last_visit_ms,
                    resident,
                });
            }
            out.sort_by(|a, b| {
                (
                    a.state != VisitState::Overdue,
                    a.due_by_ms,
                    a.resident.name.as_str(),
                    &a.rule,
                )
                    .cmp(&(
                        b.state != VisitState::Overdue,
                        b.due_by_ms,
                        b.resident.name.as_str(),
                        &b.rule,
                    ))
            });
            Ok(out)
        })
    }

    /// How a grid's visits stand under the catalogue's rules, by server time.
    pub fn visit_counts(&self, grid_id: &str) -> Result<VisitCounts> {
        let now = self.server_now_ms()?;
        let catalogue = self.catalogue();
        self.read(|c| visit_counts_in(c, grid_id, &catalogue.visit_rules, now))
    }
}

pub(crate) fn visit_counts_in(c: &Connection, grid_id: &str, rules: &[VisitRule], now: i64) -> Result<VisitCounts> {
    let mut counts = VisitCounts::default();
    for s in standings(c, grid_id, rules, now)? {
        counts.add(s.state);
    }
    Ok(counts)
}
