//! The sync engine: one [`Store::sync`] call pushes the outbox in bounded
//! batches and applies the receipts, uploads pending photos (resuming partial
//! uploads from the server's offset), pulls the changes in the worker's grids
//! page by page, and learns the offset between the phone's clock and the
//! server's.
//!
//! Invariants (SYNC.md): an operation leaves the outbox only when its receipt
//! is committed; a rejected one is quarantined with the server's reason and
//! never blocks the others; every pulled page is committed with its cursor, so
//! an interrupted sync resumes where it stopped; local unconfirmed edits stay
//! on top of pulled data.

mod apply;
mod http;
mod transport;

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use fieldgrid_protocol::{LoginRequest, LoginResponse, Operation, Outcome, PushRequest, limits};
use rusqlite::{OptionalExtension, params};

pub use http::{HttpOptions, HttpTransport};
pub use transport::{Transport, TransportError, WipeRequest};

use crate::error::{Code, Error, Result};
use crate::model::Grid;
use crate::outbox::Rejection;
use crate::store::{Store, meta_get, meta_set};

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
    /// Grids whose data left the device.
    pub evicted_grids: Vec<String>,
    /// Server clock minus device clock (ms).
    pub clock_offset_ms: i64,
}

/// A place to report progress; `|_| {}` for none.
pub type ProgressSink<'a> = &'a (dyn Fn(Progress) + Sync);

impl Store {
    /// The id this device is known by to the server (made once, kept).
    pub fn device_id(&self) -> Result<String> {
        if let Some(id) = self.read(|c| meta_get(c, "device_id"))? {
            return Ok(id);
        }
        self.write(|tx| {
            if let Some(id) = meta_get(tx, "device_id")? {
                return Ok(id);
            }
            let id = crate::new_id();
            meta_set(tx, "device_id", &id)?;
            Ok(id)
        })
    }

    /// Signs in: keeps the session, records the grids assigned, and marks
    /// grids no longer assigned (their data leaves after their operations are
    /// sent, at the next sync).
    pub fn login(&self, transport: &dyn Transport, username: &str, password: &str) -> Result<LoginResponse> {
        let req = LoginRequest {
            username: username.to_owned(),
            password: password.to_owned(),
            device_id: self.device_id()?,
        };
        let resp = transport.login(&req).map_err(sync_error)?;
        // One store, one account: another worker's session never writes here
        // (a phone shared in shifts has a store per account).
        if let Some(owner) = self.read(|c| meta_get(c, "account_id"))?
            && owner != resp.account_id
        {
            if let Err(e) = transport.logout(&resp.token) {
                tracing::info!(error = %e, "the other account's session could not be ended at once");
            }
            return Err(Error::OtherAccount);
        }
        // A grid this phone did not hold (newly assigned, or given back after
        // it was taken away) has changes older than the pull cursor, which one
        // cursor for all grids would never fetch: pull everything again from
        // the start (changes already here are skipped by their version).
        let held: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM grids WHERE revoked = 0")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let gained = resp.grids.iter().any(|g| !held.contains(&g.id));
        for g in &resp.grids {
            self.put_grid(&Grid::from(g))?;
        }
        let now = self.now_ms();
        self.write(|tx| {
            meta_set(tx, "token", &resp.token)?;
            meta_set(tx, "token_expires_at", &resp.expires_at_ms.to_string())?;
            meta_set(tx, "account_id", &resp.account_id)?;
            meta_set(tx, "clock_offset_ms", &(resp.server_time_ms - now).to_string())?;
            let assigned: Vec<&str> = resp.grids.iter().map(|g| g.id.as_str()).collect();
            tx.execute(
                "UPDATE grids SET revoked = (id NOT IN (SELECT value FROM json_each(?1)))",
                [serde_json::to_string(&assigned)?],
            )?;
            if gained {
                meta_set(tx, "pull_cursor", "0")?;
            }
            Ok(())
        })?;
        if gained && !held.is_empty() {
            tracing::info!("a grid was assigned: its history will be pulled from the start");
        }
        tracing::info!(grids = resp.grids.len(), "signed in");
        Ok(resp)
    }

    /// Signs out: the server ends the session (when it can be reached; an
    /// unreachable server lets the token expire on its own), and the phone
    /// forgets it. The data stays.
    pub fn sign_out(&self, transport: &dyn Transport) -> Result<()> {
        if let Some(token) = self.read(|c| meta_get(c, "token"))?
            && let Err(e) = transport.logout(&token)
        {
            tracing::info!(error = %e, "the server could not be told of the sign-out; the session expires on its own");
        }
        self.logout()
    }

