//! The district's own fields of a record (its `extra`; the catalogue's
//! `field_defs`), on residents, households, places and incidents.
//!
//! Kept whole, by record id, in one table beside the records (schema step
//! 5) and read by each kind's loader, so the four tables and their writers
//! stay as they were. Values are checked by `rules::normalised_extra`, the
//! function the server applies. Codes this build's catalogue does not know
//! (a newer catalogue's) are kept as they came. An edit sends only the
//! values it changed (null: cleared), which the server merges field by
//! field (`rules::patched`), as it merges a record's own fields.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Map, Value};

use super::{ItemAnswer, editable};
use crate::catalogue::{Catalogue, EXTENSIBLE};
use crate::entity::{self, Entity};
use crate::error::{Code, Error, Result};
use crate::model::Extra;
use crate::outbox::{self, Change};
use crate::rules;
use crate::store::Store;

/// The `extra` of record `id` (empty when it has none).
pub(crate) fn load(conn: &Connection, id: &str) -> Result<Extra> {
    let fields: Option<String> = conn
        .prepare_cached("SELECT fields FROM record_extra WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    Ok(match fields {
        Some(f) => serde_json::from_str(&f)?,
        None => Extra::default(),
    })
}

/// Stores the `extra` of a record just created: nothing to write when it
/// is empty (most records; a bulk import of them writes no row here).
pub(crate) fn save_new(conn: &Connection, id: &str, extra: &Extra) -> Result<()> {
    if extra.is_empty() {
        Ok(())
    } else {
        save(conn, id, extra)
    }
}

/// Stores the `extra` of record `id` (none kept when it is empty).
pub(crate) fn save(conn: &Connection, id: &str, extra: &Extra) -> Result<()> {
    if extra.is_empty() {
        conn.prepare_cached("DELETE FROM record_extra WHERE id = ?1")?
            .execute([id])?;
    } else {
        conn.prepare_cached(
            "INSERT INTO record_extra (id, fields) VALUES (?1, ?2) ON CONFLICT (id) DO UPDATE SET fields = ?2",
        )?
        .execute(params![id, serde_json::to_string(extra)?])?;
    }
    Ok(())
}

/// The values of a form, one per field, as a JSON object; a field given
/// twice is refused (named when the catalogue has it).
fn values(catalogue: &Catalogue, entity: Entity, given: &[ItemAnswer]) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for a in given {
        // Named when the catalogue has it; what was typed is never repeated.
        let field = || match catalogue.fields_of(entity).find(|d| d.item.code == a.item) {
            Some(d) => format!("extra.{}", d.item.code),
            None => "extra".to_owned(),
        };
        let value = serde_json::to_value(&a.answer)?;
        if value.is_null() {
            return Err(Error::invalid(field(), Code::BadFormat)); // a number that is no number
        }
        if out.insert(a.item.clone(), value).is_some() {
            return Err(Error::invalid(field(), Code::Duplicate));
        }
    }
    Ok(out)
}

/// Where a new record comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    /// A form the worker fills in: the district's required fields are asked for.
    Form,
    /// What the worker did not type field by field (an incident an
    /// inspection raises, a district spreadsheet imported): values are
    /// checked, and required ones can be added later.
    Generated,
}

/// The `extra` of a record being created, checked: values of the
/// catalogue's fields for the kind, the required ones given when it comes
/// from a form.
pub(crate) fn of_new(catalogue: &Catalogue, entity: Entity, given: &[ItemAnswer], origin: Origin) -> Result<Extra> {
    of_form(catalogue, entity, given, origin == Origin::Form)
}

/// The `extra` a form gives (`new`: the required fields must be there).
pub(crate) fn of_form(catalogue: &Catalogue, entity: Entity, given: &[ItemAnswer], new: bool) -> Result<Extra> {
    let checked = rules::normalised_extra(catalogue, entity, &values(catalogue, entity, given)?, new)?;
    Ok(Extra(checked.into_iter().collect()))
}

impl Store {
    /// Sets and clears values of the district's own fields of a resident,
    /// household, place or incident draft, and returns the record's values.
    /// Other fields keep theirs, including fields of a newer catalogue than
    /// this phone's. A required field cannot be cleared. Queued like any
    /// edit (the whole `extra` travels, and a concurrent edit of another
    /// device's is a conflict on `extra`); an incident's fields change
    /// only while it is a draft.
    pub fn update_extra(&self, entity: Entity, id: &str, set: &[ItemAnswer], clear: &[String]) -> Result<Extra> {
        if !EXTENSIBLE.contains(&entity) {
            return Err(Error::invalid("extra", Code::NotAllowed));
        }
        let catalogue = self.catalogue();
        let changes = of_form(&catalogue, entity, set, false)?;
        for code in clear {
            let def = catalogue
                .fields_of(entity)
                .find(|d| &d.item.code == code)
                .ok_or_else(|| Error::invalid("extra", Code::UnknownReference))?;
            if def.item.required && !def.retired {
                return Err(Error::invalid(format!("extra.{code}"), Code::Required));
            }
        }
        // Nor is one emptied by blank text.
        if let Some(def) = catalogue.fields_of(entity).find(|d| {
            d.item.required && !d.retired && changes.0.get(&d.item.code).is_some_and(|v| v.as_str() == Some(""))
        }) {
            return Err(Error::invalid(format!("extra.{}", def.item.code), Code::Required));
        }
        let now = self.now_ms();
        self.write(|tx| {
            let base = if entity == Entity::Incident {
                super::incidents::load_draft(tx, id)?;
                None
            } else {
                Some(editable(tx, entity, id)?)
            };
            let old = load(tx, id)?;
            let mut new = old.clone();
            for code in clear {
                new.0.remove(code);
            }
            new.0.extend(changes.0.clone());
            if new == old {
                return Ok(old);
            }
            save(tx, id, &new)?;
            let table = entity::table(entity);
            tx.prepare_cached(&format!("UPDATE {table} SET updated_at = ?2 WHERE id = ?1"))?
                .execute(params![id, now])?;
            if let Some(base) = base {
                // The values changed (null: cleared); the server merges them
                // into the record's, field by field.
                let mut changed: Map<String, Value> = new
                    .0
                    .iter()
                    .filter(|(k, v)| old.0.get(*k) != Some(*v))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                changed.extend(
                    old.0
                        .keys()
                        .filter(|k| !new.0.contains_key(*k))
                        .map(|k| (k.clone(), Value::Null)),
                );
                let mut patch = Map::new();
                patch.insert("extra".into(), Value::Object(changed));
                outbox::enqueue(tx, entity, id, Change::Update { patch: &patch, base }, now)?;
            }
            Ok(new)
        })
    }
}
