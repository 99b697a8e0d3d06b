//! Step 3 of a sync: photo bytes, resumable from the server's offset.

use rusqlite::params;

use super::{Phase, Progress, Run, SyncOptions, SyncReport, Transport, WipeRequest};
use crate::error::{Code, Error, Result};
use crate::store::Store;

impl Store {
    /// Uploads every photo the server has not confirmed; a photo refused on
    /// its own is logged and left for next time.
    pub(super) async fn upload_photos(&self, run: &Run<'_, impl Transport>, report: &mut SyncReport) -> Result<()> {
        let Run {
            transport,
            retry,
            progress,
            ..
        } = run;
        let options = retry.options();
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
            match self.upload_photo(run, sha, *size, options).await {
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
        Ok(())
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
    async fn upload_photo(
        &self,
        run: &Run<'_, impl Transport>,
        sha: &str,
        size: u64,
        options: &SyncOptions,
    ) -> Result<u64> {
        let Run {
            transport,
            token,
            retry,
            ..
        } = run;
        let bytes = self.photo_file_bytes(sha)?;
        if bytes.len() as u64 != size {
            // The file on the phone is not the photo its record describes
            // (truncated, or replaced): nothing sensible can be sent.
            return Err(Error::invalid("photo", Code::Unreadable));
        }
        let mut offset = retry.run(|| transport.photo_offset(token, sha)).await?.unwrap_or(0);
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
            offset = match retry
                .run(|| transport.upload_chunk(token, sha, offset, size, chunk))
                .await
            {
                Ok(o) => {
                    sent += chunk.len() as u64;
                    o
                }
                // The server has a different offset (a reply was lost): resume there.
                Err(Error::Server { status: 409, .. }) => {
                    retry.run(|| transport.photo_offset(token, sha)).await?.unwrap_or(0)
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
}