    /// Erases the store as the district asked (a lost or retired phone,
    /// [`Error::WipeRequested`]): database, photos and sync state, whatever
    /// waits; then tells the server, whose confirmation ends the session.
    /// The platform's key is the app's to delete.
    pub fn remote_wipe(self, transport: &dyn Transport) -> Result<()> {
        let token = self.read(|c| meta_get(c, "token"))?;
        self.wipe(true)?;
        if let Some(token) = token
            && let Err(e) = transport.confirm_wiped(&token)
        {
            tracing::warn!(error = %e, "wiped; the server could not be told (it will ask again)");
        }
        tracing::warn!("store wiped at the district's request");
        Ok(())
    }

    /// Forgets the session here (the data stays; the server is not told:
    /// see [`Store::sign_out`]).
    pub fn logout(&self) -> Result<()> {
        self.write(|tx| {
            tx.execute("DELETE FROM meta WHERE key IN ('token', 'token_expires_at')", [])?;
            Ok(())
        })
    }

    /// Runs one sync: photos, push, pull. Stops between steps when `cancel`
    /// is set (everything done so far stays done).
    pub fn sync(
        &self,
        transport: &dyn Transport,
        options: &SyncOptions,
        progress: ProgressSink<'_>,
        cancel: &AtomicBool,
    ) -> Result<SyncReport> {
        let token = self.read(|c| meta_get(c, "token"))?.ok_or(Error::AuthExpired)?;
        let mut report = SyncReport::default();
        let retry = Retry { options, cancel };

        // 1. Push, in bounded batches, until nothing is pending.
        let total = self.outbox_counts()?;
        let total = total.pending + total.sending;
        let device_id = self.device_id()?;
        let mut bytes = 0;
        loop {
            retry.check_cancel()?;
            let batch = self.next_batch(options)?;
            if batch.is_empty() {
                break;
            }
            let (seqs, operations): (Vec<i64>, Vec<Operation>) = batch.into_iter().unzip();
            let req = PushRequest {
                device_id: device_id.clone(),
                operations,
            };
            bytes += serde_json::to_vec(&req).map(|v| v.len() as u64).unwrap_or(0);
            let before = self.now_ms();
            let resp = match retry.run(|| transport.push(&token, &req)) {
                Ok(resp) => resp,
                Err(e) => {
                    // Refused outright (signed out, too old, forbidden): not
                    // applied, so back to waiting. Offline: the server may have
                    // applied them; they stay "sending" until a receipt says.
                    if !matches!(e, Error::Offline | Error::Cancelled) {
                        self.write(|tx| {
                            tx.execute(
                                "UPDATE outbox SET state = 'pending' WHERE seq IN (SELECT value FROM json_each(?1))",
                                [serde_json::to_string(&seqs)?],
                            )?;
                            Ok(())
                        })?;
                    }
                    return Err(e);
                }
            };
            let (ok, bad) = self.apply_receipts(&seqs, &req.operations, &resp.receipts)?;
            report.confirmed += ok;
            report.rejected += bad;
            // A lost phone stops here (its receipts are kept); a retired one
            // sends everything first.
            if transport.wipe_requested() == Some(WipeRequest::Now) {
                return Err(Error::WipeRequested);
            }
            report.clock_offset_ms = resp.server_time_ms - (before + self.now_ms()) / 2;
            progress(Progress {
                phase: Phase::Push,
                done: report.confirmed + report.rejected,
                total,
                bytes,
            });
        }

        // 2. Grids taken away: their operations are sent; now their data leaves.
        report.evicted_grids = self.evict_revoked_grids()?;

        // 3. Photos, after the records that reference them: a photo that
        //    cannot be sent now never holds back the records, and the server
        //    shows a record complete only once its photos' hashes matched.
        let pending = self.photos_to_upload()?;
        let total = pending.len() as u64;
        let mut bytes = 0;
        for (i, (sha, size)) in pending.iter().enumerate() {
            retry.check_cancel()?;
            if transport.wipe_requested() == Some(WipeRequest::Now) {
                return Err(Error::WipeRequested);
            }
            match self.upload_photo(transport, &token, sha, *size, options, &retry) {
                Ok(sent) => {
                    bytes += sent;
                    report.photos_uploaded += 1;
                }
                // Refused for this photo alone (e.g. its bytes no longer match
                // its hash): the others go on; it is tried again next time.
                Err(Error::Server { status, code }) if (400..500).contains(&status) => {
                    tracing::warn!(status, code = %code, "photo upload refused");
                }
                // The local file does not match its record: this photo stays
                // unsent (and shows so); the other photos and the pull go on.
                Err(Error::Validation(e)) => {
                    tracing::warn!(code = e.code.as_str(), "photo file unreadable: not sent");
                }
                Err(e) => return Err(e),
            }
            progress(Progress {
                phase: Phase::Photos,
                done: i as u64 + 1,
                total,
                bytes,
            });
        }

        // 4. Pull, page by page. Pages are applied together with their
        //    cursor in one transaction once `pull_commit_changes` have
        //    arrived (or the last page): an interrupted pull resumes from the
        //    last commit, and large first syncs do not rewrite every index
        //    page once per small page.
        //    The next page is fetched while this one is applied.
        //    Nothing more is received by a phone that is to be wiped.
        if transport.wipe_requested().is_some() {
            tracing::warn!("the district asked for this phone to be wiped");
            return Err(Error::WipeRequested);
        }
        if !options.receive {
            return Ok(report);
        }
        let start_after = self.pull_cursor()?;
        let (pages_tx, pages_rx) = std::sync::mpsc::sync_channel(1);
        let pulled: Result<()> = std::thread::scope(|scope| {
            let (retry, token) = (&retry, &token);
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
        self.load_catalogue()?;
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
            "sync finished"
        );
        Ok(report)
    }

    /// Local photos the server has not confirmed: (sha256, size), oldest first.
    fn photos_to_upload(&self) -> Result<Vec<(String, u64)>> {
        let rows: Vec<(String, i64)> = self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT sha256, max(size) FROM photos WHERE uploaded_at IS NULL GROUP BY sha256 ORDER BY min(created_at)",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        Ok(rows
            .into_iter()
            .filter(|(sha, _)| self.photo_dir().join(sha).exists())
            .map(|(sha, size)| (sha, size.unsigned_abs()))
            .collect())
    }

