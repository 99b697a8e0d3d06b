//! Repairs what servers before SYNC.md invariant 13 stored and phones cannot
//! read (`fieldgrid-server repair-records`). Each record is read in its
//! entity's wire shape; one that does not read gets the fields it lacks as
//! the server's rules fill them in for a new record (a timeline event
//! without a note gets `""`), and is stored as a new version, so every
//! phone pulls it again and reads it. Records that read are never touched.
//! A record that no filling-in makes readable (a value of the wrong type) is
//! listed by id and left as it is: phones set it aside and report it, and
//! the centre sees it.

use fieldgrid_domain::{Entity, rules, wire};

use crate::error::ApiResult;
use crate::records::Record;
use crate::store::Store;

/// Records read per page of the scan.
const PAGE: usize = 1_000;

/// What a repair found and did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Repair {
    /// Records read.
    pub checked: u64,
    /// Records completed and stored as a new version (or, with `dry_run`,
    /// that would be).
    pub repaired: Vec<String>,
    /// Records no completion makes readable: (entity, id, field).
    pub unreadable: Vec<(String, String, String)>,
}

/// Reads every record and repairs those phones cannot read; with
/// `dry_run`, only says which. Run it with the server stopped (as for an
/// upgrade): a record is read and rewritten outside a push's transaction.
pub async fn repair_records(store: &Store, now: i64, dry_run: bool) -> ApiResult<Repair> {
    let catalogue = store.catalogue().await?;
    let mut out = Repair::default();
    let mut after = String::new();
    loop {
        let page = store.records_after(&after, PAGE).await?;
        let Some(last) = page.last() else {
            return Ok(out);
        };
        after = last.id.clone();
        let mut fixed = Vec::new();
        for mut rec in page {
            out.checked += 1;
            let Some(entity) = Entity::parse(&rec.entity).filter(|_| !rec.deleted) else {
                continue; // tombstones, conflicts, the catalogue: read as they are
            };
            if wire::read(entity, &rec.id, &rec.fields).is_ok() {
                continue;
            }
            match completed(&rec, entity, now, &catalogue) {
                Ok(fields) => {
                    out.repaired.push(rec.id.clone());
                    rec.fields = fields;
                    rec.version += 1;
                    fixed.push(rec);
                }
                Err(wire::Unreadable { entity, field }) => {
                    out.unreadable.push((entity.to_owned(), rec.id.clone(), field));
                }
            }
        }
        if !dry_run && !fixed.is_empty() {
            tracing::info!(
                records = fixed.len(),
                "unreadable records completed in their wire shape"
            );
            store.save_records(fixed, now).await?;
        }
    }
}

/// A record's fields with those it lacks filled in as the rules fill them
/// for a device's new record, then completed in the wire shape.
fn completed(
    rec: &Record,
    entity: Entity,
    now: i64,
    catalogue: &fieldgrid_domain::Catalogue,
) -> Result<serde_json::Map<String, serde_json::Value>, wire::Unreadable> {
    let mut fields = rec.fields.clone();
    if let Ok(checked) = rules::check(entity, &rules::device_fields(entity, &rec.fields), now, catalogue) {
        for (k, v) in checked {
            fields.entry(k).or_insert(v);
        }
    }
    wire::complete(entity, &rec.id, &fields)
}
