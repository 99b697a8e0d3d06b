//! The FieldGrid reference district server.
//!
//! Speaks the sync protocol of `fieldgrid-protocol` over HTTP (axum on
//! tokio), storing in SQLite (WAL) under a data folder: accounts and grids,
//! scoped push and pull, photo blobs, the centre's dispatch and statistics.
//! Validation uses the core's rules, the very code devices run.

pub mod auth;
pub mod catalogue;
pub mod centre;
pub mod cli;
pub mod db;
pub mod error;
pub mod photos;
pub mod records;
pub mod sync;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, head, post};
use fieldgrid_protocol::{PROTOCOL_HEADER, PROTOCOL_VERSION, codes, limits};
use rusqlite::Connection;
use tokio::sync::Semaphore;
use tower_http::compression::CompressionLayer;
use tower_http::decompression::RequestDecompressionLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::{ApiError, ApiResult};

/// Server settings.
#[derive(Clone)]
pub struct Config {
    /// Folder holding `server.db` and `photos/`.
    pub data_dir: PathBuf,
    /// Lifetime of a session token.
    pub token_ttl_ms: i64,
    /// Requests handled at once; more get 429 with `Retry-After`.
    pub max_in_flight: usize,
    /// Longest a request may take.
    pub request_timeout: Duration,
    /// The server clock (tests move it).
    pub clock: Arc<dyn Fn() -> i64 + Send + Sync>,
}

impl Config {
    /// Defaults for a data folder: 12-hour tokens, 256 requests at once, 30 s timeout.
    pub fn new(data_dir: impl Into<PathBuf>) -> Config {
        Config {
            data_dir: data_dir.into(),
            token_ttl_ms: 12 * 3_600_000,
            max_in_flight: 256,
            request_timeout: Duration::from_secs(30),
            clock: Arc::new(|| chrono::Utc::now().timestamp_millis()),
        }
    }
}

/// State shared by the handlers.
pub struct AppState {
    db: Mutex<Connection>,
    /// Settings.
    pub config: Config,
    /// Folder of photo blobs.
    pub photo_dir: PathBuf,
    in_flight: Semaphore,
    /// Database calls stopped because their request was abandoned (timed
    /// out, or the client went away): never started, or interrupted by
    /// SQLite mid-way.
    pub stopped_calls: AtomicU64,
}

impl AppState {
    /// Server time now (ms).
    pub fn now_ms(&self) -> i64 {
        (self.config.clock)()
    }
}

/// Where a database call stands, for a request that gives up on it.
enum Call {
    /// Waiting for the connection.
    Waiting,
    /// Running on the connection, which this handle interrupts.
    Running(rusqlite::InterruptHandle),
    /// Finished, or never to start.
    Over,
}

/// Stops a call's database work when the request future is dropped before
/// the call finished (a 408 from the timeout layer, a client gone): a call
/// not yet started never starts; one running is interrupted (SQLite stops at
/// its next step and the transaction rolls back).
struct StopOnDrop {
    call: Arc<Mutex<Call>>,
    state: Arc<AppState>,
}

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        let mut call = self.call.lock().unwrap_or_else(PoisonError::into_inner);
        match std::mem::replace(&mut *call, Call::Over) {
            Call::Waiting => {
                self.state.stopped_calls.fetch_add(1, Ordering::Relaxed);
            }
            Call::Running(handle) => {
                // Still under the lock: the call cannot finish and hand the
                // connection to another request before this lands.
                handle.interrupt();
                tracing::info!("request abandoned: its database work is interrupted");
            }
            Call::Over => {}
        }
    }
}

/// Runs `f` on the database connection on a blocking thread. If the request
/// is abandoned meanwhile, the work stops (see [`StopOnDrop`]).
pub async fn db_call<T, F>(state: &Arc<AppState>, f: F) -> ApiResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut Connection) -> ApiResult<T> + Send + 'static,
{
    let call = Arc::new(Mutex::new(Call::Waiting));
    let guard = StopOnDrop {
        call: call.clone(),
        state: state.clone(),
    };
    let worker = state.clone();
    let result = tokio::task::spawn_blocking(move || {
        let mut conn = worker.db.lock().unwrap_or_else(PoisonError::into_inner);
        {
            let mut c = call.lock().unwrap_or_else(PoisonError::into_inner);
            if !matches!(*c, Call::Waiting) {
                return Err(ApiError::new(
                    StatusCode::REQUEST_TIMEOUT,
                    codes::TIMEOUT,
                    "the request was abandoned",
                ));
            }
            *c = Call::Running(conn.get_interrupt_handle());
        }
        let result = f(&mut conn);
        *call.lock().unwrap_or_else(PoisonError::into_inner) = Call::Over;
        if result.as_ref().is_err_and(|e| e.code == codes::TIMEOUT) {
            worker.stopped_calls.fetch_add(1, Ordering::Relaxed);
        }
        result
    })
    .await;
    drop(guard);
    result.map_err(ApiError::internal)?
}

