//! The FieldGrid reference district server.
//!
//! Speaks the sync protocol of `fieldgrid-protocol` over HTTP (axum on
//! tokio): accounts and grids, scoped push and pull, photo blobs, the
//! centre's dispatch, lists and statistics. Storage is one layer with two
//! engines (`store/`): SQLite in a data folder by default, PostgreSQL for a
//! district past one machine. What a device may write is decided by the
//! core's rules, the very code devices run (`decide.rs`).

pub mod accounts;
pub mod admin;
pub mod auth;
pub mod bulk;
pub mod caller;
pub mod centre;
pub mod cli;
pub mod console;
pub mod decide;
pub mod error;
pub mod parse_errors;
pub mod photos;
pub mod records;
pub mod repair;
pub mod service;
pub mod store;
pub mod sync;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, head, post};
use fieldgrid_protocol::{PROTOCOL_HEADER, PROTOCOL_VERSION, codes, limits};
use tokio::sync::Semaphore;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::ApiError;
use crate::store::{Location, Store};

/// The log filter of every subscriber that carries the server's logs:
/// `level` for everything, but the PostgreSQL driver at INFO at most (at
/// DEBUG it logs each statement's parameters, which carry residents'
/// personal data). `fieldgrid-server`, `fieldgrid` and the test suite's
/// log capture all use it.
pub fn log_filter(level: tracing::Level) -> tracing_subscriber::filter::Targets {
    tracing_subscriber::filter::Targets::new()
        .with_default(level)
        .with_target("tokio_postgres", tracing::Level::INFO.min(level))
        .with_target("postgres", tracing::Level::INFO.min(level))
}

/// Installs the process's log subscriber: human-readable lines on stderr at
/// INFO, through [`log_filter`].
pub fn init_logging() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .finish()
        .with(log_filter(tracing::Level::INFO))
        .try_init();
}

/// Server settings.
#[derive(Clone)]
pub struct Config {
    /// Folder holding `photos/` and, without a database URL, `server.db`.
    pub data_dir: PathBuf,
    /// A PostgreSQL database instead of the data folder's SQLite file.
    pub database_url: Option<String>,
    /// Lifetime of a session token.
    pub token_ttl_ms: i64,
    /// Requests handled at once; more get 429 with `Retry-After`.
    pub max_in_flight: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// How long receipts are kept for repeats (at least 90 days).
    pub receipt_retention_ms: i64,
    /// How long a client may take to send a request's headers.
    pub header_timeout: Duration,
    /// How long a client without a session may take to send a request's
    /// body (a sign-in): it holds no request slot meanwhile.
    pub body_timeout: Duration,
    /// The server clock (tests move it).
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
    /// The console map's tiles (`https://host/{z}/{x}/{y}.png`), if any.
    pub map_tiles: Option<String>,
    /// The console's cookie is sent over HTTPS only.
    pub secure_cookies: bool,
    /// Proxies in front of the server (an HTTPS proxy): for a request from
    /// one of them, the client address is the last one `X-Forwarded-For`
    /// names that is not one of them. From anyone else the header is
    /// ignored (it could say anything).
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Bytes of finished photo uploads one account may send in a day
    /// (a busy worker sends about 150 MB).
    pub photo_bytes_per_day: i64,
}

/// The shortest receipt retention allowed: a phone offline for a season
/// still gets its original answers.
pub const MIN_RECEIPT_RETENTION_MS: i64 = 90 * 24 * 3_600_000;

impl Config {
    /// Defaults for a data folder: 12-hour tokens, 256 requests at once, 30 s
    /// timeout, receipts kept 180 days.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            database_url: None,
            token_ttl_ms: 12 * 3_600_000,
            max_in_flight: 256,
            request_timeout: Duration::from_secs(30),
            receipt_retention_ms: 2 * MIN_RECEIPT_RETENTION_MS,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(10),
            clock: Arc::new(|| chrono::Utc::now().timestamp_millis()),
            map_tiles: None,
            secure_cookies: false,
            trusted_proxies: Vec::new(),
            photo_bytes_per_day: 2 * 1024 * 1024 * 1024,
        }
    }

    /// Where the data is.
    pub fn location(&self) -> Location {
        store::location(&self.data_dir, self.database_url.as_deref())
    }
}