    /// Uploads one photo from the server's offset; marks it confirmed.
    fn upload_photo(
        &self,
        transport: &dyn Transport,
        token: &str,
        sha: &str,
        size: u64,
        options: &SyncOptions,
        retry: &Retry<'_>,
    ) -> Result<u64> {
        let bytes = self.photo_file_bytes(sha)?;
        if bytes.len() as u64 != size {
            // The file on the phone is not the photo its record describes
            // (truncated, or replaced): nothing sensible can be sent.
            return Err(Error::invalid("photo", Code::Unreadable));
        }
        let mut offset = retry.run(|| transport.photo_offset(token, sha))?.unwrap_or(0);
        let mut sent = 0;
        while offset < size {
            retry.check_cancel()?;
            let end = (offset as usize)
                .saturating_add(options.chunk_bytes.max(1))
                .min(bytes.len());
            let chunk = bytes.get(offset as usize..end).ok_or_else(|| Error::Server {
                status: 0,
                code: "bad_response".into(),
            })?;
            offset = match retry.run(|| transport.upload_chunk(token, sha, offset, size, chunk)) {
                Ok(o) => {
                    sent += chunk.len() as u64;
                    o
                }
                // The server has a different offset (a reply was lost): resume there.
                Err(Error::Server { status: 409, .. }) => {
                    retry.run(|| transport.photo_offset(token, sha))?.unwrap_or(0)
                }
                Err(e) => return Err(e),
            };
        }
        let now = self.now_ms();
        self.write(|tx| {
            tx.execute(
                "UPDATE photos SET uploaded_at = ?2 WHERE sha256 = ?1",
                params![sha, now],
            )?;
            Ok(())
        })?;
        Ok(sent)
    }

