//! Step 4 of a sync: the changes in the worker's grids, page by page. Pages
//! are applied together with their cursor in one transaction once
//! `pull_commit_changes` have arrived (or the last page): an interrupted pull
//! resumes from the last commit, and large first syncs do not rewrite every
//! index page once per small page. The next page is requested, received and
//! decoded while the pages before it are applied.

use std::collections::VecDeque;
use std::pin::Pin;
use std::task::Poll;

use rusqlite::OptionalExtension;

use super::{Phase, Progress, Run, SyncReport, Transport, aside};
use crate::error::{Error, Result};
use crate::store::{Store, meta_get, meta_set};

impl Store {
    /// Receives and applies every change after the pull cursor.
    pub(super) async fn pull_changes(&self, run: &Run<'_, impl Transport>, report: &mut SyncReport) -> Result<()> {
        match self.pull_pages(run, report).await {
            // The server refused the pull because the phone is to be wiped.
            Err(_) if run.transport.wipe_requested().is_some() => Err(Error::WipeRequested),
            other => other,
        }
    }

    async fn pull_pages(&self, run: &Run<'_, impl Transport>, report: &mut SyncReport) -> Result<()> {
        let Run {
            transport,
            token,
            retry,
            progress,
        } = run;
        let options = retry.options();
        // One page's request, with the device time it went out (when the
        // request is first polled, not when it is made).
        let fetch = |after: i64| async move {
            let before = self.now_ms();
            (
                before,
                retry.run(|| transport.changes(token, after, options.page_limit)).await,
            )
        };
        let mut pages = Pages {
            in_flight: Some(Box::pin(fetch(self.pull_cursor()?))),
            started_early: false,
            ready: VecDeque::new(),
            fetch: &fetch,
        };
        let mut after;
        let mut bytes = 0;
        let mut pending: Vec<fieldgrid_protocol::Change> = Vec::new();
        loop {
            let Some(((before, page), measured)) = pages.next().await else {
                return Ok(());
            };
            let page = page?;
            // A page answered while others were applied does not measure the
            // round trip: the clock offset comes from the pages awaited.
            if measured {
                report.clock_offset_ms = page.server_time_ms - (before + self.now_ms()) / 2;
            }
            bytes += page.changes.iter().map(|c| c.fields.len() as u64 * 32).sum::<u64>();
            after = page.next_after;
            pending.extend(page.changes);
            if pending.len() < options.pull_commit_changes && page.more {
                continue;
            }
            // The next pages are requested, received and decoded while these
            // are applied. A request's timeout runs meanwhile: an apply longer
            // than the request timeout makes it a transient failure, retried
            // like any other.
            let counts = self.apply_while_fetching(&pending, after, &mut pages).await?;
            pending.clear();
            report.pulled += counts.applied;
            report.set_aside += counts.set_aside;
            progress(Progress {
                phase: Phase::Pull,
                done: report.pulled,
                total: 0,
                bytes,
            });
            retry.check_cancel()?;
        }
    }

    /// Applies `pending` and moves the cursor to `after`, in one transaction.
    /// A page the store refuses is applied again record by record, the
    /// records it refuses set aside (`aside`): one record never stops a pull.
    fn apply_pages(&self, pending: &[fieldgrid_protocol::Change], after: i64) -> Result<aside::Counts> {
        let now = self.now_ms();
        let apply = |careful| {
            self.write(|tx| {
                let counts = aside::apply_all(tx, pending, now, careful)?;
                meta_set(tx, "pull_cursor", &after.to_string())?;
                Ok(counts)
            })
        };
        match apply(false) {
            Err(e) if aside::is_record_problem(&e) => {
                tracing::warn!(error = %e, "a pulled page did not apply whole: applying it record by record");
                apply(true)
            }
            other => other,
        }
    }

    /// Tries the records set aside again (a newer build may read them);
    /// those applied now leave the list.
    pub(super) fn retry_set_aside(&self) -> Result<()> {
        let held = self.write(aside::held)?;
        if held.is_empty() {
            return Ok(());
        }
        let now = self.now_ms();
        self.write(|tx| aside::apply_all(tx, &held, now, true).map(|_| ()))
    }

