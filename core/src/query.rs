//! Queries behind the worker's screens: resident search, incident lists,
//! the grid dashboard. Paging is by keyset (the id of the last item seen), so
//! pages are stable while records are added.

use rusqlite::types::Value as SqlValue;
use serde::Serialize;

use crate::capture::incidents::{INCIDENT_COLUMNS, incident_from_row};
use crate::capture::residents::{RESIDENT_COLUMNS, resident_from_row};
use crate::entity::{self, Entity};
use crate::error::{Code, Error, Result};
use crate::model::{CareTag, Incident, IncidentStatus, Resident};
use crate::search;
use crate::store::Store;
use crate::validate::limits;

/// Which page to read.
#[derive(Clone, Debug)]
pub struct PageRequest {
    /// Items per page, 1..=500.
    pub limit: u32,
    /// The `next` cursor of the previous page; `None` for the first.
    pub after: Option<String>,
}

impl Default for PageRequest {
    fn default() -> Self {
        PageRequest { limit: 50, after: None }
    }
}

/// One page of results.
#[derive(Clone, Debug)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Cursor for the next page; `None` on the last.
    pub next: Option<String>,
}

/// Filters for resident search; all given filters must match.
#[derive(Clone, Debug, Default)]
pub struct ResidentQuery {
    /// Only this grid.
    pub grid_id: Option<String>,
    /// Only this household.
    pub household_id: Option<String>,
    /// Only this building.
    pub building_id: Option<String>,
    /// Name contains this (one character or more; two-character names work).
    pub name: Option<String>,
    /// The full ID number, or its last 4 or more characters.
    pub id_number: Option<String>,
    /// The full phone number, or its last 4 or more digits.
    pub phone: Option<String>,
    /// Household address contains this.
    pub address: Option<String>,
    /// Has this care tag.
    pub care_tag: Option<CareTag>,
}

/// Filters for incident lists; newest first.
#[derive(Clone, Debug, Default)]
pub struct IncidentQuery {
    /// Only this grid.
    pub grid_id: Option<String>,
    /// Only these statuses (all when empty).
    pub statuses: Vec<IncidentStatus>,
    /// Only this category.
    pub category: Option<String>,
    /// Observed at or after (ms).
    pub from_ms: Option<i64>,
    /// Observed before (ms).
    pub to_ms: Option<i64>,
}

/// The counts on a grid's home screen.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Dashboard {
    /// Live residents.
    pub residents: u64,
    /// Live households.
    pub households: u64,
    /// Residents per care tag: every tag the catalogue offers (zero
    /// included), then any other a resident holds (retired, or a newer
    /// catalogue's).
    pub care_tags: Vec<(CareTag, u64)>,
    /// Submitted incidents still needing action.
    pub open_incidents: u64,
    /// Open incidents past their deadline, by server time.
    pub overdue_incidents: u64,
    /// Incident drafts on this phone.
    pub drafts: u64,
    /// Visits and check-ins under the district's visit rules, by server time.
    pub visits: crate::visits::VisitCounts,
}

/// SQL being assembled: clauses and their parameters, numbered in order.
#[derive(Default)]
struct Sql {
    from: String,
    wheres: Vec<String>,
    params: Vec<SqlValue>,
}

impl Sql {
    fn param(&mut self, v: impl Into<SqlValue>) -> String {
        self.params.push(v.into());
        format!("?{}", self.params.len())
    }
}

fn check_limit(page: &PageRequest) -> Result<u32> {
    if !(1..=500).contains(&page.limit) {
        return Err(Error::invalid("limit", Code::OutOfRange));
    }
    Ok(page.limit)
}

/// Trims a search term; refuses blank, over-long or control characters.
fn term(field: &str, v: &str) -> Result<String> {
    Ok(crate::validate::text(field, v, limits::ADDRESS, false)?)
}