    /// The next operations to send, oldest first, marked as sending.
    /// Operations left "sending" by an interrupted sync are sent again: the
    /// server answers a repeat with its original receipt.
    fn next_batch(&self, options: &SyncOptions) -> Result<Vec<(i64, Operation)>> {
        let ops = self.pending_operations(options.batch_operations.min(limits::PUSH_MAX_OPERATIONS) as u32)?;
        let mut batch = Vec::with_capacity(ops.len());
        let mut bytes = 0;
        for op in ops {
            let size = serde_json::to_vec(&op.patch).map(|v| v.len()).unwrap_or(0) + 200;
            if !batch.is_empty() && bytes + size > options.batch_bytes.min(limits::PUSH_MAX_BYTES) {
                break;
            }
            bytes += size;
            let patch = crate::rules::device_fields(&op.entity, &op.patch);
            batch.push((
                op.seq,
                Operation {
                    op_id: op.op_id,
                    entity: op.entity,
                    entity_id: op.entity_id,
                    kind: op.kind,
                    // Only what a device writes travels (a create is the
                    // whole local record, server-owned fields included).
                    patch,
                    base_version: op.base_version,
                    created_at_ms: op.created_at_ms,
                },
            ));
        }
        let seqs: Vec<i64> = batch.iter().map(|(seq, _)| *seq).collect();
        self.write(|tx| {
            tx.execute(
                "UPDATE outbox SET state = 'sending', attempts = attempts + 1
                 WHERE seq IN (SELECT value FROM json_each(?1))",
                [serde_json::to_string(&seqs)?],
            )?;
            Ok(())
        })?;
        Ok(batch)
    }

    /// Applies the receipts of one batch in one transaction; returns
    /// (confirmed, rejected).
    fn apply_receipts(
        &self,
        seqs: &[i64],
        sent: &[Operation],
        receipts: &[fieldgrid_protocol::Receipt],
    ) -> Result<(u64, u64)> {
        let by_id: std::collections::HashMap<&str, (i64, &Operation)> = seqs
            .iter()
            .zip(sent)
            .map(|(seq, op)| (op.op_id.as_str(), (*seq, op)))
            .collect();
        self.write(|tx| {
            let (mut ok, mut bad) = (0, 0);
            for r in receipts {
                let Some(&(seq, op)) = by_id.get(r.op_id.as_str()) else {
                    continue; // not ours: ignore
                };
                match &r.outcome {
                    Outcome::Applied { version, .. } => {
                        tx.prepare_cached("DELETE FROM outbox WHERE seq = ?1")?.execute([seq])?;
                        // The server's record at `version` is exactly ours only if
                        // nobody else changed it since our base; otherwise the merged
                        // record arrives by pull (which skips versions we already have).
                        let exact = match op.kind {
                            fieldgrid_protocol::OpKind::Create => *version == 1,
                            _ => op.base_version == Some(version - 1),
                        };
                        if exact {
                            apply::set_server_version(tx, &op.entity, &op.entity_id, *version)?;
                        }
                        ok += 1;
                    }
                    Outcome::Rejected { code, field, message } => {
                        let why = Rejection {
                            code: code.clone(),
                            field: field.clone(),
                            message: message.clone(),
                        };
                        tx.prepare_cached("UPDATE outbox SET state = 'rejected', last_error = ?2 WHERE seq = ?1")?
                            .execute(params![seq, serde_json::to_string(&why)?])?;
                        tracing::warn!(entity = %op.entity, code = %code, "operation rejected by the server");
                        bad += 1;
                    }
                }
            }
            // Anything without a receipt goes back to waiting.
            tx.execute(
                "UPDATE outbox SET state = 'pending' WHERE state = 'sending' AND seq IN (SELECT value FROM json_each(?1))",
                [serde_json::to_string(seqs)?],
            )?;
            Ok((ok, bad))
        })
    }

