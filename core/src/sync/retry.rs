//! Retries of one request: exponential backoff with jitter, `Retry-After`,
//! cancellation between tries, and the error a sync reports when retrying
//! did not help. Pauses go through the store's [`Clock`] (tokio's timer:
//! no thread is held), so tests run a minute of backoff in microseconds.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use super::{SyncOptions, TransportError};
use crate::error::{Error, Result};
use crate::store::Clock;

/// The longest `Retry-After` obeyed as it is (unless `max_delay` is longer).
const RETRY_AFTER_MAX: Duration = Duration::from_secs(60);

/// Retries transient failures with exponential backoff and jitter,
/// honouring `Retry-After`, and maps the final error.
pub(super) struct Retry<'a> {
    options: &'a SyncOptions,
    cancel: &'a AtomicBool,
    clock: &'a dyn Clock,
}

impl<'a> Retry<'a> {
    pub(super) fn new(options: &'a SyncOptions, cancel: &'a AtomicBool, clock: &'a dyn Clock) -> Retry<'a> {
        Retry { options, cancel, clock }
    }

    /// The sync's options.
    pub(super) fn options(&self) -> &'a SyncOptions {
        self.options
    }

    /// `Cancelled` once the caller asked the sync to stop.
    pub(super) fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err(Error::Cancelled);
        }
        Ok(())
    }

    /// Runs `call` until it succeeds, fails for good, or runs out of tries.
    pub(super) async fn run<T, F>(&self, mut call: impl FnMut() -> F) -> Result<T>
    where
        F: Future<Output = std::result::Result<T, TransportError>>,
    {
        let mut attempt = 0;
        loop {
            match call().await {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt + 1 < self.options.max_attempts => {
                    let pause = self.pause_after(&e, attempt);
                    tracing::debug!(
                        attempt,
                        pause_ms = pause.as_millis() as u64,
                        "retrying after a transient error"
                    );
                    self.sleep(pause).await?;
                    attempt += 1;
                }
                Err(e) => return Err(sync_error(e)),
            }
        }
    }

    /// The pause before try `attempt + 2`: `Retry-After` when the server
    /// gave one (at least half the backoff), otherwise half the backoff plus
    /// up to half again of jitter, so that phones failing together do not
    /// come back together. The backoff doubles from `base_delay` up to
    /// `max_delay`.
    fn pause_after(&self, e: &TransportError, attempt: u32) -> Duration {
        let backoff = self
            .options
            .base_delay
            .saturating_mul(1 << attempt.min(16))
            .min(self.options.max_delay);
        let jitter =
            Duration::from_millis(uuid::Uuid::now_v7().as_u128() as u64 % (backoff.as_millis() as u64 / 2 + 1));
        match e {
            // A server's Retry-After is honoured up to a minute (or
            // `max_delay`, if longer): a misconfigured one cannot hold a
            // sync for a day.
            TransportError::Overloaded { retry_after: Some(d) } => {
                (*d).min(self.options.max_delay.max(RETRY_AFTER_MAX)).max(backoff / 2)
            }
            _ => backoff / 2 + jitter,
        }
    }

    /// Sleeps `pause` in slices, so that a cancel is noticed within one.
    async fn sleep(&self, pause: Duration) -> Result<()> {
        const SLICE: Duration = Duration::from_millis(20);
        let mut left = pause;
        while !left.is_zero() {
            self.check_cancel()?;
            let slice = left.min(SLICE);
            self.clock.sleep(slice).await;
            left -= slice;
        }
        self.check_cancel()
    }
}

/// The core error for a transport error that will not be retried.
pub(super) fn sync_error(e: TransportError) -> Error {
    match e {
        TransportError::Offline(_) | TransportError::Overloaded { .. } => Error::Offline,
        TransportError::AuthExpired => Error::AuthExpired,
        TransportError::BadCredentials => Error::BadCredentials,
        TransportError::ProtocolTooOld => Error::ProtocolTooOld,
        TransportError::Forbidden(_) => Error::Forbidden,
        TransportError::OffsetMismatch { .. } => Error::Server {
            status: 409,
            code: "offset_mismatch".into(),
        },
        TransportError::Server { status, code } => Error::Server { status, code },
        TransportError::BadResponse(_) => Error::Server {
            status: 0,
            code: "bad_response".into(),
        },
    }
}
