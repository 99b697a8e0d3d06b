//! An incident as the console shows it, and the conflicts the centre reads.

use fieldgrid_protocol::ConflictRecord;
use serde_json::Value;

use crate::error::ApiResult;
use crate::records::Record;
use crate::store::Store;

/// An incident as the console shows it.
#[derive(Clone, Debug)]
pub struct IncidentDetail {
    /// The incident record.
    pub incident: Record,
    /// Its timeline, oldest first.
    pub events: Vec<Record>,
    /// Its photos and its events' photos, each with whether its bytes arrived.
    pub photos: Vec<(Record, bool)>,
}

impl Store {
    /// An incident with its timeline and photos (`None` when there is none).
    pub async fn incident_detail(&self, id: &str) -> ApiResult<Option<IncidentDetail>> {
        let Some(incident) = self.record(id).await?.filter(|r| r.entity == "incident" && !r.deleted) else {
            return Ok(None);
        };
        let events = self.events_of(id).await?;
        let photos = self.incident_photos(id).await?;
        Ok(Some(IncidentDetail {
            incident,
            events,
            photos,
        }))
    }

    /// Conflicts in these grids (all with `None`).
    pub async fn conflicts(&self, grids: Option<Vec<String>>) -> ApiResult<Vec<ConflictRecord>> {
        let records = self.records_of("conflict", None).await?;
        let mut out = Vec::new();
        for rec in records {
            if grids.as_ref().is_some_and(|g| !g.contains(&rec.grid_id)) {
                continue;
            }
            let mut f = rec.fields.clone();
            f.insert("id".into(), Value::String(rec.id.clone()));
            out.push(serde_json::from_value(Value::Object(f))?);
        }
        Ok(out)
    }
}
