//! What phones pull, the centre's visit coverage and its statistics: reads
//! written once for both engines ([`super::sql`]).

use fieldgrid_protocol::Change;

use super::error::StoreResult;
use super::sql::{args, run};
use super::{CoverageQuery, CoverageRow, StatsRow, Store, open_status_sql};

/// A change from its columns, with the size of its fields.
fn change_of(
    seq: i64,
    entity: String,
    id: String,
    grid_id: String,
    version: i64,
    deleted: bool,
    fields: &str,
) -> (Change, usize) {
    let change = Change {
        seq,
        entity,
        entity_id: id,
        grid_id,
        version,
        deleted,
        fields: if deleted {
            serde_json::Map::new()
        } else {
            serde_json::from_str(fields).unwrap_or_default()
        },
    };
    (change, fields.len())
}

/// Rows of several grids (each in seq order) merged into one page: bounded
/// by count and, softly, by bytes (at least one change).
fn page_of(mut all: Vec<(Change, usize)>, limit: usize, max_bytes: usize) -> (Vec<Change>, bool) {
    all.sort_by_key(|(c, _)| c.seq);
    let mut bytes = 0;
    let mut fit = 0;
    for (_, size) in all.iter().take(limit) {
        if fit > 0 && bytes + size > max_bytes {
            break;
        }
        bytes += size;
        fit += 1;
    }
    let more = all.len() > fit;
    (all.into_iter().take(fit).map(|(c, _)| c).collect(), more)
}

impl Store {
    /// Changes of these grids after `after`, oldest first: a page of at
    /// most `limit` changes and about `max_bytes`, and whether more follow.
    pub async fn changes(
        &self,
        grids: Vec<String>,
        after: i64,
        limit: usize,
        max_bytes: usize,
    ) -> StoreResult<(Vec<Change>, bool)> {
        let fetch = i64::try_from(limit).unwrap_or(i64::MAX - 1) + 1;
        run!(self, snapshot, |c| async move {
            // One index range per grid, in one snapshot, merged by seq.
            let mut all = Vec::new();
            for grid in &grids {
                for r in c
                    .query(
                        "SELECT seq, entity, id, grid_id, version, deleted, fields FROM records
                         WHERE grid_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                        args![grid, after, fetch],
                    )
                    .await?
                {
                    all.push(change_of(
                        r.int(0)?,
                        r.text(1)?,
                        r.text(2)?,
                        r.text(3)?,
                        r.int(4)?,
                        r.flag(5)?,
                        &r.text(6)?,
                    ));
                }
            }
            Ok(page_of(all, limit, max_bytes))
        })
    }

    /// Each grid's residents in a coverage query's scope, and how many were
    /// visited on time and late.
    pub(crate) async fn coverage_rows(&self, q: CoverageQuery) -> StoreResult<Vec<CoverageRow>> {
        run!(self, read, |c| async move {
            let d = c.dialect();
            let (tags, ids, kinds) = (d.in_list("tag", 1), d.in_list("id", 2), d.in_list("v.kind", 3));
            let (entity, live) = (d.unindexed("entity"), d.live("deleted"));
            c.query(
                &format!(
                    "WITH scope (resident_id, grid_id) AS (
                         SELECT resident_id, grid_id FROM care_residents WHERE {tags}
                         UNION
                         SELECT id, grid_id FROM records WHERE {ids} AND {entity} = 'resident' AND {live}
                     ), seen AS (
                         SELECT s.grid_id,
                             EXISTS (SELECT 1 FROM visits v WHERE v.resident_id = s.resident_id
                                     AND v.visited_at >= $4 AND v.visited_at < $5 AND {kinds}) AS on_time,
                             EXISTS (SELECT 1 FROM visits v WHERE v.resident_id = s.resident_id
                                     AND v.visited_at >= $5 AND v.visited_at < $6 AND {kinds}) AS late
                         FROM scope s
                     )
                     SELECT grid_id, count(*), count(*) FILTER (WHERE on_time),
                         count(*) FILTER (WHERE late AND NOT on_time)
                     FROM seen GROUP BY grid_id"
                ),
                args![
                    &q.tags[..],
                    &q.resident_ids[..],
                    &q.kinds[..],
                    q.start_ms,
                    q.end_ms,
                    q.late_until_ms
                ],
            )
            .await?
            .iter()
            .map(|r| {
                Ok(CoverageRow {
                    grid_id: r.text(0)?,
                    residents: r.int(1)?.unsigned_abs(),
                    on_time: r.int(2)?.unsigned_abs(),
                    late: r.int(3)?.unsigned_abs(),
                })
            })
            .collect()
        })
    }

    /// The statistics' rows: sums by month per grid and per category, and
    /// open incidents per grid and category, as rows of their own (the
    /// totals add them up).
    /// `months`: the first and last month (`YYYY-MM`, both included) of
    /// the sums; `reported`: `[start, end)` of the open incidents' report
    /// times.
    pub(crate) async fn stats_rows(
        &self,
        months: (String, String),
        reported: (i64, i64),
        now: i64,
    ) -> StoreResult<Vec<StatsRow>> {
        let ((first, last), (start, end)) = (months, reported);
        run!(self, snapshot, |c| async move {
            let count = |v: i64| v.unsigned_abs();
            let mut rows = Vec::new();
            for (table, key) in [("incident_months", "grid_id"), ("incident_category_months", "category")] {
                for r in c
                    .query(
                        &format!(
                            "SELECT {key}, CAST(sum(reported) AS BIGINT), CAST(sum(finished_with_deadline) AS BIGINT),
                               CAST(sum(finished_on_time) AS BIGINT)
                             FROM {table} WHERE month >= $1 AND month <= $2 GROUP BY {key}"
                        ),
                        args![&first, &last],
                    )
                    .await?
                {
                    let counts = StatsRow {
                        reported: count(r.int(1)?),
                        finished_with_deadline: count(r.int(2)?),
                        finished_on_time: count(r.int(3)?),
                        ..Default::default()
                    };
                    rows.push(match key {
                        "grid_id" => StatsRow {
                            grid_id: r.text(0)?,
                            ..counts
                        },
                        _ => StatsRow {
                            category: r.text(0)?,
                            ..counts
                        },
                    });
                }
            }
            let open = c.dialect().indexed_by("incidents_open");
            for r in c
                .query(
                    &format!(
                        "SELECT grid_id, category, count(*), count(*) FILTER (WHERE deadline_at < $1)
                         FROM incidents {open}
                         WHERE {} AND reported_at >= $2 AND reported_at < $3
                         GROUP BY grid_id, category",
                        open_status_sql()
                    ),
                    args![now, start, end],
                )
                .await?
            {
                rows.push(StatsRow {
                    grid_id: r.text(0)?,
                    category: r.text(1)?,
                    open: count(r.int(2)?),
                    overdue: count(r.int(3)?),
                    ..Default::default()
                });
            }
            Ok(rows)
        })
    }
}