/// State shared by the handlers.
pub struct AppState {
    /// The storage.
    pub store: Store,
    /// Settings.
    pub config: Config,
    /// Folder of photo blobs.
    pub photo_dir: PathBuf,
    /// Request slots of requests whose token was verified.
    in_flight: Semaphore,
    /// Token look-ups under way before a request takes a slot.
    verifying: Semaphore,
    /// Request slots of requests that do not (sign-ins, health): a flood of
    /// them, stalled bodies included, cannot take the slots signed-in
    /// phones need.
    anonymous: Semaphore,
}

impl AppState {
    /// Server time now (ms).
    pub fn now_ms(&self) -> i64 {
        (self.config.clock)()
    }
}

/// Answers 429 with `Retry-After` when too many requests are in flight.
/// A request takes a signed-in slot only once its token (a bearer token or
/// the console's cookie) is verified: a made-up token is anonymous. An
/// anonymous request (a sign-in) has its body read, within
/// [`Config::body_timeout`] and [`ANONYMOUS_BODY_MAX`], before it takes one
/// of the few anonymous slots: a body that never finishes holds a
/// connection, never a slot, and is cut off at the deadline.
async fn shed_load(State(state): State<Arc<AppState>>, mut request: Request, next: Next) -> Response {
    let token = auth::bearer(request.headers())
        .map(|t| (t.to_owned(), true))
        .or_else(|| console::cookie_token(request.headers()).map(|t| (t, false)));
    let mut signed_in = false;
    if let Some((token, bearer)) = token {
        // The look-up itself is bounded: headers are complete here, so a
        // slow client cannot hold one of these.
        let Ok(_checking) = state.verifying.try_acquire() else {
            return overloaded();
        };
        match auth::Caller::of_token(&state, &token).await {
            Ok(caller) => {
                signed_in = true;
                if bearer {
                    request.extensions_mut().insert(auth::Verified(caller));
                }
            }
            // A bearer token that is not a session's is answered now (a
            // phone signs in again); a stale console cookie goes on as
            // anonymous, to the sign-in page.
            Err(e) if bearer => return axum::response::IntoResponse::into_response(e),
            Err(_) => {}
        }
    }
    if signed_in {
        return match state.in_flight.try_acquire() {
            Ok(_permit) => next.run(request).await,
            Err(_) => overloaded(),
        };
    }
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(
        state.config.body_timeout,
        axum::body::to_bytes(body, ANONYMOUS_BODY_MAX),
    )
    .await;
    let bytes = match read {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(e)) => {
            return axum::response::IntoResponse::into_response(error::body_error(e, ANONYMOUS_BODY_MAX));
        }
        Err(_) => {
            return axum::response::IntoResponse::into_response(ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                codes::TIMEOUT,
                "the request body did not arrive in time",
            ));
        }
    };
    let request = Request::from_parts(parts, axum::body::Body::from(bytes));
    match state.anonymous.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => overloaded(),
    }
}

/// The largest body of a request without a session (a sign-in form).
pub const ANONYMOUS_BODY_MAX: usize = 64 * 1024;

fn overloaded() -> Response {
    let mut e = ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        codes::OVERLOADED,
        "the server is busy: retry shortly",
    );
    e.retry_after = Some(1);
    axum::response::IntoResponse::into_response(e)
}

/// Adds the `fieldgrid-wipe` header to every answer to a device that is to
/// be wiped (the `Caller` extractor learns it from the session).
async fn wipe_signal(mut request: Request, next: Next) -> Response {
    let signal = auth::WipeSignal::default();
    request.extensions_mut().insert(signal.clone());
    let mut response = next.run(request).await;
    let mode = *signal.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(mode) = mode {
        let value = match mode {
            store::WipeMode::Wipe => "wipe",
            store::WipeMode::SendThenWipe => "send-then-wipe",
        };
        response.headers_mut().insert(
            fieldgrid_protocol::WIPE_HEADER,
            axum::http::HeaderValue::from_static(value),
        );
    }
    response
}

/// Refuses a request that names a protocol version other than this
/// server's (426 `protocol_too_old`, docs/protocol.md). A request without
/// the header is taken as version 1.
async fn protocol_version(request: Request, next: Next) -> Response {
    if request.headers().get_all(PROTOCOL_HEADER).iter().nth(1).is_some() {
        return axum::response::IntoResponse::into_response(ApiError::bad_request(format!(
            "one {PROTOCOL_HEADER} header, not several"
        )));
    }
    match request.headers().get(PROTOCOL_HEADER) {
        Some(v) if v.to_str().ok().and_then(|v| v.trim().parse::<u32>().ok()) != Some(PROTOCOL_VERSION) => {
            axum::response::IntoResponse::into_response(ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                codes::PROTOCOL_TOO_OLD,
                format!("this server speaks protocol {PROTOCOL_VERSION} only: update the app"),
            ))
        }
        _ => next.run(request).await,
    }
}