impl Store {
    /// Searches residents (deleted ones never match), ordered by name.
    pub fn search_residents(&self, q: &ResidentQuery, page: &PageRequest) -> Result<Page<Resident>> {
        let limit = check_limit(page)?;
        let mut sql = Sql {
            from: "residents r".into(),
            ..Default::default()
        };
        sql.wheres.push("r.deleted_at IS NULL".into());
        if let Some(name) = &q.name {
            let name = search::fold(&term("name", name)?);
            if let Some(first) = search::bigrams(&name).first() {
                // Drive the query from the bigram index (CROSS JOIN fixes the order).
                let p = sql.param(first.clone());
                sql.from = format!("resident_name_grams g CROSS JOIN residents r ON r.rid = g.rid AND g.gram = {p}");
            }
            let p = sql.param(name);
            sql.wheres.push(format!("instr(lower(r.name), {p}) > 0"));
        }
        if let Some(tag) = &q.care_tag {
            let p = sql.param(tag.as_str().to_owned());
            if sql.from.starts_with("residents") {
                let building = match &q.building_id {
                    Some(b) => format!(" AND t.building_id = {}", sql.param(b.clone())),
                    None => String::new(),
                };
                sql.from = format!("resident_tags t CROSS JOIN residents r ON r.rid = t.rid AND t.tag = {p}{building}");
            } else {
                sql.wheres
                    .push(format!("r.rid IN (SELECT rid FROM resident_tags WHERE tag = {p})"));
            }
        }
        if let Some(id) = &q.id_number {
            let id = term("id_number", id)?.to_ascii_uppercase();
            if id.len() < 4 || !id.bytes().all(|b| b.is_ascii_digit() || b == b'X') || id.len() > 18 {
                return Err(Error::invalid("id_number", Code::BadFormat));
            }
            range_prefix(&mut sql, "r.id_rev", &search::reversed(&id));
        }
        if let Some(phone) = &q.phone {
            let digits: String = term("phone", phone)?
                .chars()
                .filter(|c| !matches!(c, ' ' | '-'))
                .collect();
            if digits.len() < 4 || digits.len() > 12 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(Error::invalid("phone", Code::BadFormat));
            }
            range_prefix(&mut sql, "r.phone_rev", &search::reversed(&digits));
        }
        if let Some(address) = &q.address {
            let p = sql.param(term("address", address)?);
            sql.wheres.push(format!(
                "r.household_id IN (SELECT id FROM households WHERE deleted_at IS NULL AND instr(address, {p}) > 0)"
            ));
        }
        if let Some(b) = &q.building_id {
            let p = sql.param(b.clone());
            sql.wheres.push(format!(
                "r.household_id IN (SELECT id FROM households WHERE building_id = {p} AND deleted_at IS NULL)"
            ));
        }
        for (column, value) in [("r.grid_id", &q.grid_id), ("r.household_id", &q.household_id)] {
            if let Some(v) = value {
                let p = sql.param(v.clone());
                // Unary + keeps these equality filters from stealing the index
                // choice from the search index above, unless nothing else drives.
                let col = if sql.from.starts_with("residents") {
                    column.to_owned()
                } else {
                    format!("+{column}")
                };
                sql.wheres.push(format!("{col} = {p}"));
            }
        }
        if let Some(after) = &page.after {
            let p = sql.param(after.clone());
            sql.wheres.push(format!(
                "(r.name, r.id) > (SELECT name, id FROM residents WHERE id = {p})"
            ));
        }
        let p = sql.param(i64::from(limit) + 1);
        let text = format!(
            "SELECT {RESIDENT_COLUMNS} FROM {} WHERE {} ORDER BY r.name, r.id LIMIT {p}",
            sql.from,
            sql.wheres.join(" AND ")
        );
        self.read(|c| {
            if let Some(after) = &page.after {
                check_cursor(c, "residents", after)?;
            }
            let mut stmt = c.prepare_cached(&text)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
            let mut items = Vec::new();
            while let Some(r) = rows.next()? {
                items.push(resident_from_row(c, r)?);
            }
            Ok(paginate(items, limit, |r| r.id.clone()))
        })
    }

    /// The live residents of a household, by name.
    pub fn residents_of_household(&self, household_id: &str) -> Result<Vec<Resident>> {
        let q = ResidentQuery {
            household_id: Some(household_id.to_owned()),
            ..Default::default()
        };
        let mut out = Vec::new();
        let mut page = PageRequest {
            limit: 500,
            after: None,
        };
        loop {
            let p = self.search_residents(&q, &page)?;
            out.extend(p.items);
            match p.next {
                Some(next) => page.after = Some(next),
                None => return Ok(out),
            }
        }
    }

    /// Incidents, newest first.
    pub fn list_incidents(&self, q: &IncidentQuery, page: &PageRequest) -> Result<Page<Incident>> {
        let limit = check_limit(page)?;
        let mut sql = Sql::default();
        sql.wheres.push("i.deleted_at IS NULL".into());
        if let Some(g) = &q.grid_id {
            let p = sql.param(g.clone());
            sql.wheres.push(format!("i.grid_id = {p}"));
        }
        if !q.statuses.is_empty() {
            let ps: Vec<String> = q.statuses.iter().map(|s| sql.param(s.as_str().to_owned())).collect();
            sql.wheres.push(format!("i.status IN ({})", ps.join(", ")));
        }
        if let Some(c) = &q.category {
            let p = sql.param(c.clone());
            sql.wheres.push(format!("i.category = {p}"));
        }
        if let Some(from) = q.from_ms {
            let p = sql.param(from);
            sql.wheres.push(format!("i.occurred_at >= {p}"));
        }
        if let Some(to) = q.to_ms {
            let p = sql.param(to);
            sql.wheres.push(format!("i.occurred_at < {p}"));
        }
        if let Some(after) = &page.after {
            let p = sql.param(after.clone());
            sql.wheres.push(format!(
                "(i.occurred_at, i.id) < (SELECT occurred_at, id FROM incidents WHERE id = {p})"
            ));
        }
        let p = sql.param(i64::from(limit) + 1);
        let text = format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents i WHERE {} ORDER BY i.occurred_at DESC, i.id DESC LIMIT {p}",
            sql.wheres.join(" AND ")
        );
        self.read(|c| {
            if let Some(after) = &page.after {
                check_cursor(c, "incidents", after)?;
            }
            let mut stmt = c.prepare_cached(&text)?;
            let mut rows = stmt.query(rusqlite::params_from_iter(sql.params.iter()))?;
            let mut items = Vec::new();
            while let Some(r) = rows.next()? {
                items.push(incident_from_row(c, r)?);
            }
            Ok(paginate(items, limit, |i| i.id.clone()))
        })
    }

    /// Counts for a grid's home screen. Overdue uses server time.
    pub fn dashboard(&self, grid_id: &str) -> Result<Dashboard> {
        let server_now = self.server_now_ms()?;
        let catalogue = self.catalogue();
        self.read(|c| {
            let count = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<u64> {
                let n: i64 = c.prepare_cached(sql)?.query_row(p, |r| r.get(0))?;
                Ok(n.unsigned_abs())
            };
            let open: Vec<&str> = IncidentStatus::ALL.iter().filter(|s| s.is_open()).map(|s| s.as_str()).collect();
            let open_list = format!("'{}'", open.join("','"));
            let mut d = Dashboard {
                residents: count("SELECT count(*) FROM residents WHERE grid_id = ?1 AND deleted_at IS NULL", &[&grid_id])?,
                households: count("SELECT count(*) FROM households WHERE grid_id = ?1 AND deleted_at IS NULL", &[&grid_id])?,
                open_incidents: count(
                    &format!("SELECT count(*) FROM incidents WHERE grid_id = ?1 AND deleted_at IS NULL AND status IN ({open_list})"),
                    &[&grid_id],
                )?,
                overdue_incidents: count(
                    &format!(
                        "SELECT count(*) FROM incidents WHERE grid_id = ?1 AND deleted_at IS NULL
                         AND status IN ({open_list}) AND deadline_at < ?2"
                    ),
                    &[&grid_id, &server_now],
                )?,
                drafts: count("SELECT count(*) FROM incidents WHERE grid_id = ?1 AND status = 'draft'", &[&grid_id])?,
                care_tags: Vec::new(),
                visits: crate::visits::visit_counts_in(c, grid_id, &catalogue.visit_rules, server_now)?,
            };
            // Every tag forms offer (zero included), and any other tag
            // residents hold (retired, or a newer catalogue's).
            let mut held: std::collections::BTreeMap<String, u64> = c
                .prepare_cached(
                    "SELECT t.tag, count(*) FROM resident_tags t JOIN residents r ON r.rid = t.rid
                     WHERE r.grid_id = ?1 GROUP BY t.tag",
                )?
                .query_map([&grid_id], |r| {
                    Ok((r.get::<_, String>(0)?, u64::try_from(r.get::<_, i64>(1)?).unwrap_or(0)))
                })?
                .collect::<rusqlite::Result<_>>()?;
            for tag in catalogue.care_tag_terms() {
                if let Some(n) = held.remove(&tag.code).or((!tag.retired).then_some(0)) {
                    d.care_tags.push((CareTag::new(tag.code), n));
                }
            }
            d.care_tags.extend(held.into_iter().map(|(tag, n)| (CareTag::new(tag), n)));
            Ok(d)
        })
    }
}