    /// Reports the records set aside that the server has not heard of (the
    /// centre sees them). A server that does not take reports, or a
    /// network that fails, leaves them for the next sync.
    pub(super) async fn report_set_aside(&self, run: &Run<'_, impl Transport>) -> Result<()> {
        let problems = self.write(|tx| aside::unreported(tx, fieldgrid_protocol::limits::PROBLEMS_PER_REPORT))?;
        if problems.is_empty() {
            return Ok(());
        }
        let req = fieldgrid_protocol::ProblemsRequest { problems };
        match run.transport.report_problems(run.token, &req).await {
            Ok(()) => self.write(|tx| aside::mark_reported(tx, &req.problems)),
            Err(e) => {
                tracing::info!(error = %e, "records set aside not reported this time");
                Ok(())
            }
        }
    }

    /// [`Store::apply_pages`] while the next pages arrive. On a
    /// multi-threaded runtime the pages are applied on a scoped thread while
    /// this one drives the requests (answers received and decoded, up to
    /// [`AHEAD`] pages) until the apply is done: two cores share the work.
    /// Elsewhere the next request is started (one poll: a pooled connection
    /// sends it; a new one waits) and the pages are applied here.
    async fn apply_while_fetching<F: Future<Output = Page>>(
        &self,
        pending: &[fieldgrid_protocol::Change],
        after: i64,
        pages: &mut Pages<'_, impl Fn(i64) -> F, F>,
    ) -> Result<aside::Counts> {
        use tokio::runtime::{Handle, RuntimeFlavor};
        let Some(handle) = Handle::try_current()
            .ok()
            .filter(|h| h.runtime_flavor() == RuntimeFlavor::MultiThread)
        else {
            std::future::poll_fn(|cx| {
                pages.poll_ahead(cx);
                Poll::Ready(())
            })
            .await;
            return self.apply_pages(pending, after);
        };
        tokio::task::block_in_place(|| {
            let applied = tokio::sync::Notify::new();
            std::thread::scope(|scope| {
                let applier = scope.spawn(|| {
                    // Told however the apply ends, a panic included: this
                    // thread must not wait for ever on a dead one.
                    let _done = Notified(&applied);
                    self.apply_pages(pending, after)
                });
                // Until the apply is done: then the task is back in its
                // runtime (and can be dropped), whatever is still in flight.
                handle.block_on(async {
                    let mut done = std::pin::pin!(applied.notified());
                    std::future::poll_fn(|cx| {
                        pages.poll_ahead(cx);
                        done.as_mut().poll(cx)
                    })
                    .await
                });
                applier
                    .join()
                    .map_err(|_| Error::Internal("applying pulled changes failed".into()))?
            })
        })
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

/// A page as received: the device time its request went out, and the answer.
type Page = (i64, Result<fieldgrid_protocol::ChangesResponse>);

/// Pages received ahead of the one being applied, at most.
const AHEAD: usize = 2;

/// Wakes the waiter of a [`tokio::sync::Notify`] when dropped.
struct Notified<'a>(&'a tokio::sync::Notify);

impl Drop for Notified<'_> {
    fn drop(&mut self) {
        self.0.notify_one();
    }
}

/// The pull's pages in order: the one request in flight (each answer with
/// more after it makes the next request at once) and the pages received
/// ahead of their turn.
struct Pages<'f, Fetch, F> {
    in_flight: Option<Pin<Box<F>>>,
    /// The request in flight was polled while pages were applied: its
    /// round trip includes the apply.
    started_early: bool,
    ready: VecDeque<Page>,
    fetch: &'f Fetch,
}

