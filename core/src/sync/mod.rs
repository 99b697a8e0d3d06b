//! The sync engine: one [`Store::sync`] call pushes the outbox in bounded
//! batches and applies the receipts, uploads pending photos (resuming partial
//! uploads from the server's offset), pulls the changes in the worker's grids
//! page by page, and learns the offset between the phone's clock and the
//! server's.
//!
//! The engine is async, on tokio: [`Store::sync_async`] and the other
//! `*_async` calls run on the caller's runtime, and dropping their future
//! abandons the request in flight at once (what was committed stays). The
//! calls without the suffix ([`Store::sync`], [`Store::login`], …) are the
//! same calls for blocking code (the CLI, tests): they run with the
//! library's runtime ([`block_on`]), and refuse to run inside an async task.
//!
//! Invariants (SYNC.md): an operation leaves the outbox only when its receipt
//! is committed; a rejected one is quarantined with the server's reason and
//! never blocks the others; every pulled page is committed with its cursor, so
//! an interrupted sync resumes where it stopped; local unconfirmed edits stay
//! on top of pulled data.

mod apply;
mod aside;
mod conflicts;
mod evict;
mod http;
mod photos;
mod pull;
mod push;
mod retry;
mod session;
mod transport;

use std::sync::OnceLock;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

pub use aside::SetAside;
pub use http::{HttpOptions, HttpTransport};
pub use transport::{Transport, TransportError, WipeRequest};

use crate::error::{Error, Result};
use crate::store::{Store, meta_get, meta_set};
use retry::Retry;

/// Knobs of a sync. The defaults suit a phone on a mobile network.
#[derive(Clone, Debug)]
pub struct SyncOptions {
    /// Operations per push.
    pub batch_operations: usize,
    /// Approximate JSON bytes per push.
    pub batch_bytes: usize,
    /// Changes per pull page.
    pub page_limit: u32,
    /// Changes received before they are committed (with their cursor).
    pub pull_commit_changes: usize,
    /// Bytes per photo chunk.
    pub chunk_bytes: usize,
    /// Tries of one request before giving up on a transient error.
    pub max_attempts: u32,
    /// First pause between tries (doubles each time, with jitter).
    pub base_delay: Duration,
    /// Longest pause between tries.
    pub max_delay: Duration,
    /// Receive the grid's changes after sending (`false`: send only, as
    /// for a handover, before another worker's store takes the phone).
    pub receive: bool,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            batch_operations: 200,
            batch_bytes: 1024 * 1024,
            page_limit: 1_000,
            pull_commit_changes: 5_000,
            chunk_bytes: 256 * 1024,
            max_attempts: 5,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            receive: true,
        }
    }
}

/// The phase a sync is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Uploading photos.
    Photos,
    /// Sending operations.
    Push,
    /// Receiving changes.
    Pull,
}

/// Progress of a sync, reported after every step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Phase.
    pub phase: Phase,
    /// Items done in this phase (photos, operations, changes).
    pub done: u64,
    /// Items known in this phase (0 when unknown, as for pull).
    pub total: u64,
    /// Bytes sent or received in this phase.
    pub bytes: u64,
}

/// What a sync did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Photos whose upload completed.
    pub photos_uploaded: u64,
    /// Operations confirmed by the server.
    pub confirmed: u64,
    /// Operations the server refused (quarantined).
    pub rejected: u64,
    /// Changes received.
    pub pulled: u64,
    /// Changes received that this phone could not apply, set aside
    /// (`Store::set_aside`) and reported to the server.
    pub set_aside: u64,
    /// Grids whose data left the device.
    pub evicted_grids: Vec<String>,
    /// Server clock minus device clock (ms).
    pub clock_offset_ms: i64,
}

/// A place to report progress; `|_| {}` for none.
pub type ProgressSink<'a> = &'a (dyn Fn(Progress) + Sync);