/// Answers 429 with `Retry-After` when too many requests are in flight.
async fn shed_load(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    match state.in_flight.try_acquire() {
        Ok(_permit) => next.run(request).await,
        Err(_) => {
            let mut e = ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                codes::OVERLOADED,
                "the server is busy: retry shortly",
            );
            e.retry_after = Some(1);
            axum::response::IntoResponse::into_response(e)
        }
    }
}

/// Refuses a request that names a protocol version other than this
/// server's (426 `protocol_too_old`, docs/protocol.md). A request without
/// the header is taken as version 1.
async fn protocol_version(request: Request, next: Next) -> Response {
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

/// Opens the data folder and builds the state.
pub fn open_state(config: Config) -> Result<Arc<AppState>, String> {
    let conn = db::open(&config.data_dir).map_err(|e| format!("cannot open the database: {e}"))?;
    let photo_dir = config.data_dir.join("photos");
    std::fs::create_dir_all(&photo_dir).map_err(|e| format!("cannot create {}: {e}", photo_dir.display()))?;
    let partial = photos::partial_dir(&photo_dir);
    std::fs::create_dir_all(&partial).map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
    Ok(Arc::new(AppState {
        db: Mutex::new(conn),
        in_flight: Semaphore::new(config.max_in_flight),
        photo_dir,
        config,
        stopped_calls: AtomicU64::new(0),
    }))
}

/// Housekeeping while the server runs: unfinished photo uploads left alone
/// expire (hourly, and at start).
async fn maintain(state: Arc<AppState>) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tick.tick().await;
        let dir = state.photo_dir.clone();
        let now = state.now_ms();
        if let Err(e) = db_call(&state, move |conn| photos::expire_uploads(conn, &dir, now)).await {
            tracing::warn!(code = e.code, "upload expiry failed; retried in an hour");
        }
    }
}

/// Serves the protocol on `listener` until `shutdown` completes.
pub async fn serve(
    state: Arc<AppState>,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let housekeeping = tokio::spawn(maintain(state.clone()));
    let served = axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await;
    housekeeping.abort();
    served
}

/// Every route of the protocol.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/v1/health", get(|| async { "ok" }))
        .route("/v1/session", post(auth::login))
        .route("/v1/sync/push", post(sync::push))
        .route("/v1/sync/changes", get(sync::changes))
        .route(
            "/v1/photos/{sha256}",
            head(photos::head)
                .patch(photos::patch)
                .layer(DefaultBodyLimit::max(limits::PHOTO_MAX_CHUNK)),
        )
        .route("/v1/conflicts", get(centre::conflicts))
        .route("/v1/centre/incidents", get(centre::incidents))
        .route("/v1/centre/incidents/{id}/events", post(centre::add_event))
        .route("/v1/centre/stats", get(centre::stats))
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

/// A server running on a background runtime (tests, the demo, the CLI).
pub struct RunningServer {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state (for administration while it runs).
    pub state: Arc<AppState>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningServer {
    /// Starts a server on `listen` (port 0 picks a free one) in its own thread.
    pub fn start(config: Config, listen: SocketAddr) -> Result<RunningServer, String> {
        let state = open_state(config)?;
        let listener = std::net::TcpListener::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| e.to_string())?;
        let addr = listener.local_addr().map_err(|e| e.to_string())?;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let state_for_thread = state.clone();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(listener) else {
                    return;
                };
                let _ = serve(state_for_thread, listener, async move {
                    let _ = rx.await;
                })
                .await;
            });
        });
        Ok(RunningServer {
            addr,
            state,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// Base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs an administrative change on the database.
    pub fn admin<T>(&self, f: impl FnOnce(&Connection) -> T) -> T {
        let conn = self.state.db.lock().unwrap_or_else(PoisonError::into_inner);
        f(&conn)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
