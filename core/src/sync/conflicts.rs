//! Conflicts the server recorded on this phone's records (SYNC.md): shown
//! to the worker until acknowledged.

use crate::error::Result;
use crate::store::Store;

impl Store {
    /// Conflicts the server recorded on a record, newest first: (field, the
    /// value in force, the value it replaced).
    pub fn conflicts_of(&self, entity_id: &str) -> Result<Vec<(String, serde_json::Value, serde_json::Value)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT field, winning_value, losing_value FROM conflicts WHERE entity_id = ?1 ORDER BY at DESC",
            )?;
            let rows = stmt.query_map([entity_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (f, w, l) = row?;
                out.push((f, serde_json::from_str(&w)?, serde_json::from_str(&l)?));
            }
            Ok(out)
        })
    }

    /// Marks a record's conflicts as seen by the worker (its status returns
    /// to its sync state).
    pub fn acknowledge_conflicts(&self, entity_id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE conflicts SET seen = 1 WHERE entity_id = ?1", [entity_id])?;
            Ok(())
        })
    }
}
