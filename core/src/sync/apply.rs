//! Writing what the server says into the local store: receipts of pushed
//! operations, and pulled changes (with local pending edits kept on top).

use rusqlite::{OptionalExtension, Transaction, params};
use serde_json::{Map, Value};

use crate::capture::extra;
use crate::capture::residents::{INSERT_RESIDENT, resident_row};
use crate::entity::{self, Entity};
use crate::error::Result;
use crate::model::{Household, Incident, IncidentEvent, IncidentStatus, Inspection, Place, Resident, ServiceLog};
use crate::search;
use fieldgrid_domain::wire::{self, WireRecord};
use fieldgrid_protocol::{Change, pulled};

/// Records that the server has the record at `version` (never moving back).
pub(crate) fn set_server_version(tx: &Transaction<'_>, entity: Entity, id: &str, version: i64) -> Result<()> {
    if !entity::has_versions(entity) {
        return Ok(());
    }
    let table = entity::table(entity);
    tx.prepare_cached(&format!(
        "UPDATE {table} SET server_version = ?2 WHERE id = ?1 AND (server_version IS NULL OR server_version < ?2)"
    ))?
    .execute(params![id, version])?;
    Ok(())
}

/// Fields of a record that local edits not yet confirmed by the server have
/// set: they stay as they are when the server's version arrives. `None`
/// means the whole record (an unconfirmed create).
fn pending_fields(tx: &Transaction<'_>, id: &str) -> Result<Option<Vec<String>>> {
    let mut stmt = tx.prepare_cached("SELECT kind, patch FROM outbox WHERE entity_id = ?1 AND state <> 'rejected'")?;
    let mut rows = stmt.query([id])?;
    let mut fields = Vec::new();
    while let Some(r) = rows.next()? {
        let kind: String = r.get(0)?;
        let patch: Option<String> = r.get(1)?;
        match (kind.as_str(), patch) {
            ("create", _) | ("delete", _) => return Ok(None),
            (_, Some(p)) => {
                let m: Map<String, Value> = serde_json::from_str(&p)?;
                for (k, v) in m {
                    match v {
                        // The district's fields are edited one by one.
                        Value::Object(extra) if k == "extra" => {
                            fields.extend(extra.into_iter().map(|(code, _)| format!("extra.{code}")));
                        }
                        _ => fields.push(k),
                    }
                }
            }
            _ => {}
        }
    }
    Ok(Some(fields))
}

/// What became of one pulled change.
#[derive(Debug, PartialEq)]
pub(crate) enum Applied {
    /// Written (or here already).
    Yes,
    /// Of a kind this version does not know (a newer server's): passed over.
    Unknown,
    /// A record this version cannot read in its entity's wire shape: nothing
    /// was written; the caller sets it aside (SYNC.md invariant 13).
    Unreadable(wire::Unreadable),
}