/// What every step of one sync works with.
pub(super) struct Run<'a, T> {
    transport: &'a T,
    token: &'a str,
    retry: Retry<'a>,
    progress: ProgressSink<'a>,
}
impl Store {
    /// Runs one sync: push, then photos, then pull. Stops between steps when
    /// `cancel` is set, and at once when the future is dropped; everything
    /// done so far stays done.
    pub async fn sync_async(
        &self,
        transport: &impl Transport,
        options: &SyncOptions,
        progress: ProgressSink<'_>,
        cancel: &AtomicBool,
    ) -> Result<SyncReport> {
        let token = self.read(|c| meta_get(c, "token"))?.ok_or(Error::AuthExpired)?;
        let mut report = SyncReport::default();
        let run = Run {
            transport,
            token: &token,
            retry: Retry::new(options, cancel, self.clock()),
            progress,
        };

        // 1. Push, in bounded batches, until nothing is pending.
        self.push_outbox(&run, &mut report).await?;

        // 2. Grids taken away: their operations are sent; now their data leaves.
        report.evicted_grids = blocking_section(|| self.evict_revoked_grids())?;

        // 3. Photos, after the records that reference them: a photo that
        //    cannot be sent now never holds back the records, and the server
        //    shows a record complete only once its photos' hashes matched.
        self.upload_photos(&run, &mut report).await?;

        // 4. Pull. Nothing more is received by a phone that is to be wiped.
        if transport.wipe_requested().is_some() {
            tracing::warn!("the district asked for this phone to be wiped");
            return Err(Error::WipeRequested);
        }
        if !options.receive {
            return Ok(report);
        }
        blocking_section(|| self.retry_set_aside())?;
        self.pull_changes(&run, &mut report).await?;
        self.load_catalogue()?;
        self.report_set_aside(&run).await?;
        let now = self.now_ms();
        self.write(|tx| {
            meta_set(tx, "clock_offset_ms", &report.clock_offset_ms.to_string())?;
            meta_set(tx, "last_sync_at", &now.to_string())
        })?;
        tracing::info!(
            photos = report.photos_uploaded,
            confirmed = report.confirmed,
            rejected = report.rejected,
            pulled = report.pulled,
            set_aside = report.set_aside,
            "sync finished"
        );
        Ok(report)
    }

    /// [`Store::sync_async`], for blocking code.
    pub fn sync(
        &self,
        transport: &impl Transport,
        options: &SyncOptions,
        progress: ProgressSink<'_>,
        cancel: &AtomicBool,
    ) -> Result<SyncReport> {
        block_on(self.sync_async(transport, options, progress, cancel))?
    }
}

/// The library's tokio runtime: two workers, started on first use, whose
/// timers and connection pools outlive each call. The bindings run every
/// sync on it as a task; [`block_on`] drives blocking callers' futures with
/// it. `Internal` if it cannot start (no thread, no poller).
pub fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    if let Some(runtime) = RUNTIME.get() {
        return Ok(runtime);
    }
    let built = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("fieldgrid-sync")
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(format!("the sync runtime could not start: {e}")))?;
    // Another thread may have won the race: then this one is dropped.
    Ok(RUNTIME.get_or_init(|| built))
}

/// Runs `future` to completion on the calling thread, with the library's
/// [`runtime`] for its I/O and timers. For blocking code only: inside an
/// async task it is an `Internal` error (blocking there would stall the
/// task's runtime), and async code awaits the `*_async` calls instead.
pub fn block_on<F: Future>(future: F) -> Result<F::Output> {
    if tokio::runtime::Handle::try_current().is_ok() {
        return Err(Error::Internal(
            "a blocking sync call inside an async runtime: await the *_async call instead".into(),
        ));
    }
    Ok(runtime()?.block_on(future))
}

/// Store work (a page applied, receipts committed) inside the engine's
/// future: on a multi-threaded tokio runtime the other tasks move to another
/// worker meanwhile (`block_in_place`); elsewhere it simply runs.
pub(crate) fn blocking_section<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => tokio::task::block_in_place(work),
        _ => work(),
    }
}
