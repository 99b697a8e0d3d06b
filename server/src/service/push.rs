//! A push and a centre action: each a transaction of storage, its decisions
//! the trust boundary's (`decide`). Every operation of a push gets a
//! receipt: the stored one for a repeat by its sender, a refusal for
//! someone else's key, or a new decision carried out in the transaction.

use std::collections::HashMap;

use fieldgrid_domain::model::EventKind;
use fieldgrid_protocol::{CentreEventRequest, CentreIncident, Operation, Receipt, codes};

use crate::caller::Caller;
use crate::decide::{self, Context, Write};
use crate::error::{ApiError, ApiResult};
use crate::records::Record;
use crate::store::{CATALOGUE_ID, Store, StoredReceipt, Tx, TxJob, catalogue_of};

async fn load_into<T: Tx>(tx: &mut T, ids: Vec<String>, loaded: &mut HashMap<String, Record>) -> ApiResult<()> {
    let missing: Vec<String> = ids.into_iter().filter(|id| !loaded.contains_key(id)).collect();
    if !missing.is_empty() {
        for r in tx.records(&missing).await? {
            loaded.insert(r.id.clone(), r);
        }
    }
    Ok(())
}

/// Every operation of a push gets a receipt: the stored one for a repeat by
/// its sender, a refusal for someone else's key, or a new decision carried
/// out in `tx`. Returns the receipts and the ids of the records written.
async fn push_in<T: Tx>(
    tx: &mut T,
    caller: &Caller,
    ops: &[Operation],
    now: i64,
) -> ApiResult<(Vec<Receipt>, Vec<String>)> {
    let catalogue = catalogue_of(tx.records(&[CATALOGUE_ID.to_owned()]).await?.first());
    let ctx = Context {
        caller,
        now,
        catalogue: &catalogue,
    };
    let mut receipts = Vec::with_capacity(ops.len());
    let mut written = Vec::new();
    for op in ops {
        if let Some(stored) = tx.receipt(&op.op_id).await? {
            // SYNC.md invariant 12: an idempotency key is its sender's.
            // Someone else's op_id is refused (nothing stored for it), never
            // answered with the first sender's receipt.
            if stored.account_id != caller.account_id || stored.device_id != caller.device_id {
                tracing::warn!(entity = %op.entity, "an operation id of another sender was reused");
                receipts.push(Receipt {
                    op_id: op.op_id.clone(),
                    duplicate: false,
                    outcome: decide::reject(
                        codes::NOT_ALLOWED,
                        Some("op_id"),
                        "this operation id was used by another sender: make a new one",
                    ),
                });
                continue;
            }
            let mut receipt = stored.receipt;
            receipt.duplicate = true;
            receipts.push(receipt);
            continue;
        }
        let decision = match decide::admissible(op) {
            Some(refused) => decide::Decision {
                outcome: refused,
                writes: vec![],
            },
            None => {
                let mut loaded = HashMap::new();
                load_into(tx, vec![op.entity_id.clone()], &mut loaded).await?;
                let existing = loaded.remove(&op.entity_id);
                // Twice: a photo of a timeline event names the event first,
                // then (once loaded) its incident.
                for _ in 0..2 {
                    let ids = decide::references(op, existing.as_ref(), &loaded);
                    load_into(tx, ids, &mut loaded).await?;
                }
                let mut facts = decide::Facts::default();
                match decide::needs(op, existing.as_ref(), now) {
                    Some(decide::Need::Photos(owner)) => facts.photos_of_owner = tx.photos_of(&owner).await?,
                    Some(decide::Need::Children) => facts.live_children = tx.live_children(&op.entity_id).await?,
                    Some(decide::Need::IdNumber { grid, id_number }) => {
                        facts.id_number_taken = tx.id_number_taken(&grid, &id_number, &op.entity_id).await?;
                    }
                    None => {}
                }
                decide::decide(&ctx, op, existing.as_ref(), &loaded, &facts)
            }
        };
        for w in &decision.writes {
            tx.write(w, now).await?;
            if let Write::Record(r) = w {
                written.push(r.id.clone());
            }
        }
        let receipt = Receipt {
            op_id: op.op_id.clone(),
            duplicate: false,
            outcome: decision.outcome,
        };
        tx.save_receipt(
            &StoredReceipt {
                account_id: caller.account_id.clone(),
                device_id: caller.device_id.clone(),
                receipt: receipt.clone(),
            },
            now,
        )
        .await?;
        receipts.push(receipt);
    }
    Ok((receipts, written))
}

/// The centre's event on incident `id`, carried out in `tx`: the incident
/// as it becomes, and the ids written.
async fn centre_event_in<T: Tx>(
    tx: &mut T,
    caller: &Caller,
    id: &str,
    req: &CentreEventRequest,
    kind: EventKind,
    now: i64,
) -> ApiResult<(Record, Vec<String>)> {
    let incident = tx
        .records(&[id.to_owned()])
        .await?
        .into_iter()
        .find(|r| r.entity == "incident" && !r.deleted)
        .ok_or_else(|| ApiError::not_found("no such incident"))?;
    let known = match (&req.department, kind) {
        (Some(d), EventKind::Dispatched) => tx.department_exists(d).await?,
        _ => false,
    };
    let (incident, event, photos) = decide::centre_event(caller, incident, req, kind, known, now)?;
    let ids = vec![incident.id.clone(), event.id.clone()];
    tx.write(&Write::Record(incident.clone()), now).await?;
    tx.write(&Write::Record(event), now).await?;
    for w in &photos {
        tx.write(w, now).await?;
    }
    Ok((incident, ids))
}

struct Push {
    caller: Caller,
    ops: Vec<Operation>,
    now: i64,
}

impl TxJob for Push {
    type Output = Vec<Receipt>;
    type Error = ApiError;

    async fn run<T: Tx>(&self, tx: &mut T) -> ApiResult<Vec<Receipt>> {
        push_in(tx, &self.caller, &self.ops, self.now)
            .await
            .map(|(receipts, _)| receipts)
    }
}

struct CentreEvent {
    caller: Caller,
    id: String,
    req: CentreEventRequest,
    kind: EventKind,
    now: i64,
}

impl TxJob for CentreEvent {
    type Output = ();
    type Error = ApiError;

    async fn run<T: Tx>(&self, tx: &mut T) -> ApiResult<()> {
        centre_event_in(tx, &self.caller, &self.id, &self.req, self.kind, self.now)
            .await
            .map(|_| ())
    }
}

impl Store {
    /// Applies a push: one receipt per operation.
    pub async fn push(&self, caller: &Caller, ops: Vec<Operation>, now: i64) -> ApiResult<Vec<Receipt>> {
        self.transact(Push {
            caller: caller.clone(),
            ops,
            now,
        })
        .await
    }

    /// The centre's event on an incident; the incident as it becomes.
    pub async fn centre_event(
        &self,
        caller: &Caller,
        id: &str,
        req: CentreEventRequest,
        kind: EventKind,
        now: i64,
    ) -> ApiResult<CentreIncident> {
        self.transact(CentreEvent {
            caller: caller.clone(),
            id: id.to_owned(),
            req,
            kind,
            now,
        })
        .await?;
        self.incident_row(id, now)
            .await?
            .ok_or_else(|| ApiError::internal("incident row missing"))
    }
}
