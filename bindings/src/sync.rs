//! [`SyncClient`]: signs in and syncs a store with the district server.
//!
//! `login` and `sync` are async (a `suspend fun` in Kotlin, `async` in Swift)
//! and run the core's async engine as a task on tokio: the caller's thread is
//! never held while a request is out. Cancelling the caller's task (or calling
//! `cancel`) stops the sync at once, abandoning a request in flight;
//! everything committed so far stays.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::task::AbortHandle;

use fieldgrid_core::Grid;
use fieldgrid_core::sync::{HttpOptions, HttpTransport, Phase, Progress, SyncOptions, runtime};
use fieldgrid_protocol::Role;

use crate::error::{FieldGridError, Result, guard, panicked};
use crate::store::FieldGridStore;

/// How to reach the server, and the sync's limits. The defaults suit a phone
/// on a mobile network.
#[derive(uniffi::Record, Clone, Debug)]
pub struct SyncSettings {
    /// `https://…` (or `http://` to a loopback address, for tests).
    pub server_url: String,
    /// The district's CA certificate (PEM): when given, only certificates it
    /// issued are trusted.
    #[uniffi(default)]
    pub pinned_ca_pem: Option<String>,
    /// Longest one request may take, in milliseconds.
    #[uniffi(default = 30000)]
    pub request_timeout_ms: u64,
    /// Tries of one request before giving up with `Offline`.
    #[uniffi(default = 5)]
    pub max_attempts: u32,
    /// Operations sent per request.
    #[uniffi(default = 200)]
    pub batch_operations: u32,
}

/// The sync phase a progress report is about.
#[derive(uniffi::Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncPhase {
    /// Sending captured records.
    Push,
    /// Uploading photos.
    Photos,
    /// Receiving changes (dispatches, deadlines, other workers' edits).
    Pull,
}

/// Progress of a sync, reported after every step.
#[derive(uniffi::Record, Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncProgress {
    /// Phase.
    pub phase: SyncPhase,
    /// Items done in this phase.
    pub done: u64,
    /// Items known in this phase (0 when unknown, as for pull).
    pub total: u64,
    /// Bytes sent or received in this phase.
    pub bytes: u64,
}

impl From<Progress> for SyncProgress {
    fn from(p: Progress) -> Self {
        SyncProgress {
            phase: match p.phase {
                Phase::Push => SyncPhase::Push,
                Phase::Photos => SyncPhase::Photos,
                Phase::Pull => SyncPhase::Pull,
            },
            done: p.done,
            total: p.total,
            bytes: p.bytes,
        }
    }
}

/// Receives sync progress. Called on a background thread: keep it quick
/// (post to the UI) and never throw from it.
#[uniffi::export(with_foreign)]
pub trait SyncListener: Send + Sync {
    /// One step done.
    fn on_progress(&self, progress: SyncProgress);
}

/// What a sync did.
#[derive(uniffi::Record, Clone, Debug, PartialEq, Eq)]
pub struct SyncReport {
    /// Photos whose upload completed.
    pub photos_uploaded: u64,
    /// Operations the server confirmed.
    pub confirmed: u64,
    /// Operations the server refused (their records show why).
    pub rejected: u64,
    /// Changes received.
    pub pulled: u64,
    /// Changes received that this phone could not apply: set aside (kept,
    /// tried again at each sync) and reported to the district, which
    /// repairs them. Nothing else waits on them.
    pub set_aside: u64,
    /// Grids taken from this worker, whose data left the phone.
    pub evicted_grids: Vec<String>,
    /// Server clock minus phone clock, ms.
    pub clock_offset_ms: i64,
}

/// A signed-in session.
#[derive(uniffi::Record, Clone, Debug)]
pub struct Session {
    /// The worker's account id.
    pub account_id: String,
    /// `worker` or `operator`.
    pub role: String,
    /// Grids assigned.
    pub grids: Vec<Grid>,
    /// When the session expires (server time, ms); sign in again after.
    pub expires_at_ms: i64,
}

/// Signs in and syncs one store with one server.
#[derive(uniffi::Object)]
pub struct SyncClient {
    store: Arc<FieldGridStore>,
    transport: Arc<HttpTransport>,
    options: SyncOptions,
    cancel: Arc<AtomicBool>,
    /// The task of the running sync, for `cancel`.
    running: Mutex<Option<AbortHandle>>,
}