/// Opens the storage and the photo folder and builds the state.
pub async fn open_state(config: Config) -> Result<Arc<AppState>, String> {
    if config.receipt_retention_ms < MIN_RECEIPT_RETENTION_MS {
        return Err("receipts are kept at least 90 days".into());
    }
    private_dir(&config.data_dir)?;
    let store = Store::open(&config.location(), config.request_timeout).await?;
    let photo_dir = config.data_dir.join("photos");
    let partial = photos::partial_dir(&photo_dir);
    std::fs::create_dir_all(&partial).map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    // Only the server's user reads what it keeps: the folders (and so every
    // photo in them) and the database file (SQLite gives its WAL the same).
    for dir in [&photo_dir, &partial] {
        private_dir(dir)?;
    }
    let db = config.data_dir.join("server.db");
    if db.exists() {
        set_mode(&db, 0o600)?;
    }
    Ok(Arc::new(AppState {
        store,
        in_flight: Semaphore::new(config.max_in_flight),
        verifying: Semaphore::new(config.max_in_flight.max(16)),
        anonymous: Semaphore::new((config.max_in_flight / 8).max(16)),
        photo_dir,
        config,
    }))
}

/// Creates `dir` if needed, readable by the server's user only.
fn private_dir(dir: &std::path::Path) -> Result<(), String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    set_mode(dir, 0o700)
}

fn set_mode(path: &std::path::Path, mode: u32) -> Result<(), String> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))
}

/// Housekeeping while the server runs, off the phones' path: unfinished
/// photo uploads left alone expire, receipts past their retention go (in
/// small batches, each its own short transaction). Hourly, and at start.
async fn maintain(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        if let Err(e) = photos::expire_uploads(&state.store, &state.photo_dir, state.now_ms()).await {
            tracing::warn!(code = e.code, "upload expiry failed; tried again in an hour");
        }
        let before = state.now_ms() - state.config.receipt_retention_ms;
        match state.store.purge_receipts(before, 5_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(receipts = n, "receipts past their retention removed"),
            Err(e) => tracing::warn!(error = %e, "receipt purge failed; tried again in an hour"),
        }
        let before = state.now_ms() - store::REJECTED_RECEIPT_RETENTION_MS;
        match state.store.purge_rejected_receipts(before, 5_000).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                receipts = n,
                "receipts of refused operations past their retention removed"
            ),
            Err(e) => tracing::warn!(error = %e, "receipt purge failed; tried again in an hour"),
        }
    }
}

/// Serves the protocol on `listener` until `shutdown` completes. Each
/// connection is HTTP/1.1 with a header read timeout (a client that sends
/// its headers slowly is cut off); each request knows its client address.
/// The answers hyper writes by itself are JSON ([`parse_errors`]).
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower::ServiceExt;
    let housekeeping = tokio::spawn(maintain(state.clone()));
    let header_timeout = state.config.header_timeout;
    let trusted_proxies: Arc<[std::net::IpAddr]> = state.config.trusted_proxies.clone().into();
    let app = router(state);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, go on.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let proxies = trusted_proxies.clone();
        let service = app
            .clone()
            .map_request(move |mut request: axum::http::Request<hyper::body::Incoming>| {
                let ip = auth::ClientAddr(client_address(peer.ip(), request.headers(), &proxies));
                request.extensions_mut().insert(axum::Extension(ip));
                request.extensions_mut().insert(ip);
                request
            });
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new()).header_read_timeout(header_timeout);
        let connection = http.serve_connection(
            TokioIo::new(parse_errors::JsonErrors::new(stream)),
            hyper_util::service::TowerToHyperService::new(service),
        );
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _ = connection.await;
        });
    }
    drop(listener);
    // Requests in flight finish (up to the request timeout).
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(Duration::from_secs(30)) => {}
    }
    housekeeping.abort();
    Ok(())
}

/// The client address of a request from `peer`: the peer itself, unless
/// it is a trusted proxy; then the last address of `X-Forwarded-For` that is
/// not a trusted proxy (each proxy appends the address it got the request
/// from, so addresses before that one are the client's own say).
pub fn client_address(
    peer: std::net::IpAddr,
    headers: &axum::http::HeaderMap,
    trusted: &[std::net::IpAddr],
) -> std::net::IpAddr {
    if !trusted.contains(&peer) {
        return peer;
    }
    let mut forwarded: Vec<std::net::IpAddr> = Vec::new();
    for value in headers.get_all("x-forwarded-for") {
        let Ok(text) = value.to_str() else { return peer };
        for part in text.split(',') {
            match part.trim().parse() {
                Ok(ip) => forwarded.push(ip),
                Err(_) => return peer,
            }
        }
    }
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !trusted.contains(ip))
        .unwrap_or(peer)
}