/// `column` starts with `prefix`, as an index range scan.
fn range_prefix(sql: &mut Sql, column: &str, prefix: &str) {
    let lo = sql.param(prefix.to_owned());
    // Every character used in these columns sorts below '~'.
    let hi = sql.param(format!("{prefix}~"));
    sql.wheres.push(format!("{column} >= {lo} AND {column} < {hi}"));
}

fn check_cursor(c: &rusqlite::Connection, table: &str, after: &str) -> Result<()> {
    let found: i64 = c
        .prepare_cached(&format!("SELECT count(*) FROM {table} WHERE id = ?1"))?
        .query_row([after], |r| r.get(0))?;
    if found == 0 {
        return Err(Error::invalid("after", Code::BadFormat));
    }
    Ok(())
}

fn paginate<T>(mut items: Vec<T>, limit: u32, id: impl Fn(&T) -> String) -> Page<T> {
    let next = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(id)
    } else {
        None
    };
    Page { items, next }
}

/// How the records on this phone stand, counted the way each record's
/// [`SyncStatus`] is decided (drafts and deleted records are not counted).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct StatusCounts {
    /// Records counted.
    pub records: u64,
    /// Confirmed by the server, nothing waiting.
    pub on_server: u64,
    /// Changes saved here, not yet sent.
    pub only_on_device: u64,
    /// Sent, no receipt yet.
    pub sending: u64,
    /// Refused by the server.
    pub rejected: u64,
    /// Concurrent edits not yet acknowledged.
    pub in_conflict: u64,
}

