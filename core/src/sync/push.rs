//! Step 1 of a sync: the outbox goes to the server in bounded batches, and
//! each batch's receipts are applied in one transaction.

use fieldgrid_protocol::{OpKind, Operation, Outcome, PushRequest, limits};
use rusqlite::params;

use super::{Phase, Progress, Run, SyncOptions, SyncReport, Transport, WipeRequest, apply};
use crate::entity::{self, Entity};
use crate::error::{Error, Result};
use crate::outbox::Rejection;
use crate::rules;
use crate::store::Store;

impl Store {
    /// Sends every pending operation, batch by batch, applying receipts.
    pub(super) async fn push_outbox(&self, run: &Run<'_, impl Transport>, report: &mut SyncReport) -> Result<()> {
        let Run {
            transport,
            token,
            retry,
            progress,
        } = run;
        let options = retry.options();
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
            let resp = match retry.run(|| transport.push(token, &req)).await {
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
            if ok + bad == 0 {
                // Not one receipt for what was sent: sending the same batch
                // again would get the same answer for ever. The operations
                // wait (back to pending) for the next sync.
                tracing::warn!("a push was answered without receipts");
                return Err(Error::Server {
                    status: 0,
                    code: "bad_response".into(),
                });
            }
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
        Ok(())
    }

    /// What the push step sends for `op`: a create's record as it stands
    /// now (it is not on the server yet, so its current state is exactly
    /// what the server must get), an update's changed fields; in both, only
    /// the fields a device writes (the local record holds the server's too).
    pub fn payload(&self, op: &crate::outbox::Operation) -> Result<serde_json::Map<String, serde_json::Value>> {
        let fields = match op.kind {
            OpKind::Create => self.read(|c| entity::current_fields(c, op.entity, &op.entity_id))?,
            OpKind::Update | OpKind::Delete => op.patch.clone(),
        };
        Ok(rules::device_fields(op.entity, &fields))
    }

    /// The next operations to send, oldest first, marked as sending.
    /// Operations left "sending" by an interrupted sync are sent again: the
    /// server answers a repeat with its original receipt.
    fn next_batch(&self, options: &SyncOptions) -> Result<Vec<(i64, Operation)>> {
        let ops = self.pending_operations(options.batch_operations.min(limits::PUSH_MAX_OPERATIONS) as u32)?;
        let mut batch = Vec::with_capacity(ops.len());
        let mut bytes = 0;
        for op in ops {
            let patch = self.payload(&op)?;
            let size = serde_json::to_vec(&patch).map(|v| v.len()).unwrap_or(0) + 200;
            if !batch.is_empty() && bytes + size > options.batch_bytes.min(limits::PUSH_MAX_BYTES) {
                break;
            }
            bytes += size;
            batch.push((
                op.seq,
                Operation {
                    op_id: op.op_id,
                    entity: op.entity.as_str().to_owned(),
                    entity_id: op.entity_id,
                    kind: op.kind,
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
                        if exact && let Some(kind) = Entity::parse(&op.entity) {
                            apply::set_server_version(tx, kind, &op.entity_id, *version)?;
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
}
