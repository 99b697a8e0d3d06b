//! Records read by id, entity or position, grids and departments, the
//! phones' problem reports and receipt housekeeping: each statement written
//! once for both engines ([`super::sql`]).

use fieldgrid_protocol::GridInfo;

use super::error::StoreResult;
use super::sql::{Row, args, run};
use super::{BACKED, PROBLEMS_SQL, ProblemSummary, REJECTED_RECEIPT, ReportedProblem, Store};
use crate::records::Record;

/// The columns [`record_of`] reads, in its order.
pub(super) const RECORD_COLUMNS: &str = "id, entity, grid_id, version, deleted, fields, field_versions";

/// A record from [`RECORD_COLUMNS`] (starting at column 0).
pub(super) fn record_of(r: &Row) -> StoreResult<Record> {
    Ok(Record::from_columns(
        r.text(0)?,
        r.text(1)?,
        r.text(2)?,
        r.int(3)?,
        r.flag(4)?,
        &r.text(5)?,
        &r.text(6)?,
    ))
}

fn records_of_rows(rows: &[Row]) -> StoreResult<Vec<Record>> {
    rows.iter().map(record_of).collect()
}

impl Store {
    /// A record by id.
    pub async fn record(&self, id: &str) -> StoreResult<Option<Record>> {
        let id = id.to_owned();
        run!(self, read, |c| async move {
            c.query_opt(
                &format!("SELECT {RECORD_COLUMNS} FROM records WHERE id = $1"),
                args![&id],
            )
            .await?
            .as_ref()
            .map(record_of)
            .transpose()
        })
    }

    /// These records, those that exist, in no particular order.
    pub async fn records(&self, ids: Vec<String>) -> StoreResult<Vec<Record>> {
        run!(self, read, |c| async move {
            let of_ids = c.dialect().in_list("id", 1);
            records_of_rows(
                &c.query(
                    &format!("SELECT {RECORD_COLUMNS} FROM records WHERE {of_ids}"),
                    args![&ids[..]],
                )
                .await?,
            )
        })
    }

    /// Records of one entity, optionally of one grid, in change order.
    pub async fn records_of(&self, entity: &str, grid: Option<&str>) -> StoreResult<Vec<Record>> {
        let (entity, grid) = (entity.to_owned(), grid.map(str::to_owned));
        run!(self, read, |c| async move {
            let rows = match &grid {
                Some(g) => {
                    c.query(
                        &format!(
                            "SELECT {RECORD_COLUMNS} FROM records WHERE entity = $1 AND grid_id = $2 ORDER BY seq"
                        ),
                        args![&entity, g],
                    )
                    .await?
                }
                None => {
                    c.query(
                        &format!("SELECT {RECORD_COLUMNS} FROM records WHERE entity = $1 ORDER BY seq"),
                        args![&entity],
                    )
                    .await?
                }
            };
            records_of_rows(&rows)
        })
    }

    /// Up to `limit` records after id `after`, in id order (every entity:
    /// district IT's scans, such as `repair-records`).
    pub async fn records_after(&self, after: &str, limit: usize) -> StoreResult<Vec<Record>> {
        let after = after.to_owned();
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        run!(self, read, |c| async move {
            records_of_rows(
                &c.query(
                    &format!("SELECT {RECORD_COLUMNS} FROM records WHERE id > $1 ORDER BY id LIMIT $2"),
                    args![&after, limit],
                )
                .await?,
            )
        })
    }

    /// An incident's events, in change order.
    pub(crate) async fn events_of(&self, incident_id: &str) -> StoreResult<Vec<Record>> {
        let id = incident_id.to_owned();
        run!(self, read, |c| async move {
            let incident = c.dialect().field("fields", "incident_id");
            records_of_rows(
                &c.query(
                    &format!(
                        "SELECT {RECORD_COLUMNS} FROM records
                         WHERE {incident} = $1 AND entity = 'incident_event' ORDER BY seq"
                    ),
                    args![&id],
                )
                .await?,
            )
        })
    }