/// Applies one pulled change.
pub(crate) fn apply_change(tx: &Transaction<'_>, c: &Change, now: i64) -> Result<Applied> {
    if c.entity == pulled::CONFLICT {
        let get = |k: &str| c.fields.get(k).cloned().unwrap_or(Value::Null);
        tx.prepare_cached(
            "INSERT INTO conflicts (id, entity, entity_id, grid_id, field, winning_value, losing_value, at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT (id) DO NOTHING",
        )?
        .execute(params![
            c.entity_id,
            get("entity").as_str().unwrap_or_default(),
            get("entity_id").as_str().unwrap_or_default(),
            c.grid_id,
            get("field").as_str().unwrap_or_default(),
            get("winning_value").to_string(),
            get("losing_value").to_string(),
            get("at_ms").as_i64().unwrap_or(now)
        ])?;
        return Ok(Applied::Yes);
    }
    if c.entity == pulled::CATALOGUE {
        // Installed if newer; the store reloads it after the pull. Kept as
        // the server sent it: what this build does not read (parts of a
        // newer catalogue) is there for the build that will.
        let Ok(catalogue) = serde_json::from_value::<crate::Catalogue>(Value::Object(c.fields.clone())) else {
            return Ok(Applied::Unknown);
        };
        tx.prepare_cached(
            "INSERT INTO catalogue (id, version, body) VALUES (1, ?1, ?2)
             ON CONFLICT (id) DO UPDATE SET version = ?1, body = ?2 WHERE excluded.version > catalogue.version",
        )?
        .execute(params![catalogue.version, serde_json::to_string(&c.fields)?])?;
        return Ok(Applied::Yes);
    }
    let Some(kind) = Entity::parse(&c.entity) else {
        return Ok(Applied::Unknown);
    };
    if !entity::has_versions(kind) {
        return apply_photo(tx, c, now); // a photo never changes
    }
    let table = entity::table(kind);
    let exists: Option<Option<i64>> = tx
        .prepare_cached(&format!("SELECT server_version FROM {table} WHERE id = ?1"))?
        .query_row([&c.entity_id], |r| r.get(0))
        .optional()?;
    if exists.flatten().is_some_and(|v| v >= c.version) {
        return Ok(Applied::Yes); // this version is here already (our own write coming back)
    }
    if c.deleted {
        tx.prepare_cached(&format!(
            "UPDATE {table} SET deleted_at = coalesce(deleted_at, ?2), server_version = ?3 WHERE id = ?1"
        ))?
        .execute(params![c.entity_id, now, c.version])?;
        if kind == Entity::Resident && exists.is_some() {
            let (rid, building, old) = load_resident_raw(tx, &c.entity_id)?;
            search::unindex_resident(tx, rid, &old, building.as_deref())?;
        }
        return Ok(Applied::Yes);
    }
    // The server's fields, with fields of unconfirmed local edits kept.
    let mut fields = c.fields.clone();
    fields.insert("id".into(), Value::String(c.entity_id.clone()));
    if exists.is_some() {
        match pending_fields(tx, &c.entity_id)? {
            None => {
                set_version(tx, table, &c.entity_id, c.version)?;
                return Ok(Applied::Yes);
            }
            Some(keep) if !keep.is_empty() => {
                let local = entity::current_fields(tx, kind, &c.entity_id)?;
                for k in keep {
                    if let Some(code) = k.strip_prefix("extra.") {
                        // One of the district's fields: the local value (or
                        // none) over the server's others.
                        let mut extra = match fields.remove("extra") {
                            Some(Value::Object(o)) => o,
                            _ => Map::new(),
                        };
                        match local.get("extra").and_then(|e| e.get(code)) {
                            Some(v) => extra.insert(code.to_owned(), v.clone()),
                            None => extra.remove(code),
                        };
                        fields.insert("extra".into(), Value::Object(extra));
                        continue;
                    }
                    // A field the local record leaves out is empty there: it
                    // stays empty.
                    match local.get(&k) {
                        Some(v) => fields.insert(k, v.clone()),
                        None => fields.remove(&k),
                    };
                }
            }
            Some(_) => {}
        }
    }
    // Read in the entity's one wire shape (the server's too) before
    // anything is written: a record that does not read changes nothing.
    let record = match wire::read_owned(kind, &c.entity_id, fields) {
        Ok(r) => r,
        Err(e) => return Ok(Applied::Unreadable(e)),
    };
    match record {
        WireRecord::Place(p) => upsert_place(tx, &p, c.version, now)?,
        WireRecord::Household(h) => upsert_household(tx, &h, c.version, now)?,
        WireRecord::Resident(r) => upsert_resident(tx, &r, exists.is_some(), c.version, now)?,
        WireRecord::Incident(i) => upsert_incident(tx, &c.fields, &i, c.version, now)?,
        WireRecord::IncidentEvent(e) => upsert_event(tx, &c.fields, &e, c.version)?,
        WireRecord::ServiceLog(l) => upsert_service_log(tx, &l, c.version, now)?,
        WireRecord::Inspection(i) => upsert_inspection(tx, &i, c.version, now)?,
        // Photos have no versions (they never change): applied above.
        WireRecord::Photo(_) => return apply_photo(tx, c, now),
    }
    Ok(Applied::Yes)
}

