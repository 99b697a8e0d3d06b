//! The catalogue in force, and publishing a new one (refused unless newer,
//! non-empty, applicable, and keeping what was published).

use fieldgrid_domain::catalogue::Catalogue;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};
use crate::records::Record;
use crate::store::{ALL_GRIDS, CATALOGUE_ID, Store, catalogue_of};

impl Store {
    /// The catalogue in force.
    pub async fn catalogue(&self) -> ApiResult<Catalogue> {
        Ok(catalogue_of(self.record(CATALOGUE_ID).await?.as_ref()))
    }

    /// Publishes a catalogue; refused unless newer than the one in force,
    /// non-empty, with visit rules this server can apply, and keeping the
    /// checklists and fields already published (`succession_problem`).
    pub async fn publish_catalogue(&self, catalogue: &Catalogue, now: i64) -> ApiResult<()> {
        let in_force = self.catalogue().await?;
        if catalogue.version <= in_force.version || catalogue.categories.is_empty() {
            return Err(ApiError::bad_request(format!(
                "publish a non-empty catalogue newer than version {}",
                in_force.version
            )));
        }
        if let Some(problem) = catalogue.problem() {
            return Err(ApiError::bad_request(problem));
        }
        if let Some(problem) = catalogue.succession_problem(&in_force) {
            return Err(ApiError::bad_request(problem));
        }
        let Value::Object(fields) = serde_json::to_value(catalogue)? else {
            return Err(ApiError::internal("catalogue did not serialise"));
        };
        let version = self.record(CATALOGUE_ID).await?.map_or(1, |r| r.version + 1);
        let record = Record {
            id: CATALOGUE_ID.into(),
            entity: "catalogue".into(),
            grid_id: ALL_GRIDS.into(),
            version,
            deleted: false,
            fields,
            field_versions: serde_json::Map::new(),
        };
        Ok(self.save_records(vec![record], now).await?)
    }
}
