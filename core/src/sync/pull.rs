//! Step 4 of a sync: the changes in the worker's grids, page by page. Pages
//! are applied together with their cursor in one transaction once
//! `pull_commit_changes` have arrived (or the last page): an interrupted pull
//! resumes from the last commit, and large first syncs do not rewrite every
//! index page once per small page. The next page's request goes out before
//! the pages received are applied, so the server can prepare it meanwhile.

use std::pin::Pin;
use std::task::Poll;

use rusqlite::OptionalExtension;

use super::retry::Retry;
use super::{Phase, Progress, ProgressSink, SyncReport, Transport, apply, blocking_section};
use crate::error::{Error, Result};
use crate::store::{Store, meta_get, meta_set};

impl Store {
    /// Receives and applies every change after the pull cursor.
    pub(super) async fn pull_changes(
        &self,
        transport: &impl Transport,
        token: &str,
        retry: &Retry<'_>,
        report: &mut SyncReport,
        progress: ProgressSink<'_>,
    ) -> Result<()> {
        match self.pull_pages(transport, token, retry, report, progress).await {
            // The server refused the pull because the phone is to be wiped.
            Err(_) if transport.wipe_requested().is_some() => Err(Error::WipeRequested),
            other => other,
        }
    }

    async fn pull_pages(
        &self,
        transport: &impl Transport,
        token: &str,
        retry: &Retry<'_>,
        report: &mut SyncReport,
        progress: ProgressSink<'_>,
    ) -> Result<()> {
        let options = retry.options();
        // One page's request, with the device time it went out.
        let fetch = |after: i64| {
            let before = self.now_ms();
            async move {
                (
                    before,
                    retry.run(|| transport.changes(token, after, options.page_limit)).await,
                )
            }
        };
        let mut after = self.pull_cursor()?;
        let mut fetching = Some(Box::pin(fetch(after)));
        let mut fetched = None;
        let mut bytes = 0;
        let mut pending: Vec<fieldgrid_protocol::Change> = Vec::new();
        // Whether the page awaited next went out before an apply.
        let mut overlapped = false;
        loop {
            let (before, page) = match (fetched.take(), fetching.take()) {
                (Some(done), _) => done,
                (None, Some(request)) => request.await,
                (None, None) => return Ok(()),
            };
            let page = page?;
            // A page answered while others were applied does not measure
            // the round trip: the clock offset comes from the others.
            if !std::mem::take(&mut overlapped) {
                report.clock_offset_ms = page.server_time_ms - (before + self.now_ms()) / 2;
            }
            bytes += page.changes.iter().map(|c| c.fields.len() as u64 * 32).sum::<u64>();
            after = page.next_after;
            pending.extend(page.changes);
            if page.more {
                fetching = Some(Box::pin(fetch(after)));
            }
            if pending.len() < options.pull_commit_changes && page.more {
                continue;
            }
            // The next request goes out now (on a connection the pool holds;
            // a new one is opened when it is next polled), so that the server
            // prepares it while we apply. Its timeout runs meanwhile: an apply
            // longer than the request timeout makes it a transient failure,
            // retried like any other.
            if let Some(request) = fetching.as_mut() {
                overlapped = true;
                if let Some(done) = poll_once(request).await {
                    fetched = Some(done);
                    fetching = None;
                }
            }
            let now = self.now_ms();
            let n = blocking_section(|| {
                self.write(|tx| {
                    let mut n = 0;
                    for change in &pending {
                        if apply::apply_change(tx, change, now)? {
                            n += 1;
                        }
                    }
                    meta_set(tx, "pull_cursor", &after.to_string())?;
                    Ok(n)
                })
            })?;
            pending.clear();
            report.pulled += n;
            progress(Progress {
                phase: Phase::Pull,
                done: report.pulled,
                total: 0,
                bytes,
            });
            retry.check_cancel()?;
        }
    }

    /// The pull cursor: the server sequence up to which changes are applied.
    pub fn pull_cursor(&self) -> Result<i64> {
        Ok(self
            .read(|c| meta_get(c, "pull_cursor"))?
            .and_then(|v| v.parse().ok())
            .unwrap_or(0))
    }

    /// When the last sync finished (device ms), if ever.
    pub fn last_sync_at(&self) -> Result<Option<i64>> {
        Ok(self
            .read(|c| {
                Ok(
                    c.query_row("SELECT value FROM meta WHERE key = 'last_sync_at'", [], |r| {
                        r.get::<_, String>(0)
                    })
                    .optional()?,
                )
            })?
            .and_then(|v| v.parse().ok()))
    }
}

/// Polls `future` once, so that its request goes out; its output if it is
/// already done.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| {
        Poll::Ready(match Pin::new(&mut *future).poll(cx) {
            Poll::Ready(output) => Some(output),
            Poll::Pending => None,
        })
    })
    .await
}