#[uniffi::export(async_runtime = "tokio")]
impl SyncClient {
    /// A client for `store`. A bad URL (or `http://` to anything but this
    /// machine) is a `Validation` error on `server_url`.
    #[uniffi::constructor]
    pub fn new(store: Arc<FieldGridStore>, settings: SyncSettings) -> Result<Arc<SyncClient>> {
        guard(|| {
            let http = HttpOptions {
                timeout: Duration::from_millis(settings.request_timeout_ms.max(1)),
                pinned_ca_pem: settings.pinned_ca_pem.map(String::into_bytes),
            };
            let transport = HttpTransport::new(&settings.server_url, &http)?;
            let options = SyncOptions {
                max_attempts: settings.max_attempts.max(1),
                batch_operations: settings.batch_operations.clamp(1, 1_000) as usize,
                ..SyncOptions::default()
            };
            Ok(Arc::new(SyncClient {
                store,
                transport: Arc::new(transport),
                options,
                cancel: Arc::new(AtomicBool::new(false)),
                running: Mutex::new(None),
            }))
        })
    }

    /// Signs in; the session is kept in the store until it expires or
    /// `logout`. `BadCredentials` for a wrong password, `Offline` without a network.
    pub async fn login(&self, username: String, password: String) -> Result<Session> {
        let store = self.store.core()?;
        let transport = self.transport.clone();
        task(async move {
            let resp = store.login_async(&*transport, &username, &password).await?;
            Ok(Session {
                account_id: resp.account_id,
                role: match resp.role {
                    Role::Worker => "worker",
                    Role::Operator => "operator",
                    Role::Department => "department",
                    Role::Admin => "admin",
                }
                .to_owned(),
                // The grids assigned now (the store still lists one taken
                // away until its data has left the phone).
                grids: resp.grids.iter().map(Grid::from).collect(),
                expires_at_ms: resp.expires_at_ms,
            })
        })
        .await
    }

    /// Forgets the session (captured data stays, and waits for the next sign-in).
    pub fn logout(&self) -> Result<()> {
        guard(|| Ok(self.store.core()?.logout()?))
    }

    /// Sends what was captured, uploads photos, receives changes. One sync
    /// runs at a time per store (`Conflict` otherwise). `AuthExpired` means
    /// sign in again; `Offline` means try later; nothing is lost either way.
    #[uniffi::method(default(listener = None))]
    pub async fn sync(&self, listener: Option<Arc<dyn SyncListener>>) -> Result<SyncReport> {
        let running = self.store.begin_sync().ok_or_else(|| FieldGridError::Conflict {
            reason: "a sync of this store is already running".to_owned(),
        })?;
        let store = self.store.core()?;
        let transport = self.transport.clone();
        let options = self.options.clone();
        self.cancel.store(false, Ordering::Release);
        let cancel = self.cancel.clone();
        let result = self
            .run(async move {
                let _running = running;
                let progress = |p: Progress| {
                    if let Some(l) = &listener {
                        l.on_progress(p.into());
                    }
                };
                let r = store.sync_async(&*transport, &options, &progress, &cancel).await?;
                Ok(report(r))
            })
            .await;
        match result {
            // The district asked for this phone to be wiped (what it asked to
            // be sent first has gone): erase the store now, tell the server.
            // The wipe runs to its end even if the caller gives up waiting
            // (a background task's time running out): it is not aborted.
            Err(FieldGridError::Wiped) => {
                let holder = self.store.clone();
                let transport = self.transport.clone();
                let wipe = runtime()?.spawn(async move {
                    // Waits (on a blocking thread) for other calls to let go
                    // of the store, then erases it there.
                    let store = tokio::task::spawn_blocking(move || holder.take_for_remote_wipe())
                        .await
                        .unwrap_or_else(|_| Err(panicked()))?;
                    Ok::<_, FieldGridError>(store.remote_wipe_async(&*transport).await?)
                });
                wipe.await.unwrap_or_else(|_| Err(panicked()))?;
                Err(FieldGridError::Wiped)
            }
            other => other,
        }
    }

    /// Signs out: the server ends the session (when it can be reached) and
    /// the phone forgets it; the data stays.
    pub async fn sign_out(&self) -> Result<()> {
        let store = self.store.core()?;
        let transport = self.transport.clone();
        task(async move { store.sign_out_async(&*transport).await }).await
    }