impl<Fetch: Fn(i64) -> F, F: Future<Output = Page>> Pages<'_, Fetch, F> {
    /// The next page, and whether its round trip measures the network
    /// (awaited from its start, not received or started during an apply);
    /// `None` after the last.
    async fn next(&mut self) -> Option<(Page, bool)> {
        if let Some(page) = self.ready.pop_front() {
            return Some((page, false));
        }
        let measured = !self.started_early;
        let page = self.in_flight.take()?.await;
        self.chain(&page);
        Some((page, measured))
    }

    /// Makes the request after `page`, if there is more.
    fn chain(&mut self, page: &Page) {
        self.started_early = false;
        if let (_, Ok(p)) = page
            && p.more
        {
            self.in_flight = Some(Box::pin((self.fetch)(p.next_after)));
        }
    }

    /// Drives the request in flight (and those after it) while fewer than
    /// [`AHEAD`] pages wait.
    fn poll_ahead(&mut self, cx: &mut std::task::Context<'_>) {
        while self.ready.len() < AHEAD {
            let Some(request) = self.in_flight.as_mut() else {
                return;
            };
            let Poll::Ready(page) = request.as_mut().poll(cx) else {
                self.started_early = true;
                return;
            };
            self.in_flight = None;
            self.chain(&page);
            self.ready.push_back(page);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fieldgrid_protocol::Change;
    use serde_json::json;

    fn change(seq: i64, entity: &str, id: &str, grid: &str, fields: serde_json::Value) -> Change {
        Change {
            seq,
            entity: entity.into(),
            entity_id: id.into(),
            grid_id: grid.into(),
            version: 1,
            deleted: false,
            fields: fields.as_object().cloned().unwrap_or_default(),
        }
    }

    /// One page with a record that does not read and one the store refuses
    /// (a grid this phone does not have: a foreign key): both are set aside,
    /// the others applied, the cursor moves on.
    #[test]
    fn records_that_do_not_apply_are_set_aside_and_the_page_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.db"), None).unwrap();
        let grid = store.put_grid(&crate::datagen::grid(1)).unwrap();
        let (good, stranger, bare, after) = (crate::new_id(), crate::new_id(), crate::new_id(), crate::new_id());
        let place =
            |name: &str, grid: &str| json!({"grid_id": grid, "kind": "compound", "parent_id": null, "name": name});
        let page = [
            change(1, "place", &good, &grid.id, place("格林盛景小区", &grid.id)),
            change(2, "place", &stranger, &grid.id, place("别处", "no-such-grid")),
            change(
                3,
                "incident_event",
                &bare,
                &grid.id,
                json!({"incident_id": good, "kind": "reported", "at_ms": 1}),
            ),
            change(4, "place", &after, &grid.id, place("后来小区", &grid.id)),
        ];
        let counts = store.apply_pages(&page, 4).unwrap();
        assert_eq!((counts.applied, counts.set_aside), (2, 2));
        assert_eq!(store.pull_cursor().unwrap(), 4);
        assert!(store.get_place(&good).is_ok() && store.get_place(&after).is_ok());
        assert!(store.get_place(&stranger).is_err(), "nothing of a refused record stays");
        let aside: Vec<(String, String, Option<String>)> = store
            .set_aside()
            .unwrap()
            .into_iter()
            .map(|a| (a.entity_id, a.code, a.field))
            .collect();
        assert!(
            aside.contains(&(stranger.clone(), "not_applied".into(), None)),
            "{aside:?}"
        );
        assert!(
            aside.contains(&(bare.clone(), "unreadable".into(), Some("note".into()))),
            "{aside:?}"
        );
        // Tried again: still set aside, once; a newer version that reads
        // replaces it.
        store.retry_set_aside().unwrap();
        assert_eq!(store.set_aside().unwrap().len(), 2);
        let mut fixed = change(
            5,
            "incident_event",
            &bare,
            &grid.id,
            json!({"incident_id": good, "kind": "reported",
            "note": "", "at_ms": 1}),
        );
        fixed.version = 2;
        store.apply_pages(&[fixed], 5).unwrap();
        let left: Vec<String> = store.set_aside().unwrap().into_iter().map(|a| a.entity_id).collect();
        assert_eq!(left, [stranger]);
    }

    /// The task waits for the apply thread's word; a panicking apply must
    /// still give it, or the sync would hang for ever (and hold its store's
    /// sync slot).
    #[test]
    fn the_waiter_is_told_when_the_apply_thread_panics() {
        let applied = tokio::sync::Notify::new();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        std::thread::scope(|scope| {
            let applier = scope.spawn(|| {
                let _done = Notified(&applied);
                panic!("an apply that fails");
            });
            let told = runtime
                .block_on(async { tokio::time::timeout(std::time::Duration::from_secs(10), applied.notified()).await });
            assert!(told.is_ok(), "never told");
            assert!(applier.join().is_err());
        });
    }
}
