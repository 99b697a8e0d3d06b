//! Step 4 of a sync: the changes in the worker's grids, page by page. Pages
//! are applied together with their cursor in one transaction once
//! `pull_commit_changes` have arrived (or the last page): an interrupted pull
//! resumes from the last commit, and large first syncs do not rewrite every
//! index page once per small page. The next page is fetched on another
//! thread while this one is applied.

use rusqlite::OptionalExtension;

use super::retry::Retry;
use super::{Phase, Progress, ProgressSink, SyncReport, Transport, apply};
use crate::error::{Error, Result};
use crate::store::{Store, meta_get, meta_set};

impl Store {
    /// Receives and applies every change after the pull cursor.
    pub(super) fn pull_changes(
        &self,
        transport: &dyn Transport,
        token: &str,
        retry: &Retry<'_>,
        report: &mut SyncReport,
        progress: ProgressSink<'_>,
    ) -> Result<()> {
        let options = retry.options();
        let start_after = self.pull_cursor()?;
        let (pages_tx, pages_rx) = std::sync::mpsc::sync_channel(1);
        let pulled: Result<()> = std::thread::scope(|scope| {
            // The sender moves into the fetcher: when it finishes, the pages end.
            let fetcher = scope.spawn(move || {
                let mut after = start_after;
                loop {
                    let before = self.now_ms();
                    let page = retry.run(|| transport.changes(token, after, options.page_limit));
                    let more = page.as_ref().is_ok_and(|p| p.more);
                    if let Ok(p) = &page {
                        after = p.next_after;
                    }
                    if pages_tx.send((before, page)).is_err() || !more {
                        return;
                    }
                }
            });
            let mut bytes = 0;
            let mut after = start_after;
            let mut pending: Vec<fieldgrid_protocol::Change> = Vec::new();
            let mut last_page_seen = false;
            let result: Result<()> = (|| {
                for (before, page) in pages_rx.iter() {
                    let page = page?;
                    last_page_seen = !page.more;
                    report.clock_offset_ms = page.server_time_ms - (before + self.now_ms()) / 2;
                    bytes += page.changes.iter().map(|c| c.fields.len() as u64 * 32).sum::<u64>();
                    after = page.next_after;
                    pending.extend(page.changes);
                    if pending.len() < options.pull_commit_changes && page.more {
                        continue;
                    }
                    let now = self.now_ms();
                    let n = self.write(|tx| {
                        let mut n = 0;
                        for change in &pending {
                            if apply::apply_change(tx, change, now)? {
                                n += 1;
                            }
                        }
                        meta_set(tx, "pull_cursor", &after.to_string())?;
                        Ok(n)
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
                Ok(())
            })();
            drop(pages_rx); // stops the fetcher if we stopped early
            let fetched = fetcher.join();
            result?;
            // The pages ended without an error page: the fetcher must have
            // delivered the last one. A panic in it is this sync's failure, and
            // the cursor stays at the last page committed.
            if fetched.is_err() || !last_page_seen {
                tracing::error!("the pull stopped before its last page");
                return Err(Error::Internal("the pull stopped before its last page".into()));
            }
            Ok(())
        });
        if let Err(e) = pulled {
            // The server refused the pull because the phone is to be wiped.
            if transport.wipe_requested().is_some() {
                return Err(Error::WipeRequested);
            }
            return Err(e);
        }
        Ok(())
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