fn set_version(tx: &Transaction<'_>, table: &str, id: &str, version: i64) -> Result<()> {
    tx.prepare_cached(&format!(
        "UPDATE {table} SET server_version = max(coalesce(server_version, 0), ?2) WHERE id = ?1"
    ))?
    .execute(params![id, version])?;
    Ok(())
}

fn upsert_place(tx: &Transaction<'_>, p: &Place, version: i64, now: i64) -> Result<()> {
    extra::save(tx, &p.id, &p.extra)?;
    tx.prepare_cached(
        "INSERT INTO places (id, grid_id, kind, parent_id, name, created_at, updated_at, server_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)
         ON CONFLICT (id) DO UPDATE SET kind = ?3, parent_id = ?4, name = ?5, updated_at = ?6, server_version = ?7",
    )?
    .execute(params![
        p.id,
        p.grid_id,
        p.kind.as_str(),
        p.parent_id,
        p.name,
        now,
        version
    ])?;
    // Households of this unit (or building) that arrived before it.
    let waiting: Vec<String> = tx
        .prepare_cached("SELECT id FROM households WHERE unit_id = ?1")?
        .query_map([&p.id], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    let building = building_of(tx, Some(&p.id))?;
    for household in waiting {
        tx.prepare_cached("UPDATE households SET building_id = ?2 WHERE id = ?1")?
            .execute(params![household, building])?;
        refresh_residents_of(tx, &household, building.as_deref())?;
    }
    Ok(())
}

/// Pages arrive in any order (SYNC.md invariant 11): residents that came
/// before their household, or whose household's building has changed, get
/// their derived building (and its search rows) brought up to date.
fn refresh_residents_of(tx: &Transaction<'_>, household_id: &str, building: Option<&str>) -> Result<()> {
    let stale: Vec<String> = tx
        .prepare_cached(
            "SELECT id FROM residents WHERE household_id = ?1 AND building_id IS NOT ?2 AND deleted_at IS NULL",
        )?
        .query_map(params![household_id, building], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for id in stale {
        let (rid, old_building, resident) = load_resident_raw(tx, &id)?;
        search::unindex_resident(tx, rid, &resident, old_building.as_deref())?;
        tx.prepare_cached("UPDATE residents SET building_id = ?2 WHERE rid = ?1")?
            .execute(params![rid, building])?;
        search::index_resident(tx, rid, &resident, building)?;
    }
    Ok(())
}

/// The building of a unit or building id, when known locally.
fn building_of(tx: &Transaction<'_>, unit_id: Option<&str>) -> Result<Option<String>> {
    let Some(unit) = unit_id else { return Ok(None) };
    let row: Option<(String, Option<String>)> = tx
        .prepare_cached("SELECT kind, parent_id FROM places WHERE id = ?1")?
        .query_row([unit], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    Ok(match row {
        Some((kind, parent)) if kind == "unit" => parent,
        Some((kind, _)) if kind == "building" => Some(unit.to_owned()),
        _ => None,
    })
}

fn upsert_household(tx: &Transaction<'_>, h: &Household, version: i64, now: i64) -> Result<()> {
    extra::save(tx, &h.id, &h.extra)?;
    let building = building_of(tx, h.unit_id.as_deref())?;
    tx.prepare_cached(
        "INSERT INTO households (id, grid_id, unit_id, building_id, room, address, notes, created_at, updated_at, server_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?8, ?9)
         ON CONFLICT (id) DO UPDATE SET unit_id = ?3, building_id = ?4, room = ?5, address = ?6, notes = ?7,
           updated_at = ?8, server_version = ?9",
    )?
    .execute(params![h.id, h.grid_id, h.unit_id, building, h.room, h.address.as_str(), h.notes.as_str(), now, version])?;
    refresh_residents_of(tx, &h.id, building.as_deref())
}

fn load_resident_raw(tx: &Transaction<'_>, id: &str) -> Result<(i64, Option<String>, Resident)> {
    let (rid, building): (i64, Option<String>) = tx
        .prepare_cached("SELECT rid, building_id FROM residents WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?)))?;
    Ok((rid, building, crate::capture::residents::resident_fields(tx, id)?))
}

fn upsert_resident(tx: &Transaction<'_>, r: &Resident, exists: bool, version: i64, now: i64) -> Result<()> {
    extra::save(tx, &r.id, &r.extra)?;
    let building: Option<String> = match &r.household_id {
        Some(h) => tx
            .prepare_cached("SELECT building_id FROM households WHERE id = ?1")?
            .query_row([h], |row| row.get(0))
            .optional()?
            .flatten(),
        None => None,
    };
    if exists {
        let (rid, old_building, old) = load_resident_raw(tx, &r.id)?;
        search::unindex_resident(tx, rid, &old, old_building.as_deref())?;
    }
    const UPDATE: &str = " ON CONFLICT (id) DO UPDATE SET household_id = ?3, building_id = ?4, name = ?5, sex = ?6,
           id_number = ?7, id_rev = ?8, birth_date = ?9, phone = ?10, phone_rev = ?11, residence = ?12,
           care_tags = ?13, notes = ?14, updated_at = ?15, server_version = ?16";
    // A new resident is a plain insert (no upsert, no statement journal).
    let sql = if exists {
        format!("{INSERT_RESIDENT}{UPDATE}")
    } else {
        INSERT_RESIDENT.to_owned()
    };
    tx.prepare_cached(&sql)?
        .execute(resident_row(r, building.as_deref(), now, Some(version))?)?;
    let rid: i64 = if exists {
        tx.prepare_cached("SELECT rid FROM residents WHERE id = ?1")?
            .query_row([&r.id], |row| row.get(0))?
    } else {
        tx.last_insert_rowid()
    };
    search::index_resident(tx, rid, r, building.as_deref())?;
    Ok(())
}

fn upsert_incident(tx: &Transaction<'_>, raw: &Map<String, Value>, i: &Incident, version: i64, now: i64) -> Result<()> {
    extra::save(tx, &i.id, &i.extra)?;
    let status = raw
        .get("status")
        .and_then(Value::as_str)
        .and_then(IncidentStatus::parse)
        .filter(|s| *s != IncidentStatus::Draft)
        .unwrap_or(IncidentStatus::Reported);
    tx.prepare_cached(
        "INSERT INTO incidents (id, grid_id, category, title, description, location, address, occurred_at, reporter,
           involved, status, department, deadline_at, created_at, updated_at, server_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?14, ?15)
         ON CONFLICT (id) DO UPDATE SET status = ?11, department = ?12, deadline_at = ?13, updated_at = ?14,
           server_version = ?15",
    )?
    .execute(params![
        i.id,
        i.grid_id,
        i.category,
        i.title,
        i.description.as_str(),
        i.location.map(|l| serde_json::to_string(&l)).transpose()?,
        i.address.as_str(),
        i.occurred_at_ms,
        i.reporter,
        serde_json::to_string(&i.involved_residents)?,
        status.as_str(),
        raw.get("department").and_then(Value::as_str),
        raw.get("deadline_at_ms").and_then(Value::as_i64),
        now,
        version
    ])?;
    Ok(())
}

fn upsert_event(tx: &Transaction<'_>, raw: &Map<String, Value>, e: &IncidentEvent, version: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO incident_events (id, incident_id, kind, actor, note, department, deadline_at, at, server_at, server_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (id) DO UPDATE SET server_at = ?9, server_version = ?10",
    )?
    .execute(params![
        e.id,
        e.incident_id,
        e.kind.as_str(),
        e.actor,
        e.note.as_str(),
        e.department,
        e.deadline_at_ms,
        e.at_ms,
        raw.get("server_at_ms").and_then(Value::as_i64),
        version
    ])?;
    Ok(())
}

fn upsert_service_log(tx: &Transaction<'_>, l: &ServiceLog, version: i64, now: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO service_logs (id, grid_id, kind, residents, notes, occurred_at, created_at, updated_at, server_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?8)
         ON CONFLICT (id) DO UPDATE SET server_version = ?8",
    )?
    .execute(params![
        l.id,
        l.grid_id,
        l.kind.as_str(),
        serde_json::to_string(&l.resident_ids)?,
        l.notes.as_str(),
        l.occurred_at_ms,
        now,
        version
    ])?;
    Ok(())
}

fn upsert_inspection(tx: &Transaction<'_>, i: &Inspection, version: i64, now: i64) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO inspections (id, grid_id, place_id, checklist, answers, item_photos, raised_incidents, location,
           notes, occurred_at, created_at, updated_at, server_version)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?11, ?12)
         ON CONFLICT (id) DO UPDATE SET server_version = ?12",
    )?
    .execute(params![
        i.id,
        i.grid_id,
        i.place_id,
        i.checklist,
        serde_json::to_string(&i.answers)?,
        serde_json::to_string(&i.item_photos)?,
        serde_json::to_string(&i.raised_incidents)?,
        i.location.as_ref().map(serde_json::to_string).transpose()?,
        i.notes.as_str(),
        i.occurred_at_ms,
        now,
        version
    ])?;
    Ok(())
}

