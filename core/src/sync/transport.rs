//! How the sync engine reaches the district server. [`super::HttpTransport`]
//! is the real one; tests of the engine may substitute their own.

use std::time::Duration;

use fieldgrid_protocol::{ChangesResponse, LoginRequest, LoginResponse, ProblemsRequest, PushRequest, PushResponse};

/// A failed exchange with the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// No connection, a reset, or a timeout: try again later.
    #[error("offline: {0}")]
    Offline(String),
    /// The server is overloaded; retry after the given time.
    #[error("server busy")]
    Overloaded {
        /// `Retry-After`, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// The session is missing or expired: sign in again.
    #[error("sign in again")]
    AuthExpired,
    /// Wrong user name or password.
    #[error("wrong user name or password")]
    BadCredentials,
    /// The server no longer speaks this app's protocol: update the app.
    #[error("protocol too old: update the app")]
    ProtocolTooOld,
    /// Not allowed for this account (a grid not assigned).
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// A photo upload offset disagreed; the server has `offset` bytes.
    #[error("resume the upload at {offset}")]
    OffsetMismatch {
        /// The server's offset.
        offset: u64,
    },
    /// Any other error answer.
    #[error("server error {status} {code}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Error code from the body.
        code: String,
    },
    /// An answer that could not be understood.
    #[error("bad response: {0}")]
    BadResponse(String),
}

impl TransportError {
    /// Worth retrying after a pause.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            TransportError::Offline(_) | TransportError::Overloaded { .. } | TransportError::BadResponse(_)
        ) || matches!(self, TransportError::Server { status, .. } if *status >= 500 || *status == 408)
    }
}

/// What the district asked of this device (the `fieldgrid-wipe` header on
/// an answer): a lost phone is wiped at once; a retired one first sends what
/// waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WipeRequest {
    /// Erase the store, its photos and its key now.
    Now,
    /// Send what waits (operations and photos), then erase.
    AfterSending,
}

/// The calls of the sync protocol, as futures that can be sent between
/// threads. Dropping a call's future abandons the request at once.
///
/// Implement the methods with `async fn`. The engine is generic over this
/// trait (a future per method, no boxing); tests of the engine substitute a
/// scripted server.
pub trait Transport: Send + Sync {
    /// `DELETE /v1/session`: ends the session on the server.
    fn logout(&self, _token: &str) -> impl Future<Output = Result<(), TransportError>> + Send {
        async { Ok(()) }
    }
    /// `POST /v1/device/wiped`: confirms a remote wipe.
    fn confirm_wiped(&self, _token: &str) -> impl Future<Output = Result<(), TransportError>> + Send {
        async { Ok(()) }
    }
    /// A wipe the server asked for in any answer so far.
    fn wipe_requested(&self) -> Option<WipeRequest> {
        None
    }
    /// `POST /v1/sync/problems`: reports records the phone set aside.
    fn report_problems(
        &self,
        _token: &str,
        _req: &ProblemsRequest,
    ) -> impl Future<Output = Result<(), TransportError>> + Send {
        async { Ok(()) }
    }
    /// `POST /v1/session`.
    fn login(&self, req: &LoginRequest) -> impl Future<Output = Result<LoginResponse, TransportError>> + Send;
    /// `POST /v1/sync/push`.
    fn push(&self, token: &str, req: &PushRequest)
    -> impl Future<Output = Result<PushResponse, TransportError>> + Send;
    /// `GET /v1/sync/changes`.
    fn changes(
        &self,
        token: &str,
        after: i64,
        limit: u32,
    ) -> impl Future<Output = Result<ChangesResponse, TransportError>> + Send;
    /// `HEAD /v1/photos/{sha256}`: bytes the server has (`None`: none).
    fn photo_offset(
        &self,
        token: &str,
        sha256: &str,
    ) -> impl Future<Output = Result<Option<u64>, TransportError>> + Send;
    /// `PATCH /v1/photos/{sha256}`: appends `chunk` at `offset`; returns the new offset.
    fn upload_chunk(
        &self,
        token: &str,
        sha256: &str,
        offset: u64,
        total: u64,
        chunk: &[u8],
    ) -> impl Future<Output = Result<u64, TransportError>> + Send;
}