    /// Removes the data of grids no longer assigned, once none of their
    /// operations waits to be sent.
    fn evict_revoked_grids(&self) -> Result<Vec<String>> {
        let revoked: Vec<String> = self.read(|c| {
            let mut stmt = c.prepare("SELECT id FROM grids WHERE revoked = 1")?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })?;
        let mut evicted = Vec::new();
        for grid in revoked {
            let done = self.write(|tx| {
                let waiting: i64 = tx.query_row(
                    "SELECT count(*) FROM outbox o WHERE o.state <> 'rejected' AND o.entity_id IN (
                        SELECT id FROM places WHERE grid_id = ?1 UNION ALL SELECT id FROM households WHERE grid_id = ?1
                        UNION ALL SELECT id FROM residents WHERE grid_id = ?1 UNION ALL SELECT id FROM incidents WHERE grid_id = ?1
                        UNION ALL SELECT id FROM service_logs WHERE grid_id = ?1)",
                    [&grid],
                    |r| r.get(0),
                )?;
                if waiting > 0 {
                    return Ok(false);
                }
                tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS gone (id TEXT PRIMARY KEY); DELETE FROM gone;")?;
                for table in ["places", "households", "residents", "incidents", "service_logs"] {
                    tx.execute(&format!("INSERT OR IGNORE INTO gone SELECT id FROM {table} WHERE grid_id = ?1"), [&grid])?;
                }
                tx.execute("INSERT OR IGNORE INTO gone SELECT id FROM incident_events WHERE incident_id IN (SELECT id FROM gone)", [])?;
                tx.execute_batch(
                    "DELETE FROM resident_name_grams WHERE rid IN (SELECT rid FROM residents WHERE id IN (SELECT id FROM gone));
                     DELETE FROM resident_tags WHERE rid IN (SELECT rid FROM residents WHERE id IN (SELECT id FROM gone));
                     DELETE FROM photos WHERE owner_id IN (SELECT id FROM gone);
                     DELETE FROM outbox WHERE entity_id IN (SELECT id FROM gone);
                     DELETE FROM conflicts WHERE entity_id IN (SELECT id FROM gone);
                     DELETE FROM incident_events WHERE id IN (SELECT id FROM gone);
                     DELETE FROM residents WHERE id IN (SELECT id FROM gone);
                     DELETE FROM households WHERE id IN (SELECT id FROM gone);
                     DELETE FROM incidents WHERE id IN (SELECT id FROM gone);
                     DELETE FROM service_logs WHERE id IN (SELECT id FROM gone);
                     DELETE FROM places WHERE id IN (SELECT id FROM gone);
                     DELETE FROM gone;",
                )?;
                tx.execute("DELETE FROM grids WHERE id = ?1", [&grid])?;
                Ok(true)
            })?;
            if done {
                tracing::info!("grid data evicted");
                evicted.push(grid);
            }
        }
        if !evicted.is_empty() {
            self.collect_orphan_photos()?;
        }
        Ok(evicted)
    }

    /// Conflicts the server recorded on a record, newest first: (field, the
    /// value in force, the value it replaced).
    pub fn conflicts_of(&self, entity_id: &str) -> Result<Vec<(String, serde_json::Value, serde_json::Value)>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT field, winning_value, losing_value FROM conflicts WHERE entity_id = ?1 ORDER BY at DESC",
            )?;
            let rows = stmt.query_map([entity_id], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (f, w, l) = row?;
                out.push((f, serde_json::from_str(&w)?, serde_json::from_str(&l)?));
            }
            Ok(out)
        })
    }

    /// Marks a record's conflicts as seen by the worker (its status returns
    /// to its sync state).
    pub fn acknowledge_conflicts(&self, entity_id: &str) -> Result<()> {
        self.write(|tx| {
            tx.execute("UPDATE conflicts SET seen = 1 WHERE entity_id = ?1", [entity_id])?;
            Ok(())
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

/// Retries transient failures with exponential backoff and jitter,
/// honouring `Retry-After`, and maps the final error.
struct Retry<'a> {
    options: &'a SyncOptions,
    cancel: &'a AtomicBool,
}

impl Retry<'_> {
    fn check_cancel(&self) -> Result<()> {
        if self.cancel.load(Ordering::SeqCst) {
            return Err(Error::Cancelled);
        }
        Ok(())
    }

    fn run<T>(&self, mut call: impl FnMut() -> std::result::Result<T, TransportError>) -> Result<T> {
        let mut attempt = 0;
        loop {
            match call() {
                Ok(v) => return Ok(v),
                Err(e) if e.is_transient() && attempt + 1 < self.options.max_attempts => {
                    let backoff = self
                        .options
                        .base_delay
                        .saturating_mul(1 << attempt.min(16))
                        .min(self.options.max_delay);
                    let jitter = Duration::from_millis(
                        uuid::Uuid::now_v7().as_u128() as u64 % (backoff.as_millis() as u64 / 2 + 1),
                    );
                    let pause = match &e {
                        TransportError::Overloaded { retry_after: Some(d) } => (*d).max(backoff / 2),
                        _ => backoff / 2 + jitter,
                    };
                    tracing::debug!(
                        attempt,
                        pause_ms = pause.as_millis() as u64,
                        "retrying after a transient error"
                    );
                    // Sleep in slices so that a cancel is noticed.
                    let until = std::time::Instant::now() + pause;
                    while std::time::Instant::now() < until {
                        self.check_cancel()?;
                        std::thread::sleep(Duration::from_millis(20).min(until - std::time::Instant::now()));
                    }
                    attempt += 1;
                }
                Err(e) => return Err(sync_error(e)),
            }
        }
    }
}

/// The core error for a transport error that will not be retried.
fn sync_error(e: TransportError) -> Error {
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