fn apply_photo(tx: &Transaction<'_>, c: &Change, now: i64) -> Result<Applied> {
    let p = match wire::read(Entity::Photo, &c.entity_id, &c.fields) {
        Ok(WireRecord::Photo(p)) => p,
        Ok(_) => return Ok(Applied::Unknown),
        Err(e) => return Ok(Applied::Unreadable(e)),
    };
    tx.prepare_cached(
        "INSERT INTO photos (id, owner_kind, owner_id, sha256, size, mime, taken_at, location, created_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9) ON CONFLICT (id) DO NOTHING",
    )?
    .execute(params![
        p.id,
        p.owner.kind(),
        p.owner.id(),
        p.sha256,
        p.size as i64,
        p.mime,
        p.taken_at_ms,
        p.location.map(|l| serde_json::to_string(&l)).transpose()?,
        now
    ])?;
    Ok(Applied::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Answer, Catalogue, ItemAnswer, NewHousehold, Store, catalogue};

    /// A version of a record pulled while a local edit of one of the
    /// district's fields waits keeps that field's local value and takes
    /// the server's value of the others.
    #[test]
    fn a_pulled_version_keeps_unconfirmed_district_values_field_by_field() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path().join("s.db"), None).unwrap();
        let grid = store.put_grid(&crate::datagen::grid(1)).unwrap();
        let mut c = Catalogue::builtin();
        c.version = 2;
        c.field_defs = catalogue::demo_field_defs();
        store.replace_catalogue(c).unwrap();
        let answer = |item: &str, answer| ItemAnswer {
            item: item.into(),
            answer,
        };
        let h = store
            .create_household(&NewHousehold {
                grid_id: grid.id.clone(),
                unit_id: None,
                room: "301".into(),
                address: None,
                notes: String::new(),
                extra: vec![answer("gas_supplier", Answer::Text("管道天然气".into()))],
            })
            .unwrap();
        // The create confirmed at version 1, as its receipt would.
        store
            .write(|tx| {
                tx.execute("DELETE FROM outbox", [])?;
                set_server_version(tx, Entity::Household, &h.id, 1)
            })
            .unwrap();
        let set = [answer("smoke_alarm", Answer::YesNo(true))];
        store.update_extra(Entity::Household, &h.id, &set, &[]).unwrap();
        // Another phone's change of the other field arrives first.
        let fields = serde_json::json!({"grid_id": grid.id, "unit_id": null, "room": "301", "address": "",
                                        "notes": "", "extra": {"gas_supplier": "瓶装液化气"}});
        let change = Change {
            seq: 1,
            entity: "household".into(),
            entity_id: h.id.clone(),
            grid_id: grid.id.clone(),
            version: 2,
            deleted: false,
            fields: fields.as_object().cloned().unwrap(),
        };
        store.write(|tx| apply_change(tx, &change, 0)).unwrap();
        assert_eq!(
            serde_json::to_value(store.get_household(&h.id).unwrap().extra).unwrap(),
            serde_json::json!({"gas_supplier": "瓶装液化气", "smoke_alarm": true})
        );
    }
}