/// Every route: the protocol and the console.
pub fn router(state: Arc<AppState>) -> Router {
    let console = console::router(state.clone())
        .layer(middleware::from_fn_with_state(state.clone(), shed_load))
        // Each route bounds what its extractors read (64 KiB, or an
        // action's photos); this caps any body on the wire.
        .layer(RequestBodyLimitLayer::new(console::MAX_BODY))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ));
    // Anything else is the protocol's JSON 404 (the merged router's own
    // fallback would be a bare one).
    api_router(state)
        .merge(console)
        .fallback(|| async { ApiError::not_found("no such endpoint") })
}

/// Every route of the protocol.
fn api_router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/health", get(|| async { "ok" }))
        .route("/v1/session", post(auth::login).delete(auth::logout))
        .route("/v1/device/wiped", post(auth::device_wiped))
        .route("/v1/accounts", get(accounts::list))
        .route("/v1/accounts/{id}/disable", post(accounts::disable))
        .route("/v1/accounts/{id}/enable", post(accounts::enable))
        .route("/v1/accounts/{id}/password", post(accounts::reset_password))
        .route("/v1/accounts/{id}/devices", get(accounts::devices))
        .route("/v1/accounts/{id}/devices/{device}/revoke", post(accounts::revoke))
        .route("/v1/accounts/{id}/devices/{device}/wipe", post(accounts::wipe))
        .route("/v1/audit", get(accounts::audit))
        .route("/v1/department/incidents", get(centre::department_incidents))
        .route("/v1/department/incidents/{id}/events", post(centre::department_event))
        .route("/v1/sync/push", post(sync::push))
        .route("/v1/sync/changes", get(sync::changes))
        .route("/v1/sync/problems", post(sync::problems))
        .route(
            "/v1/photos/{sha256}",
            head(photos::head)
                .get(photos::get)
                .patch(photos::patch)
                .layer(DefaultBodyLimit::max(limits::PHOTO_MAX_CHUNK)),
        )
        .route("/v1/conflicts", get(centre::conflicts))
        .route("/v1/centre/incidents", get(centre::incidents))
        .route("/v1/centre/incidents/{id}/events", post(centre::add_event))
        .route("/v1/centre/stats", get(centre::stats))
        .route("/v1/centre/problems", get(centre::problems))
        .route("/v1/centre/coverage", get(centre::coverage))
        .layer(middleware::from_fn(wipe_signal))
        .layer(middleware::from_fn_with_state(state.clone(), shed_load))
        .layer(middleware::from_fn(protocol_version))
        // Inside the wire limit: bodies are decompressed as they are read,
        // and each endpoint bounds what it reads (a push: 4 MiB of JSON).
        .layer(RequestDecompressionLayer::new())
        // The wire: 5 MiB per request, whatever its encoding.
        .layer(RequestBodyLimitLayer::new(limits::REQUEST_MAX_BYTES))
        .layer(CompressionLayer::new())
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            state.config.request_timeout,
        ))
        .layer(middleware::from_fn(error::json_errors))
        .with_state(state)
}

/// A server running on its own runtime (tests, the demo, the CLI).
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (for administration while it runs).
    pub state: Arc<AppState>,
    runtime: Option<tokio::runtime::Runtime>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl RunningServer {
    /// Starts a server on `listen` (port 0 picks a free one) on a runtime of
    /// its own.
    pub fn start(config: Config, listen: SocketAddr) -> Result<RunningServer, String> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let state = runtime.block_on(open_state(config))?;
        let listener = std::net::TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let serving = state.clone();
        runtime.spawn(async move {
            let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                return;
            };
            let _ = serve(serving, listener, async move {
                let _ = rx.await;
            })
            .await;
        });
        Ok(RunningServer {
            addr,
            state,
            runtime: Some(runtime),
            shutdown: Some(tx),
        })
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Blocking administration of the running server's storage.
    pub fn admin(&self) -> admin::Admin<'_> {
        admin::Admin::new(
            &self.state.store,
            self.runtime.as_ref().map(tokio::runtime::Runtime::handle),
        )
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(5));
        }
    }
}