    /// An incident's live photo records, each with whether its maker sent
    /// the bytes ([`BACKED`]).
    pub(crate) async fn incident_photos(&self, incident_id: &str) -> StoreResult<Vec<(Record, bool)>> {
        let id = incident_id.to_owned();
        run!(self, read, |c| async move {
            c.query(
                &format!(
                    "SELECT r.id, r.entity, r.grid_id, r.version, r.deleted, r.fields, r.field_versions, {BACKED}
                     FROM photo_refs p JOIN records r ON r.id = p.photo_id
                     WHERE p.incident_id = $1 AND NOT r.deleted"
                ),
                args![&id],
            )
            .await?
            .iter()
            .map(|r| Ok((record_of(r)?, r.flag(7)?)))
            .collect()
        })
    }

    /// Every grid, by code.
    pub async fn grids(&self) -> StoreResult<Vec<GridInfo>> {
        run!(self, read, |c| async move {
            c.query(
                "SELECT id, code, name, community, sub_district FROM grids ORDER BY code",
                &[],
            )
            .await?
            .iter()
            .map(super::accounts::grid_of)
            .collect()
        })
    }

    /// Every department (id, name), by id.
    pub async fn departments(&self) -> StoreResult<Vec<(String, String)>> {
        run!(self, read, |c| async move {
            c.query("SELECT id, name FROM departments ORDER BY id", &[])
                .await?
                .iter()
                .map(|r| Ok((r.text(0)?, r.text(1)?)))
                .collect()
        })
    }

    /// Keeps devices' reports of records they set aside (a repeat is kept once).
    pub async fn add_problems(&self, problems: Vec<ReportedProblem>) -> StoreResult<()> {
        run!(self, write, |c| async move {
            for p in &problems {
                c.execute(
                    "INSERT INTO record_problems (entity_id, version, device_id, account_id, entity, grid_id, code,
                       field, reported_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT DO NOTHING",
                    args![
                        &p.entity_id,
                        p.version,
                        &p.device_id,
                        &p.account_id,
                        &p.entity,
                        &p.grid_id,
                        &p.code,
                        p.field.as_deref(),
                        p.reported_at_ms
                    ],
                )
                .await?;
            }
            Ok(())
        })
    }

    /// The records devices set aside, newest report first.
    pub async fn problems(&self, limit: usize) -> StoreResult<Vec<ProblemSummary>> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        run!(self, read, |c| async move {
            c.query(PROBLEMS_SQL, args![limit])
                .await?
                .iter()
                .map(|r| {
                    Ok(ProblemSummary {
                        entity: r.text(0)?,
                        entity_id: r.text(1)?,
                        grid_id: r.text(2)?,
                        version: r.int(3)?,
                        code: r.text(4)?,
                        field: r.opt_text(5)?,
                        devices: r.int(6)?,
                        first_reported_ms: r.int(7)?,
                        last_reported_ms: r.int(8)?,
                        current_version: r.opt_int(9)?,
                    })
                })
                .collect()
        })
    }

    /// Receipts stored.
    pub async fn receipt_count(&self) -> StoreResult<i64> {
        run!(self, read, |c| async move {
            c.query_one("SELECT count(*) FROM receipts", &[]).await?.int(0)
        })
    }

    /// Removes receipts stored before `before`, at most `batch` at a time
    /// (each batch its own short transaction); how many went.
    pub async fn purge_receipts(&self, before: i64, batch: usize) -> StoreResult<u64> {
        self.purge_receipts_where(before, batch, "").await
    }

    /// Removes receipts of refused operations stored before `before` (a
    /// shorter retention: the phone quarantines an operation once it has
    /// its refusal and never sends it again, and one that did not get the
    /// answer is decided again, which applies nothing twice); how many went.
    pub async fn purge_rejected_receipts(&self, before: i64, batch: usize) -> StoreResult<u64> {
        self.purge_receipts_where(before, batch, REJECTED_RECEIPT).await
    }

    async fn purge_receipts_where(&self, before: i64, batch: usize, condition: &'static str) -> StoreResult<u64> {
        let size = i64::try_from(batch).unwrap_or(i64::MAX);
        let mut total = 0;
        loop {
            let n = run!(self, write, |c| async move {
                c.execute(
                    &format!(
                        "DELETE FROM receipts WHERE op_id IN
                         (SELECT op_id FROM receipts WHERE created_at < $1 {condition} LIMIT $2)"
                    ),
                    args![before, size],
                )
                .await
            })?;
            total += n;
            if n < batch as u64 {
                return Ok(total);
            }
            // Let the phones' writes in between batches.
            tokio::task::yield_now().await;
        }
    }
}