    /// Sends what this store holds for the server (operations and photos)
    /// without receiving anything: a handover, before another worker's store
    /// takes the phone. What could not be sent stays (`pendingOperations`
    /// tells), and `wipe(false)` refuses until it is gone.
    pub async fn send_pending(&self) -> Result<SyncReport> {
        let running = self.store.begin_sync().ok_or_else(|| FieldGridError::Conflict {
            reason: "a sync of this store is already running".to_owned(),
        })?;
        let store = self.store.core()?;
        let transport = self.transport.clone();
        let options = SyncOptions {
            receive: false,
            ..self.options.clone()
        };
        self.cancel.store(false, Ordering::Release);
        let cancel = self.cancel.clone();
        self.run(async move {
            let _running = running;
            let r = store.sync_async(&*transport, &options, &|_| {}, &cancel).await?;
            Ok(report(r))
        })
        .await
    }

    /// Stops a running sync at once: a request in flight is abandoned, what
    /// was committed stays, and the sync returns `Cancelled`.
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
        if let Some(task) = self.running.lock().unwrap_or_else(PoisonError::into_inner).as_ref() {
            task.abort();
        }
    }
}

impl SyncClient {
    /// [`task`], remembered for `cancel` while it runs (one sync per store
    /// runs at a time: `begin_sync`).
    async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = fieldgrid_core::Result<T>> + Send + 'static,
    ) -> Result<T> {
        let handle = runtime()?.spawn(work);
        let id = handle.id();
        *self.running.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle.abort_handle());
        // Forgotten when this call ends, however it ends (even dropped).
        let _forget = Forget(&self.running, id);
        joined(handle).await
    }
}

/// Clears the running task's handle if it is still this task's.
struct Forget<'a>(&'a Mutex<Option<AbortHandle>>, tokio::task::Id);

impl Drop for Forget<'_> {
    fn drop(&mut self) {
        let mut running = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if running.as_ref().is_some_and(|h| h.id() == self.1) {
            *running = None;
        }
    }
}

fn report(r: fieldgrid_core::sync::SyncReport) -> SyncReport {
    SyncReport {
        photos_uploaded: r.photos_uploaded,
        confirmed: r.confirmed,
        rejected: r.rejected,
        pulled: r.pulled,
        set_aside: r.set_aside,
        evicted_grids: r.evicted_grids,
        clock_offset_ms: r.clock_offset_ms,
    }
}

/// Runs `work` as a task on the library's multi-threaded runtime (uniffi's
/// own, which polls our futures, has one thread: store work there would
/// stall every call): a panic inside is an `Internal` error instead of an
/// unwind across the FFI, and dropping the returned future (the caller's
/// coroutine or task cancelled) aborts the task at its next await, and with
/// it any request in flight.
async fn task<T: Send + 'static>(work: impl Future<Output = fieldgrid_core::Result<T>> + Send + 'static) -> Result<T> {
    joined(runtime()?.spawn(work)).await
}

async fn joined<T>(handle: tokio::task::JoinHandle<fieldgrid_core::Result<T>>) -> Result<T> {
    let _abort = AbortOnDrop(handle.abort_handle());
    match handle.await {
        Ok(result) => Ok(result?),
        Err(e) if e.is_cancelled() => Err(FieldGridError::Cancelled),
        Err(_) => Err(panicked()),
    }
}

/// Aborts a task when the future awaiting it is dropped.
struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// uniffi polls our futures on a one-thread runtime; the engine must run
    /// elsewhere, on a runtime where store work can step aside
    /// (`block_in_place`) without stalling every other call.
    #[test]
    fn tasks_run_on_the_multi_threaded_runtime_and_a_panic_is_an_error() {
        let caller = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime like uniffi's");
        let flavour = caller
            .block_on(task(async { Ok(tokio::runtime::Handle::current().runtime_flavor()) }))
            .expect("the task ran");
        assert_eq!(flavour, tokio::runtime::RuntimeFlavor::MultiThread);
        let crashed = caller.block_on(task(async move {
            if flavour == tokio::runtime::RuntimeFlavor::MultiThread {
                panic!("a bug inside the engine");
            }
            Ok(())
        }));
        assert!(matches!(crashed, Err(FieldGridError::Internal { .. })), "{crashed:?}");
    }
}