impl Store {
    /// Counts the records on this phone by sync status.
    pub fn status_counts(&self) -> Result<StatusCounts> {
        self.read(|c| {
            let mut counts = StatusCounts::default();
            for kind in Entity::ALL {
                let Some(live) = entity::status_rows(kind) else {
                    continue;
                };
                let table = entity::table(kind);
                let mut stmt = c.prepare_cached(&format!(
                    "SELECT CASE
                       WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.entity_id = t.id AND o.state = 'rejected') THEN 'rejected'
                       WHEN EXISTS (SELECT 1 FROM conflicts k WHERE k.entity_id = t.id AND k.seen = 0) THEN 'conflict'
                       WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.entity_id = t.id AND o.state = 'sending') THEN 'sending'
                       WHEN EXISTS (SELECT 1 FROM outbox o WHERE o.entity_id = t.id) THEN 'local'
                       WHEN t.server_version IS NOT NULL THEN 'server'
                       ELSE 'local' END AS s, count(*)
                     FROM {table} t WHERE {live} GROUP BY s"
                ))?;
                let mut rows = stmt.query([])?;
                while let Some(r) = rows.next()? {
                    let n = r.get::<_, i64>(1)?.unsigned_abs();
                    counts.records += n;
                    match r.get_ref(0)?.as_str().map_err(rusqlite::Error::from)? {
                        "rejected" => counts.rejected += n,
                        "conflict" => counts.in_conflict += n,
                        "sending" => counts.sending += n,
                        "server" => counts.on_server += n,
                        "local" => counts.only_on_device += n,
                        other => return Err(Error::Internal(format!("unknown status {other}"))),
                    }
                }
            }
            Ok(counts)
        })
    }
}
