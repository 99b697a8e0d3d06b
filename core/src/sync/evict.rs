//! Grids taken away from the worker: their data leaves the phone once none
//! of their operations waits to be sent.

use crate::entity::{self, Entity};
use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Removes the data of grids no longer assigned, once none of their
    /// operations waits to be sent.
    pub(super) fn evict_revoked_grids(&self) -> Result<Vec<String>> {
        let revoked: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM grids WHERE revoked = 1")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let mut evicted = Vec::new();
        for grid in revoked {
            let done = self.write(|tx| {
                let in_grid: Vec<String> = Entity::ALL
                    .into_iter()
                    .filter(|&e| entity::has_grid(e))
                    .map(|e| format!("SELECT id FROM {} WHERE grid_id = ?1", entity::table(e)))
                    .collect();
                let waiting: i64 = tx.query_row(
                    &format!(
                        "SELECT count(*) FROM outbox o WHERE o.state <> 'rejected' AND o.entity_id IN ({})",
                        in_grid.join(" UNION ALL ")
                    ),
                    [&grid],
                    |r| r.get(0),
                )?;
                if waiting > 0 {
                    return Ok(false);
                }
                tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS gone (id TEXT PRIMARY KEY); DELETE FROM gone;")?;
                for select in &in_grid {
                    tx.execute(&format!("INSERT OR IGNORE INTO gone {select}"), [&grid])?;
                }
                tx.execute("INSERT OR IGNORE INTO gone SELECT id FROM incident_events WHERE incident_id IN (SELECT id FROM gone)", [])?;
                tx.execute_batch(
                    "DELETE FROM resident_name_grams WHERE rid IN (SELECT rid FROM residents WHERE id IN (SELECT id FROM gone));
                     DELETE FROM resident_tags WHERE rid IN (SELECT rid FROM residents WHERE id IN (SELECT id FROM gone));
                     DELETE FROM photos WHERE owner_id IN (SELECT id FROM gone);
                     DELETE FROM record_extra WHERE id IN (SELECT id FROM gone);
                     DELETE FROM outbox WHERE entity_id IN (SELECT id FROM gone);
                     DELETE FROM conflicts WHERE entity_id IN (SELECT id FROM gone);
                     DELETE FROM incident_events WHERE id IN (SELECT id FROM gone);
                     DELETE FROM residents WHERE id IN (SELECT id FROM gone);
                     DELETE FROM households WHERE id IN (SELECT id FROM gone);
                     DELETE FROM incidents WHERE id IN (SELECT id FROM gone);
                     DELETE FROM service_logs WHERE id IN (SELECT id FROM gone);
                     DELETE FROM inspections WHERE id IN (SELECT id FROM gone);
                     DELETE FROM places WHERE id IN (SELECT id FROM gone);
                     DELETE FROM gone;",
                )?;
                tx.execute("DELETE FROM set_aside WHERE grid_id = ?1", [&grid])?;
                tx.execute("DELETE FROM grids WHERE id = ?1", [&grid])?;
                Ok(true)
            })?;
            if done {
                tracing::info!("grid data evicted");
                evicted.push(grid);
            }
        }
        if !evicted.is_empty() {
            self.collect_orphan_photos()?;
        }
        Ok(evicted)
    }
}
