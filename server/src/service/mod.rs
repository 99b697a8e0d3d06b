//! Policy above storage: what the centre's figures and the catalogue mean,
//! computed from what `store` reads and keeps. Storage says nothing of
//! HTTP; this layer answers in API errors, and the handlers stay thin.

mod catalogue;
mod coverage;
mod incidents;
mod push;
pub mod statistics;

pub use incidents::IncidentDetail;
pub use statistics::Period;

use crate::error::ApiError;

/// Storage's failures as answers: the one place they are mapped (storage
/// itself says nothing of HTTP).
impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        use crate::store::StoreError;
        use axum::http::StatusCode;
        use fieldgrid_protocol::codes;
        match e {
            StoreError::Stopped => ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                codes::TIMEOUT,
                "the request took too long or was abandoned, and was stopped",
            ),
            StoreError::Refused(why) => ApiError::bad_request(why),
            StoreError::Internal(what) => ApiError::internal(what),
        }
    }
}

impl crate::store::Stoppable for ApiError {
    fn stopped(&self) -> bool {
        self.code == fieldgrid_protocol::codes::TIMEOUT
    }
}
