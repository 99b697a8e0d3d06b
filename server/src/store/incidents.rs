//! The centre's incident list: its filters, orders and keyset pages, as one
//! statement built once for both engines ([`super::sql`]).

use fieldgrid_protocol::CentreIncident;

use super::error::StoreResult;
use super::sql::{Arg, Dialect, Row, run};
use super::{IncidentCursor, IncidentFilter, IncidentSort, Store, centre_incident, open_status_sql};

/// The columns [`incident_of`] reads, in its order.
pub(super) const INCIDENT_COLUMNS: &str =
    "id, grid_id, category, status, department, deadline_at, reported_at, finished_at, complete";

/// An incident of the list from [`INCIDENT_COLUMNS`].
pub(super) fn incident_of(r: &Row, now: i64) -> StoreResult<CentreIncident> {
    Ok(centre_incident(
        r.text(0)?,
        r.text(1)?,
        r.text(2)?,
        r.text(3)?,
        r.opt_text(4)?,
        r.opt_int(5)?,
        r.int(6)?,
        r.opt_int(7)?,
        r.flag(8)?,
        now,
    ))
}

/// The list's statement and its arguments: every filter given, the order,
/// the page after `after`.
fn list_sql<'a>(
    d: Dialect,
    filter: &'a IncidentFilter,
    sort: IncidentSort,
    after: Option<&'a IncidentCursor>,
    limit: i64,
    now: i64,
) -> (String, Vec<Arg<'a>>) {
    let mut sql = format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE status <> 'draft'");
    let mut args: Vec<Arg<'a>> = Vec::new();
    let bind = |args: &mut Vec<Arg<'a>>, a: Arg<'a>| {
        args.push(a);
        format!("${}", args.len())
    };
    for (column, value) in [
        ("status", &filter.status),
        ("grid_id", &filter.grid),
        ("sub_district", &filter.sub_district),
        ("community", &filter.community),
        ("category", &filter.category),
        ("department", &filter.department),
    ] {
        if let Some(v) = value {
            let p = bind(&mut args, Arg::from(v));
            sql.push_str(&format!(" AND {column} = {p}"));
        }
    }
    if filter.via_open_index(sort) {
        sql.push_str(&format!(" AND {}", open_status_sql()));
    }
    if filter.overdue {
        let p = bind(&mut args, Arg::from(now));
        sql.push_str(&format!(" AND deadline_at < {p}"));
    }
    if let Some(a) = after {
        let (k, i) = (bind(&mut args, Arg::from(a.key)), bind(&mut args, Arg::from(&a.id)));
        sql.push_str(&match sort {
            IncidentSort::Reported => format!(" AND (reported_at, id) < ({k}, {i})"),
            IncidentSort::Deadline => format!(" AND (deadline_at, id) > ({k}, {i})"),
        });
    }
    match sort {
        // Overdue incidents are few: found through the open incidents'
        // partial index and sorted, not by walking every incident newest
        // first.
        IncidentSort::Reported if filter.overdue => sql.push_str(&format!(
            " ORDER BY {} DESC, {} DESC",
            d.unindexed("reported_at"),
            d.unindexed("id")
        )),
        IncidentSort::Reported => sql.push_str(" ORDER BY reported_at DESC, id DESC"),
        IncidentSort::Deadline => sql.push_str(" AND deadline_at IS NOT NULL ORDER BY deadline_at, id"),
    }
    let p = bind(&mut args, Arg::from(limit));
    sql.push_str(&format!(" LIMIT {p}"));
    (sql, args)
}

impl Store {
    /// One incident as the list shows it.
    pub(crate) async fn incident_row(&self, id: &str, now: i64) -> StoreResult<Option<CentreIncident>> {
        let id = id.to_owned();
        run!(self, read, |c| async move {
            c.query_opt(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = $1"),
                super::sql::args![&id],
            )
            .await?
            .map(|r| incident_of(&r, now))
            .transpose()
        })
    }

    /// A page of incidents (never drafts), filtered and sorted.
    pub async fn incidents(
        &self,
        filter: &IncidentFilter,
        sort: IncidentSort,
        after: Option<IncidentCursor>,
        limit: usize,
        now: i64,
    ) -> StoreResult<Vec<CentreIncident>> {
        let filter = filter.clone();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        run!(self, read, |c| async move {
            let (sql, args) = list_sql(c.dialect(), &filter, sort, after.as_ref(), limit, now);
            c.query(&sql, &args)
                .await?
                .iter()
                .map(|r| incident_of(r, now))
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan SQLite picks for a list query on the real schema.
    fn plan(filter: &IncidentFilter, sort: IncidentSort) -> String {
        let mut conn = rusqlite::Connection::open_in_memory().unwrap();
        super::super::sqlite::migrate(&mut conn).unwrap();
        // The planner's statistics of the reference district (3 million
        // incidents, 2.55 million with a deadline), as `ANALYZE` left them.
        conn.execute_batch(
            "ANALYZE;
             DELETE FROM sqlite_stat1;
             INSERT INTO sqlite_stat1 (tbl, idx, stat) VALUES
               ('incidents', 'incidents_stats', '3000000 3084 771 2 1'),
               ('incidents', 'incidents_department', '3000000 428572 1'),
               ('incidents', 'incidents_category', '3000000 187500 1'),
               ('incidents', 'incidents_community', '3000000 73171 1'),
               ('incidents', 'incidents_sub_district', '3000000 1000000 1'),
               ('incidents', 'incidents_status', '3000000 750000 1'),
               ('incidents', 'incidents_grid', '3000000 3084 1'),
               ('incidents', 'incidents_deadline', '2551418 1 1'),
               ('incidents', 'incidents_reported', '3000000 1 1'),
               ('incidents', 'incidents', '3000000 1');
             ANALYZE sqlite_schema;",
        )
        .unwrap();
        let (sql, args) = list_sql(Dialect::Sqlite, filter, sort, None, 1_000, 1_796_000_000_000);
        let sql = super::super::sql::sqlite_placeholders(&sql);
        let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
        let rows = stmt
            .query_map(rusqlite::params_from_iter(args), |r| r.get::<_, String>(3))
            .unwrap();
        rows.map(Result::unwrap).collect::<Vec<_>>().join("; ")
    }

    /// Lists of open incidents search an index for the open ones, never
    /// walk every incident in order: newest-first by walking took 3.2 s at
    /// 3 million incidents (the console's overdue map), and an open status
    /// in deadline order 2.9 s.
    #[test]
    fn lists_of_open_incidents_use_the_open_incidents_index() {
        let overdue = IncidentFilter {
            overdue: true,
            ..Default::default()
        };
        let dispatched = IncidentFilter {
            status: Some("dispatched".into()),
            sub_district: Some("胜园街道".into()),
            ..Default::default()
        };
        for (filter, sort, index) in [
            (&overdue, IncidentSort::Reported, "incidents_open_deadline"),
            (&overdue, IncidentSort::Deadline, "incidents_open_deadline"),
            (&dispatched, IncidentSort::Deadline, "incidents_open_deadline"),
            // Newest first, a status walks its own index in order.
            (&dispatched, IncidentSort::Reported, "incidents_status (status=?)"),
        ] {
            let plan = plan(filter, sort);
            assert!(
                plan.starts_with(&format!("SEARCH incidents USING INDEX {index}")) && !plan.contains("SCAN"),
                "{filter:?} {sort:?}: {plan}"
            );
        }
    }
}
