//! What the server does with what a device or the centre sends: pure
//! functions from the request and the records it touches to an outcome and
//! the writes it makes. No I/O here: each storage engine loads what
//! [`references`] names, calls [`decide`] or [`centre_event`], and carries
//! out the [`Write`]s in its transaction (`store::push_in`), so both engines
//! decide alike and the rules are unit-tested without a database.

use std::collections::HashMap;

use fieldgrid_domain::catalogue::Catalogue;
use fieldgrid_domain::model::{EventKind, IncidentStatus};
use fieldgrid_domain::{rules, wire};
use fieldgrid_protocol::{ConflictRecord, Entity, OpKind, Operation, Outcome, codes};
use serde_json::{Map, Value, json};

use crate::caller::Caller;
use crate::records::{FieldVersion, Record};

/// A change the storage makes for a decision.
#[derive(Clone, Debug, PartialEq)]
pub enum Write {
    /// Insert or replace a record (it gets a new sequence number).
    Record(Record),
    /// A photo record names this hash: uploads of it are accepted from the
    /// grid's workers, at this size; the incident it documents is complete
    /// only once the bytes are here.
    PhotoRef(PhotoRef),
}

/// What a photo record tells the photo store.
#[derive(Clone, Debug, PartialEq)]
pub struct PhotoRef {
    /// The photo record.
    pub photo_id: String,
    /// The bytes' address.
    pub sha256: String,
    /// Its grid.
    pub grid_id: String,
    /// Its size in bytes.
    pub size: i64,
    /// The incident it documents (directly or through a timeline event).
    pub incident_id: Option<String>,
    /// The account that made the photo record: its bytes are served
    /// through this record once that account sent them.
    pub account_id: String,
    /// The record the photo belongs to.
    pub owner_id: String,
}

/// What the storage counted for a decision besides the records it loaded
/// (the phone's rules that look at other records).
#[derive(Clone, Debug, Default)]
pub struct Facts {
    /// For a new photo: the photo records its owner has already.
    pub photos_of_owner: i64,
    /// For a household or place being deleted: the live records it holds.
    pub live_children: i64,
    /// For a resident given an ID number: another live resident of the
    /// grid has it.
    pub id_number_taken: bool,
}

/// What the storage is to look up for an operation ([`Facts`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Need {
    /// The photos of this owner.
    Photos(String),
    /// What the record still holds.
    Children,
    /// Whether the grid has another live resident with this ID number.
    IdNumber {
        /// The grid.
        grid: String,
        /// The ID number as the rules store it.
        id_number: String,
    },
}

/// What [`Facts`] an operation's decision needs, if any (`now`: server
/// time, to read an ID number as the rules do).
pub fn needs(op: &Operation, existing: Option<&Record>, now: i64) -> Option<Need> {
    let entity = Entity::parse(&op.entity)?;
    match (entity, op.kind) {
        (Entity::Photo, OpKind::Create) => Some(Need::Photos(op.patch.get("owner")?.get("id")?.as_str()?.to_owned())),
        (Entity::Household | Entity::Place, OpKind::Delete) => Some(Need::Children),
        (Entity::Resident, OpKind::Create | OpKind::Update) => {
            // As the rules store it (a legacy 15-digit number is widened);
            // one they refuse is refused before the answer matters.
            let today = fieldgrid_domain::china_time::local(now)?.date();
            let raw = op.patch.get("id_number")?.as_str()?;
            let id_number = fieldgrid_domain::validate::IdNumber::parse(raw, today)
                .ok()?
                .as_str()
                .to_owned();
            let grid = match existing {
                Some(r) => r.grid_id.clone(),
                None => op.patch.get("grid_id")?.as_str()?.to_owned(),
            };
            Some(Need::IdNumber { grid, id_number })
        }
        _ => None,
    }
}

/// An operation's outcome and the writes that carry it out (none for a
/// rejection).
#[derive(Debug)]
pub struct Decision {
    /// What the receipt says.
    pub outcome: Outcome,
    /// What to write.
    pub writes: Vec<Write>,
}

impl Decision {
    fn refused(outcome: Outcome) -> Decision {
        Decision {
            outcome,
            writes: vec![],
        }
    }
}

/// Who decides, when, with which catalogue.
pub struct Context<'a> {
    /// The sender.
    pub caller: &'a Caller,
    /// Server time (ms).
    pub now: i64,
    /// The catalogue in force.
    pub catalogue: &'a Catalogue,
}

/// A rejection receipt's outcome.
pub fn reject(code: &str, field: Option<&str>, message: impl Into<String>) -> Outcome {
    Outcome::Rejected {
        code: code.to_owned(),
        field: field.map(str::to_owned),
        message: message.into(),
    }
}

fn invalid(e: fieldgrid_domain::ValidationError) -> Outcome {
    reject(e.code.as_str(), Some(&e.field), e.to_string())
}

/// A field name from a device, fit to be repeated in a receipt: the names
/// of the protocol are short snake_case words; anything else is not echoed.
fn field_name(name: &str) -> &str {
    if !name.is_empty()
        && name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        name
    } else {
        "patch"
    }
}

/// Whether devices may change records of this kind after creating them
/// (incidents change through their timeline events, which never change).
fn devices_change(entity: Entity) -> bool {
    match entity {
        Entity::Place | Entity::Household | Entity::Resident => true,
        Entity::Incident | Entity::IncidentEvent | Entity::ServiceLog | Entity::Inspection | Entity::Photo => false,
    }
}

/// What a device may send, decided before anything is read: a known entity,
/// a well-formed record id, only fields the entity lets a device write, and
/// a bounded size.
pub fn admissible(op: &Operation) -> Option<Outcome> {
    let Some(entity) = Entity::parse(&op.entity) else {
        return Some(unknown_entity());
    };
    if !rules::is_record_id(&op.entity_id) {
        return Some(reject(
            "bad_format",
            Some("entity_id"),
            "a record id is a UUID in lower-case hyphenated form",
        ));
    }
    if let Some(field) = rules::refused_field(entity, &op.patch) {
        let field = field_name(field);
        return Some(reject(
            codes::NOT_ALLOWED,
            Some(field),
            format!("a device may not write {field} of a {}", op.entity),
        ));
    }
    let size = serde_json::to_vec(&op.patch).map_or(usize::MAX, |v| v.len());
    if size > rules::RECORD_MAX_BYTES {
        return Some(reject(
            codes::TOO_LARGE,
            Some("patch"),
            format!("a record is at most {} bytes", rules::RECORD_MAX_BYTES),
        ));
    }
    None
}

/// How a record refers to others: (field, entity referred to, same grid
/// required). Events and photos take their grid from what they refer to.
fn reference_fields(entity: Entity) -> &'static [(&'static str, Entity, bool)] {
    match entity {
        Entity::Place => &[("parent_id", Entity::Place, true)],
        Entity::Household => &[("unit_id", Entity::Place, true)],
        Entity::Resident => &[("household_id", Entity::Household, true)],
        Entity::Incident => &[("involved_residents", Entity::Resident, false)],
        Entity::ServiceLog => &[("resident_ids", Entity::Resident, false)],
        Entity::Inspection => &[
            ("place_id", Entity::Place, true),
            ("raised_incidents", Entity::Incident, true),
        ],
        Entity::IncidentEvent | Entity::Photo => &[],
    }
}

fn unknown_entity() -> Outcome {
    reject(codes::UNSUPPORTED, Some("entity"), "unknown entity")
}

fn ids_in(fields: &Map<String, Value>, field: &str) -> Vec<String> {
    match fields.get(field) {
        Some(Value::String(id)) => vec![id.clone()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        _ => vec![],
    }
}

/// The ids of the records an operation's decision reads besides its own:
/// what its fields (and, for an update, its stored fields) refer to, and
/// for a photo owned by a timeline event, that event's incident (named by
/// the second call, with the event loaded).
pub fn references(op: &Operation, existing: Option<&Record>, loaded: &HashMap<String, Record>) -> Vec<String> {
    let Some(entity) = Entity::parse(&op.entity) else {
        return Vec::new();
    };
    let mut fields = existing.map(|e| e.fields.clone()).unwrap_or_default();
    fields.extend(op.patch.clone());
    let mut ids: Vec<String> = reference_fields(entity)
        .iter()
        .flat_map(|(field, _, _)| ids_in(&fields, field))
        .collect();
    match entity {
        Entity::IncidentEvent => ids.extend(ids_in(&fields, "incident_id")),
        Entity::Photo => {
            let owner = fields.get("owner");
            if let Some(id) = owner.and_then(|o| o.get("id")).and_then(Value::as_str) {
                ids.push(id.to_owned());
                if let Some(event) = loaded.get(id).filter(|r| r.entity == Entity::IncidentEvent.as_str()) {
                    ids.extend(event.str("incident_id").map(str::to_owned));
                }
            }
        }
        Entity::Place
        | Entity::Household
        | Entity::Resident
        | Entity::Incident
        | Entity::ServiceLog
        | Entity::Inspection => {}
    }
    ids.retain(|id| rules::is_record_id(id));
    ids.sort();
    ids.dedup();
    ids
}

/// Decides an admissible operation given its record (if any) and the
/// records [`references`] named. Every record the decision writes is
/// stored as every phone reads it (SYNC.md invariant 13): completed in its
/// entity's wire shape, or the operation is refused.
pub fn decide(
    ctx: &Context<'_>,
    op: &Operation,
    existing: Option<&Record>,
    loaded: &HashMap<String, Record>,
    facts: &Facts,
) -> Decision {
    let mut decision = decided(ctx, op, existing, loaded, facts);
    for w in &mut decision.writes {
        if let Write::Record(r) = w
            && let Err(e) = readable(r)
        {
            tracing::warn!(entity = e.entity, field = %e.field, "a record phones could not read was refused");
            return Decision::refused(reject(
                codes::UNREADABLE,
                Some(&e.field),
                format!("phones could not read this {} as sent", e.entity),
            ));
        }
    }
    decision
}

/// Completes a record about to be stored in its entity's wire shape
/// (records phones do not read as an entity, such as conflicts, and
/// tombstones are left as they are).
pub fn readable(r: &mut Record) -> Result<(), wire::Unreadable> {
    if let Some(entity) = Entity::parse(&r.entity)
        && !r.deleted
    {
        wire::complete_in_place(entity, &r.id, &mut r.fields)?;
    }
    Ok(())
}

fn decided(
    ctx: &Context<'_>,
    op: &Operation,
    existing: Option<&Record>,
    loaded: &HashMap<String, Record>,
    facts: &Facts,
) -> Decision {
    if let Some(refused) = admissible(op) {
        return Decision::refused(refused);
    }
    let Some(entity) = Entity::parse(&op.entity) else {
        return Decision::refused(unknown_entity());
    };
    if let Some(e) = existing
        && e.entity != op.entity
    {
        return Decision::refused(reject(
            codes::NOT_ALLOWED,
            Some("entity_id"),
            "the id belongs to a record of another entity",
        ));
    }
    let stamp = |v: i64| {
        serde_json::to_value(FieldVersion {
            v,
            device: ctx.caller.device_id.clone(),
            op: op.op_id.clone(),
        })
        .unwrap_or(Value::Null)
    };
    match op.kind {
        OpKind::Create => {
            if existing.is_some() {
                return Decision::refused(reject(codes::NOT_ALLOWED, Some("id"), "a record with this id exists"));
            }
            let mut fields = match rules::check(entity, &op.patch, ctx.now, ctx.catalogue) {
                Ok(f) => f,
                Err(e) => return Decision::refused(invalid(e)),
            };
            let grid = match grid_of_new(entity, &fields, loaded) {
                Ok(g) => g,
                Err(outcome) => return Decision::refused(outcome),
            };
            if !ctx.caller.may_write(&grid) {
                return Decision::refused(reject(
                    codes::FORBIDDEN,
                    Some("grid_id"),
                    "the grid is not assigned to this account",
                ));
            }
            if let Err(outcome) = check_references(ctx.caller, entity, &fields, &grid, loaded) {
                return Decision::refused(outcome);
            }
            if entity == Entity::Resident && facts.id_number_taken {
                return Decision::refused(duplicate_id_number());
            }
            let evidence = match entity {
                Entity::Inspection => check_raised(ctx, &fields, loaded),
                Entity::Photo => check_inspection_photo(&op.entity_id, &fields, loaded)
                    .and_then(|()| check_photo_count(&fields, facts)),
                _ => Ok(()),
            };
            if let Err(outcome) = evidence {
                return Decision::refused(outcome);
            }
            let mut writes = Vec::new();
            // The server's own fields.
            match entity {
                Entity::Incident => {
                    fields.insert("status".into(), json!(IncidentStatus::Draft.as_str()));
                    fields.insert("reported_at_ms".into(), json!(ctx.now));
                    fields.insert("reporter".into(), json!(ctx.caller.account_id));
                }
                Entity::IncidentEvent => {
                    fields.insert("at_ms".into(), json!(ctx.now));
                    fields.insert("server_at_ms".into(), json!(ctx.now));
                    fields.insert("actor".into(), json!(ctx.caller.account_id));
                    let incident_id = fields.get("incident_id").and_then(Value::as_str).unwrap_or_default();
                    let Some(mut incident) = loaded.get(incident_id).cloned() else {
                        return Decision::refused(reject(
                            codes::UNKNOWN_RECORD,
                            Some("incident_id"),
                            "no such incident",
                        ));
                    };
                    if let Err(outcome) = apply_event(&mut incident, &fields, &ctx.caller.device_id, ctx.now) {
                        return Decision::refused(outcome);
                    }
                    writes.push(Write::Record(incident));
                }
                Entity::Inspection => {
                    fields.insert("inspector".into(), json!(ctx.caller.account_id));
                    // Each raised incident names the inspection that raised
                    // it (and no other inspection may claim it).
                    for id in ids_in(&fields, "raised_incidents") {
                        if let Some(mut incident) = loaded.get(&id).cloned() {
                            incident.version += 1;
                            incident.fields.insert("inspection_id".into(), json!(op.entity_id));
                            incident
                                .field_versions
                                .insert("inspection_id".into(), stamp(incident.version));
                            writes.push(Write::Record(incident));
                        }
                    }
                }
                Entity::Photo => writes.push(Write::PhotoRef(photo_ref(
                    &op.entity_id,
                    &fields,
                    &grid,
                    &ctx.caller.account_id,
                    loaded,
                ))),
                Entity::Place | Entity::Household | Entity::Resident | Entity::ServiceLog => {}
            }
            let field_versions: Map<String, Value> = fields.keys().map(|k| (k.clone(), stamp(1))).collect();
            writes.push(Write::Record(Record {
                id: op.entity_id.clone(),
                entity: op.entity.clone(),
                grid_id: grid,
                version: 1,
                deleted: false,
                fields,
                field_versions,
            }));
            Decision {
                outcome: Outcome::Applied {
                    version: 1,
                    conflicts: vec![],
                },
                writes,
            }
        }
        OpKind::Update | OpKind::Delete => {
            let Some(existing) = existing else {
                return Decision::refused(reject(
                    codes::UNKNOWN_RECORD,
                    Some("id"),
                    "the server has no such record",
                ));
            };
            let mut rec = existing.clone();
            if !ctx.caller.may_write(&rec.grid_id) {
                return Decision::refused(reject(
                    codes::FORBIDDEN,
                    Some("grid_id"),
                    "the grid is not assigned to this account",
                ));
            }
            if rec.deleted {
                return Decision::refused(reject(codes::NOT_ALLOWED, Some("id"), "the record has been deleted"));
            }
            if !devices_change(entity) {
                return Decision::refused(reject(
                    codes::NOT_ALLOWED,
                    Some("entity"),
                    "records of this entity cannot be changed",
                ));
            }
            if op.kind == OpKind::Delete && facts.live_children > 0 {
                // The phone's rule: empty it first (its residents moved or
                // deleted, its units and households too).
                return Decision::refused(reject(
                    codes::NOT_ALLOWED,
                    Some("id"),
                    "a household or place that still holds records is not deleted",
                ));
            }
            if entity == Entity::Resident && facts.id_number_taken {
                return Decision::refused(duplicate_id_number());
            }
            rec.version += 1;
            if op.kind == OpKind::Delete {
                rec.deleted = true;
                return Decision {
                    outcome: Outcome::Applied {
                        version: rec.version,
                        conflicts: vec![],
                    },
                    writes: vec![Write::Record(rec)],
                };
            }
            if op
                .patch
                .get("grid_id")
                .is_some_and(|g| g.as_str() != Some(rec.grid_id.as_str()))
            {
                return Decision::refused(reject(
                    codes::NOT_ALLOWED,
                    Some("grid_id"),
                    "records do not move between grids",
                ));
            }
            let merged = rules::patched(&rules::device_fields(entity, &rec.fields), &op.patch);
            let checked = match rules::check(entity, &merged, ctx.now, ctx.catalogue) {
                Ok(f) => f,
                Err(e) => return Decision::refused(invalid(e)),
            };
            if let Err(outcome) = check_references(ctx.caller, entity, &checked, &rec.grid_id, loaded) {
                return Decision::refused(outcome);
            }
            let base = op.base_version.unwrap_or(0);
            let mut conflicts = Vec::new();
            let mut writes = Vec::new();
            let mut stamps = Vec::new();
            for (key, old, new) in rules::written(&op.patch, &rec.fields, &checked) {
                if rules::same_value(&key, old, new) {
                    continue;
                }
                let last: Option<FieldVersion> = rec
                    .field_versions
                    .get(&key)
                    .and_then(|v| serde_json::from_value(v.clone()).ok());
                if let Some(last) = last
                    && last.v > base
                    && last.device != ctx.caller.device_id
                {
                    // A concurrent edit from another device: this later one
                    // wins (server order), the replaced value is kept.
                    writes.push(Write::Record(conflict(
                        &rec, &key, old, new, &last.op, &op.op_id, ctx.now,
                    )));
                    conflicts.push(key.clone());
                }
                stamps.push((key, stamp(rec.version)));
            }
            rec.field_versions.extend(stamps);
            rec.fields = checked;
            let version = rec.version;
            writes.push(Write::Record(rec));
            Decision {
                outcome: Outcome::Applied { version, conflicts },
                writes,
            }
        }
    }
}

/// The grid a new record belongs to: its own `grid_id`, or for a timeline
/// event or a photo, that of the record it belongs to (which must be of
/// the entity it names, and live).
fn grid_of_new(
    entity: Entity,
    fields: &Map<String, Value>,
    loaded: &HashMap<String, Record>,
) -> Result<String, Outcome> {
    let (field, parent_entity, parent) = match entity {
        Entity::IncidentEvent => (
            "incident_id",
            Entity::Incident.as_str(),
            fields.get("incident_id").and_then(Value::as_str),
        ),
        Entity::Photo => {
            let owner = fields.get("owner");
            (
                "owner",
                owner
                    .and_then(|o| o.get("kind"))
                    .and_then(Value::as_str)
                    .unwrap_or_default(),
                owner.and_then(|o| o.get("id")).and_then(Value::as_str),
            )
        }
        Entity::Place
        | Entity::Household
        | Entity::Resident
        | Entity::Incident
        | Entity::ServiceLog
        | Entity::Inspection => {
            return match fields.get("grid_id").and_then(Value::as_str) {
                Some(g) => Ok(g.to_owned()),
                None => Err(reject("required", Some("grid_id"), "grid_id is required")),
            };
        }
    };
    let Some(parent) = parent else {
        return Err(reject("required", Some(field), format!("{field} is required")));
    };
    match loaded.get(parent) {
        Some(p) if !p.deleted && p.entity == parent_entity => Ok(p.grid_id.clone()),
        Some(p) if !p.deleted => Err(reject(
            "wrong_kind",
            Some(field),
            "the record it belongs to is of another kind",
        )),
        _ => Err(reject(
            codes::UNKNOWN_RECORD,
            Some(field),
            "the record it belongs to is not on the server",
        )),
    }
}

/// References to other records (a place's parent, a household's unit, a
/// resident's household: same grid; residents involved or served: a grid
/// the caller may write) name records of the right entity the server has.
fn check_references(
    caller: &Caller,
    entity: Entity,
    fields: &Map<String, Value>,
    grid: &str,
    loaded: &HashMap<String, Record>,
) -> Result<(), Outcome> {
    for (field, target, same_grid) in reference_fields(entity) {
        for id in ids_in(fields, field) {
            let refused = match loaded.get(&id) {
                None => Some(("unknown_reference", "refers to a record the server does not have")),
                Some(r) if r.entity != target.as_str() => Some(("wrong_kind", "refers to a record of the wrong kind")),
                Some(r) if *same_grid && r.grid_id != grid => {
                    Some(("other_grid", "refers to a record of another grid"))
                }
                Some(r) if !caller.may_write(&r.grid_id) => Some(("other_grid", "refers to a record of another grid")),
                Some(_) => None,
            };
            if let Some((code, message)) = refused {
                return Err(reject(code, Some(field), format!("{field} {message}")));
            }
        }
    }
    Ok(())
}

/// An inspection's raised incidents are the ones its failed items report:
/// each listed once, reported (not a draft, not deleted) by this account,
/// and their categories those the failed items raise. Another incident
/// cannot stand in for a hazard found.
fn check_raised(
    ctx: &Context<'_>,
    fields: &Map<String, Value>,
    loaded: &HashMap<String, Record>,
) -> Result<(), Outcome> {
    let refuse = |why: &str| reject(codes::NOT_ALLOWED, Some("raised_incidents"), why);
    let ids = ids_in(fields, "raised_incidents");
    let mut categories = Vec::with_capacity(ids.len());
    for (n, id) in ids.iter().enumerate() {
        if ids[..n].contains(id) {
            return Err(refuse("an incident is listed twice"));
        }
        let incident = loaded
            .get(id)
            .filter(|i| !i.deleted && i.str("status").is_some_and(|s| s != IncidentStatus::Draft.as_str()))
            .filter(|i| i.str("reporter") == Some(ctx.caller.account_id.as_str()))
            .ok_or_else(|| refuse("a raised incident is one this account reported"))?;
        if incident.str("inspection_id").is_some() {
            return Err(refuse("an incident raised by another inspection"));
        }
        categories.push(incident.str("category").unwrap_or_default().to_owned());
    }
    categories.sort();
    if categories != rules::raised_categories(ctx.catalogue, fields) {
        return Err(refuse("the incidents raised are not those the failed items raise"));
    }
    Ok(())
}

/// One live resident of a grid per ID number (the phone's rule).
fn duplicate_id_number() -> Outcome {
    reject(
        "duplicate",
        Some("id_number"),
        "another resident of the grid has this ID number",
    )
}

/// A record has at most `limits::PHOTOS_PER_RECORD` photos, as on the
/// phone (an inspection's are bounded per item by the inspection itself).
fn check_photo_count(fields: &Map<String, Value>, facts: &Facts) -> Result<(), Outcome> {
    let max = fieldgrid_domain::validate::limits::PHOTOS_PER_RECORD;
    let kind = fields.get("owner").and_then(|o| o.get("kind")).and_then(Value::as_str);
    if kind != Some(Entity::Inspection.as_str()) && facts.photos_of_owner >= max as i64 {
        return Err(reject(
            "too_many",
            Some("owner"),
            format!("a record has at most {max} photos"),
        ));
    }
    Ok(())
}

/// A photo of an inspection is one the inspection lists under an item.
fn check_inspection_photo(
    id: &str,
    fields: &Map<String, Value>,
    loaded: &HashMap<String, Record>,
) -> Result<(), Outcome> {
    let owner = fields.get("owner");
    if owner.and_then(|o| o.get("kind")).and_then(Value::as_str) != Some(Entity::Inspection.as_str()) {
        return Ok(());
    }
    let listed = owner
        .and_then(|o| o.get("id"))
        .and_then(Value::as_str)
        .and_then(|owner| loaded.get(owner))
        .and_then(|inspection| inspection.fields.get("item_photos"))
        .and_then(Value::as_object)
        .is_some_and(|items| {
            items
                .values()
                .filter_map(Value::as_array)
                .any(|ids| ids.iter().any(|p| p.as_str() == Some(id)))
        });
    if listed {
        Ok(())
    } else {
        Err(reject(
            codes::NOT_ALLOWED,
            Some("owner"),
            "a photo of an inspection is one it lists under an item",
        ))
    }
}

fn photo_ref(
    photo_id: &str,
    fields: &Map<String, Value>,
    grid: &str,
    account_id: &str,
    loaded: &HashMap<String, Record>,
) -> PhotoRef {
    let owner = fields.get("owner");
    let owner_id = owner.and_then(|o| o.get("id")).and_then(Value::as_str);
    let incident_id = match owner.and_then(|o| o.get("kind")).and_then(Value::as_str) {
        Some("incident") => owner_id.map(str::to_owned),
        Some("incident_event") => owner_id
            .and_then(|id| loaded.get(id))
            .and_then(|e| e.str("incident_id"))
            .map(str::to_owned),
        _ => None,
    };
    PhotoRef {
        photo_id: photo_id.to_owned(),
        sha256: fields
            .get("sha256")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        grid_id: grid.to_owned(),
        size: fields.get("size").and_then(Value::as_i64).unwrap_or(0),
        incident_id,
        account_id: account_id.to_owned(),
        owner_id: owner_id.unwrap_or_default().to_owned(),
    }
}

/// Applies a timeline event to its incident's status (transitions shared
/// with the device: `EventKind::next_status`).
pub fn apply_event(incident: &mut Record, event: &Map<String, Value>, device: &str, now: i64) -> Result<(), Outcome> {
    let kind = event.get("kind").and_then(Value::as_str).and_then(EventKind::parse);
    let Some(kind) = kind.filter(|_| incident.entity == "incident" && !incident.deleted) else {
        return Err(reject(codes::UNKNOWN_RECORD, Some("incident_id"), "no such incident"));
    };
    let status = incident
        .str("status")
        .and_then(IncidentStatus::parse)
        .unwrap_or(IncidentStatus::Draft);
    let Some(next) = kind.next_status(status) else {
        return Err(reject(
            codes::NOT_ALLOWED,
            Some("kind"),
            format!("{} is not allowed when {}", kind.as_str(), status.as_str()),
        ));
    };
    let f = &mut incident.fields;
    f.insert("status".into(), json!(next.as_str()));
    if kind == EventKind::Dispatched {
        f.insert(
            "department".into(),
            event.get("department").cloned().unwrap_or(Value::Null),
        );
        f.insert(
            "deadline_at_ms".into(),
            event.get("deadline_at_ms").cloned().unwrap_or(Value::Null),
        );
    }
    if matches!(
        next,
        IncidentStatus::Resolved | IncidentStatus::ResolvedOnSite | IncidentStatus::Closed
    ) && f.get("finished_at_ms").is_none_or(Value::is_null)
    {
        f.insert("finished_at_ms".into(), json!(now));
    }
    incident.version += 1;
    let stamp = serde_json::to_value(FieldVersion {
        v: incident.version,
        device: device.to_owned(),
        op: String::new(),
    })
    .unwrap_or(Value::Null);
    for k in ["status", "department", "deadline_at_ms", "finished_at_ms"] {
        incident.field_versions.insert(k.into(), stamp.clone());
    }
    Ok(())
}

fn conflict(
    rec: &Record,
    field: &str,
    losing: Option<&Value>,
    winning: Option<&Value>,
    losing_op: &str,
    winning_op: &str,
    now: i64,
) -> Record {
    let conflict = ConflictRecord {
        id: uuid::Uuid::now_v7().to_string(),
        entity: rec.entity.clone(),
        entity_id: rec.id.clone(),
        grid_id: rec.grid_id.clone(),
        field: field.to_owned(),
        winning_value: winning.cloned().unwrap_or(Value::Null),
        losing_value: losing.cloned().unwrap_or(Value::Null),
        winning_op: winning_op.to_owned(),
        losing_op: losing_op.to_owned(),
        at_ms: now,
    };
    tracing::info!(entity = %rec.entity, field, "concurrent edit recorded as a conflict");
    let fields = match serde_json::to_value(&conflict) {
        Ok(Value::Object(f)) => f,
        _ => Map::new(),
    };
    Record {
        id: conflict.id,
        entity: "conflict".into(),
        grid_id: rec.grid_id.clone(),
        version: 1,
        deleted: false,
        fields,
        field_versions: Map::new(),
    }
}

/// The furthest a dispatch's deadline may be (the longest a district gives
/// is weeks; a year leaves room and keeps out nonsense like 2^53 - 1).
pub const DEADLINE_MAX_MS: i64 = 366 * 24 * 3_600_000;

/// The centre's (or a department's) event on an incident: the incident as
/// it becomes, the event record, and the event's photo records with their
/// photo refs; or why not. `department_known` says whether the dispatch's
/// department exists.
pub fn centre_event(
    caller: &Caller,
    mut incident: Record,
    req: &fieldgrid_protocol::CentreEventRequest,
    kind: EventKind,
    department_known: bool,
    now: i64,
) -> Result<(Record, Record, Vec<Write>), crate::error::ApiError> {
    use crate::error::ApiError;
    // A department acts only on what was dispatched to it; anything else
    // does not exist for it.
    if caller.role == fieldgrid_protocol::Role::Department
        && (caller.department.is_none() || incident.str("department") != caller.department.as_deref())
    {
        return Err(ApiError::not_found("no such incident"));
    }
    if kind == EventKind::Dispatched {
        if !department_known {
            return Err(ApiError::bad_request("dispatch needs a known department"));
        }
        if req.deadline_at_ms.is_none_or(|d| d <= now || d > now + DEADLINE_MAX_MS) {
            return Err(ApiError::bad_request(
                "dispatch needs a deadline in the future (server time), within a year",
            ));
        }
    }
    let mut fields = Map::new();
    fields.insert("incident_id".into(), json!(incident.id));
    fields.insert("kind".into(), json!(kind.as_str()));
    fields.insert("actor".into(), json!(caller.account_id));
    fields.insert("note".into(), json!(req.note));
    fields.insert("department".into(), json!(req.department));
    fields.insert("deadline_at_ms".into(), json!(req.deadline_at_ms));
    fields.insert("at_ms".into(), json!(now));
    fields.insert("server_at_ms".into(), json!(now));
    if let Err(Outcome::Rejected { message, .. }) = apply_event(&mut incident, &fields, &caller.device_id, now) {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            codes::NOT_ALLOWED,
            message,
        ));
    }
    let mut event = Record {
        id: uuid::Uuid::now_v7().to_string(),
        entity: Entity::IncidentEvent.as_str().into(),
        grid_id: incident.grid_id.clone(),
        version: 1,
        deleted: false,
        fields,
        field_versions: Map::new(),
    };
    // The event's photos: checked by the same rules as a phone's.
    let max = fieldgrid_domain::validate::limits::PHOTOS_PER_RECORD;
    if req.photos.len() > max {
        return Err(ApiError::bad_request(format!("at most {max} photos an event")));
    }
    let mut photos = Vec::with_capacity(req.photos.len() * 2);
    for (i, p) in req.photos.iter().enumerate() {
        let sent = match json!({"owner": {"kind": "incident_event", "id": event.id}, "sha256": p.sha256,
                                "size": p.size, "mime": p.mime, "taken_at_ms": null, "location": null})
        {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        let checked = rules::check(Entity::Photo, &sent, now, &fieldgrid_domain::Catalogue::builtin())
            .map_err(|e| ApiError::bad_request(format!("photos[{i}].{} {}", e.field, e.code)))?;
        let id = uuid::Uuid::now_v7().to_string();
        photos.push(Write::PhotoRef(PhotoRef {
            photo_id: id.clone(),
            sha256: p.sha256.clone(),
            grid_id: incident.grid_id.clone(),
            size: p.size as i64,
            incident_id: Some(incident.id.clone()),
            account_id: caller.account_id.clone(),
            owner_id: event.id.clone(),
        }));
        photos.push(Write::Record(Record {
            id,
            entity: Entity::Photo.as_str().into(),
            grid_id: incident.grid_id.clone(),
            version: 1,
            deleted: false,
            fields: checked,
            field_versions: Map::new(),
        }));
    }
    // The centre's records too are stored as phones read them.
    let unreadable = |e: wire::Unreadable| ApiError::internal(format!("{e}"));
    readable(&mut incident).map_err(unreadable)?;
    readable(&mut event).map_err(unreadable)?;
    for w in &mut photos {
        if let Write::Record(r) = w {
            readable(r).map_err(unreadable)?;
        }
    }
    Ok((incident, event, photos))
}

/// The trust boundary's rules as a table: who (role, grids) sends what
/// (entity, fields, kind) against which state (no record, a live one, a
/// deleted one, one another device changed, facts the storage counted),
/// and the outcome. Pure: no database, milliseconds.
#[cfg(test)]
mod tests {
    use super::*;
    use fieldgrid_protocol::Role;

    const T0: i64 = 1_795_665_600_000;
    const GRID: &str = "grid-a";

    /// A fixed record id per name (the rules take canonical UUIDs only).
    fn id(name: &str) -> String {
        let n = name
            .bytes()
            .fold(0u64, |h, b| h.wrapping_mul(31).wrapping_add(u64::from(b)));
        format!("0190f1d2-8c1a-7b3e-9f00-{:012x}", n & 0xffff_ffff_ffff)
    }

    fn caller(role: Role, grids: &[&str], draining: &[&str]) -> Caller {
        Caller {
            account_id: format!("acct-{}", role.as_str()),
            role,
            device_id: "phone-1".into(),
            grids: grids.iter().map(|g| (*g).to_owned()).collect(),
            draining: draining.iter().map(|g| (*g).to_owned()).collect(),
            department: (role == Role::Department).then(|| "dept-gas".to_owned()),
            wipe: None,
        }
    }

    fn map(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    fn location() -> Value {
        json!({"latitude": 37.45, "longitude": 118.5, "accuracy_m": 5.0, "crs": "wgs84"})
    }

    /// A valid new record of each entity a device creates, in `grid`.
    fn valid(entity: &str, grid: &str) -> Map<String, Value> {
        map(match entity {
            "place" => json!({"grid_id": grid, "kind": "compound", "name": "格林盛景小区"}),
            "household" => json!({"grid_id": grid, "room": "301"}),
            "resident" => json!({"grid_id": grid, "name": "王秀英", "sex": "female", "residence": "registered"}),
            "incident" => json!({"grid_id": grid, "category": "hornets_nest", "occurred_at_ms": T0 - 60_000,
                                 "location": location()}),
            "service_log" => json!({"grid_id": grid, "kind": "visit", "occurred_at_ms": T0 - 60_000}),
            "inspection" => json!({"grid_id": grid, "checklist": "ebike_charging", "location": location(),
                                   "answers": {"indoor_charging": false, "bikes_in_corridor": 3},
                                   "occurred_at_ms": T0 - 60_000}),
            "incident_event" => json!({"incident_id": id("incident"), "kind": "reported"}),
            "photo" => json!({"owner": {"kind": "incident", "id": id("incident")}, "sha256": "ab".repeat(32),
                              "size": 1234, "mime": "image/jpeg"}),
            _ => json!({}),
        })
    }

    fn op(entity: &str, kind: OpKind, patch: Map<String, Value>, base: Option<i64>) -> Operation {
        Operation {
            op_id: id(&format!("op-{entity}-{kind:?}")),
            entity: entity.into(),
            entity_id: id(entity),
            kind,
            patch,
            base_version: base,
            created_at_ms: T0,
        }
    }

    /// A stored record of `entity` in `grid`, as a create by `device` left it.
    fn stored(entity: &str, grid: &str, device: &str) -> Record {
        let mut fields = valid(entity, grid);
        if entity == "incident" {
            fields.insert("status".into(), json!("draft"));
            fields.insert("reported_at_ms".into(), json!(T0));
            fields.insert("reporter".into(), json!("acct-worker"));
        }
        let stamp = json!({"v": 1, "device": device, "op": id("earlier")});
        Record {
            id: id(entity),
            entity: entity.into(),
            grid_id: grid.into(),
            version: 1,
            deleted: false,
            field_versions: fields.keys().map(|k| (k.clone(), stamp.clone())).collect(),
            fields,
        }
    }

    /// What a case expects: applied (with the conflicting fields), or
    /// rejected with a code and field.
    #[derive(Debug, PartialEq)]
    enum Want {
        Applied(Vec<String>),
        Rejected(String, String),
    }

    fn applied(conflicts: &[&str]) -> Want {
        Want::Applied(conflicts.iter().map(|s| (*s).to_owned()).collect())
    }

    fn rejected(code: &str, field: &str) -> Want {
        Want::Rejected(code.to_owned(), field.to_owned())
    }

    struct Case {
        name: &'static str,
        caller: Caller,
        op: Operation,
        existing: Option<Record>,
        loaded: Vec<Record>,
        facts: Facts,
        want: Want,
    }

    fn case(name: &'static str, caller: Caller, op: Operation, want: Want) -> Case {
        Case {
            name,
            caller,
            op,
            existing: None,
            loaded: vec![],
            facts: Facts::default(),
            want,
        }
    }

    impl Case {
        fn existing(mut self, r: Record) -> Self {
            self.existing = Some(r);
            self
        }
        fn loaded(mut self, r: Record) -> Self {
            self.loaded.push(r);
            self
        }
        fn facts(mut self, f: Facts) -> Self {
            self.facts = f;
            self
        }
    }

    fn with(mut m: Map<String, Value>, key: &str, value: Value) -> Map<String, Value> {
        m.insert(key.into(), value);
        m
    }

    fn cases() -> Vec<Case> {
        let worker = || caller(Role::Worker, &[GRID], &[]);
        let other_grid = || caller(Role::Worker, &["grid-b"], &[]);
        let draining = || caller(Role::Worker, &[], &[GRID]);
        let department = || caller(Role::Department, &[], &[]);
        let create = |entity: &str| op(entity, OpKind::Create, valid(entity, GRID), None);
        let mut cases = Vec::new();
        // Role and grid × every entity a device creates on its own.
        for entity in [
            "place",
            "household",
            "resident",
            "incident",
            "service_log",
            "inspection",
        ] {
            cases.push(case(
                "a worker creates in its grid",
                worker(),
                create(entity),
                applied(&[]),
            ));
            cases.push(case(
                "a worker whose grid was taken away still sends what it captured",
                draining(),
                create(entity),
                applied(&[]),
            ));
            cases.push(case(
                "a worker of another grid",
                other_grid(),
                create(entity),
                rejected(codes::FORBIDDEN, "grid_id"),
            ));
            cases.push(case(
                "a department has no grid",
                department(),
                create(entity),
                rejected(codes::FORBIDDEN, "grid_id"),
            ));
            cases.push(case(
                "a field no entity has",
                worker(),
                op(
                    entity,
                    OpKind::Create,
                    with(valid(entity, GRID), "owner_of_everything", json!(1)),
                    None,
                ),
                rejected(codes::NOT_ALLOWED, "owner_of_everything"),
            ));
            cases.push(
                case(
                    "an id already taken",
                    worker(),
                    create(entity),
                    rejected(codes::NOT_ALLOWED, "id"),
                )
                .existing(stored(entity, GRID, "phone-2")),
            );
        }
        // Fields only the server writes.
        for (entity, field) in [
            ("incident", "status"),
            ("incident", "reporter"),
            ("incident", "reported_at_ms"),
            ("inspection", "inspector"),
            ("incident_event", "actor"),
            ("incident_event", "server_at_ms"),
        ] {
            cases.push(case(
                "a server field",
                worker(),
                op(
                    entity,
                    OpKind::Create,
                    with(valid(entity, GRID), field, json!("x")),
                    None,
                ),
                rejected(codes::NOT_ALLOWED, field),
            ));
        }
        // Events and photos take their grid from what they belong to.
        cases.push(
            case(
                "an event on an incident of the worker's grid",
                worker(),
                create("incident_event"),
                applied(&[]),
            )
            .loaded(stored("incident", GRID, "phone-1")),
        );
        cases.push(
            case(
                "an event on another grid's incident",
                other_grid(),
                create("incident_event"),
                rejected(codes::FORBIDDEN, "grid_id"),
            )
            .loaded(stored("incident", GRID, "phone-1")),
        );
        cases.push(case(
            "an event on an incident the server does not have",
            worker(),
            create("incident_event"),
            rejected(codes::UNKNOWN_RECORD, "incident_id"),
        ));
        cases.push(
            case("a photo of an incident", worker(), create("photo"), applied(&[]))
                .loaded(stored("incident", GRID, "phone-1")),
        );
        cases.push(
            case(
                "a tenth photo of one record",
                worker(),
                create("photo"),
                rejected("too_many", "owner"),
            )
            .loaded(stored("incident", GRID, "phone-1"))
            .facts(Facts {
                photos_of_owner: 9,
                ..Facts::default()
            }),
        );
        // The state of the record an update or delete names.
        let rename = |entity: &str, base| op(entity, OpKind::Update, map(json!({"name": "新名字"})), base);
        cases.push(
            case(
                "an update of the worker's own record",
                worker(),
                rename("place", Some(1)),
                applied(&[]),
            )
            .existing(stored("place", GRID, "phone-1")),
        );
        cases.push(
            case(
                "an update over another device's newer value keeps it as a conflict",
                worker(),
                rename("place", Some(0)),
                applied(&["name"]),
            )
            .existing(stored("place", GRID, "phone-2")),
        );
        cases.push(case(
            "an update of a record the server does not have",
            worker(),
            rename("place", Some(1)),
            rejected(codes::UNKNOWN_RECORD, "id"),
        ));
        cases.push(
            case(
                "an update of a deleted record",
                worker(),
                rename("place", Some(1)),
                rejected(codes::NOT_ALLOWED, "id"),
            )
            .existing(Record {
                deleted: true,
                ..stored("place", GRID, "phone-1")
            }),
        );
        cases.push(
            case(
                "an update of another grid's record",
                other_grid(),
                rename("place", Some(1)),
                rejected(codes::FORBIDDEN, "grid_id"),
            )
            .existing(stored("place", GRID, "phone-1")),
        );
        cases.push(
            case(
                "a record moved to another grid",
                caller(Role::Worker, &[GRID, "grid-b"], &[]),
                op("place", OpKind::Update, map(json!({"grid_id": "grid-b"})), Some(1)),
                rejected(codes::NOT_ALLOWED, "grid_id"),
            )
            .existing(stored("place", GRID, "phone-1")),
        );
        cases.push(
            case(
                "an id of another entity",
                worker(),
                op("household", OpKind::Update, map(json!({"room": "302"})), Some(1)),
                rejected(codes::NOT_ALLOWED, "entity_id"),
            )
            .existing(Record {
                id: id("household"),
                ..stored("place", GRID, "phone-1")
            }),
        );
        for (entity, field) in [
            ("incident", "description"),
            ("service_log", "notes"),
            ("inspection", "notes"),
        ] {
            cases.push(
                case(
                    "records devices never change after creating them",
                    worker(),
                    op(entity, OpKind::Update, map(json!({field: "x"})), Some(1)),
                    rejected(codes::NOT_ALLOWED, "entity"),
                )
                .existing(stored(entity, GRID, "phone-1")),
            );
        }
        for entity in ["household", "place"] {
            cases.push(
                case(
                    "a delete of what still holds records",
                    worker(),
                    op(entity, OpKind::Delete, Map::new(), Some(1)),
                    rejected(codes::NOT_ALLOWED, "id"),
                )
                .existing(stored(entity, GRID, "phone-1"))
                .facts(Facts {
                    live_children: 1,
                    ..Facts::default()
                }),
            );
            cases.push(
                case(
                    "a delete of an empty one",
                    worker(),
                    op(entity, OpKind::Delete, Map::new(), Some(1)),
                    applied(&[]),
                )
                .existing(stored(entity, GRID, "phone-1")),
            );
        }
        cases.push(
            case(
                "a second live resident with one ID number",
                worker(),
                create("resident"),
                rejected("duplicate", "id_number"),
            )
            .facts(Facts {
                id_number_taken: true,
                ..Facts::default()
            }),
        );
        cases.push(case(
            "an id that is not a canonical UUID",
            worker(),
            Operation {
                entity_id: id("place").to_uppercase(),
                ..create("place")
            },
            rejected("bad_format", "entity_id"),
        ));
        cases.push(case(
            "an entity the server does not know",
            worker(),
            op("spaceship", OpKind::Create, Map::new(), None),
            rejected(codes::UNSUPPORTED, "entity"),
        ));
        cases
    }

    fn outcome_of(c: &Case) -> (Want, Decision) {
        let catalogue = Catalogue::builtin();
        let ctx = Context {
            caller: &c.caller,
            now: T0,
            catalogue: &catalogue,
        };
        let loaded: HashMap<String, Record> = c.loaded.iter().map(|r| (r.id.clone(), r.clone())).collect();
        let d = decide(&ctx, &c.op, c.existing.as_ref(), &loaded, &c.facts);
        let got = match &d.outcome {
            Outcome::Applied { conflicts, .. } => Want::Applied(conflicts.clone()),
            Outcome::Rejected { code, field, .. } => Want::Rejected(code.clone(), field.clone().unwrap_or_default()),
        };
        (got, d)
    }

    #[test]
    fn every_case_of_the_table_decides_as_written() {
        let mut wrong = Vec::new();
        let cases = cases();
        for c in &cases {
            let (got, d) = outcome_of(c);
            // A refusal writes nothing; an application writes the record.
            let writes_ok = match got {
                Want::Rejected(..) => d.writes.is_empty(),
                Want::Applied(_) => d
                    .writes
                    .iter()
                    .any(|w| matches!(w, Write::Record(r) if r.id == c.op.entity_id)),
            };
            if got != c.want || !writes_ok {
                wrong.push(format!(
                    "{} ({} {:?} by {:?}): want {:?}, got {got:?}, {} writes",
                    c.name,
                    c.op.entity,
                    c.op.kind,
                    c.caller.role,
                    c.want,
                    d.writes.len()
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {} cases:\n{}",
            wrong.len(),
            cases.len(),
            wrong.join("\n")
        );
    }

    #[test]
    fn what_an_application_writes_is_the_servers_to_say() {
        let catalogue = Catalogue::builtin();
        let worker = caller(Role::Worker, &[GRID], &[]);
        let ctx = Context {
            caller: &worker,
            now: T0,
            catalogue: &catalogue,
        };
        let d = decide(
            &ctx,
            &op("incident", OpKind::Create, valid("incident", GRID), None),
            None,
            &HashMap::new(),
            &Facts::default(),
        );
        let Some(Write::Record(r)) = d.writes.last() else {
            panic!("{:?}", d.outcome);
        };
        // The server's fields, whatever the device's clock said.
        assert_eq!(r.fields["status"], "draft");
        assert_eq!(r.fields["reported_at_ms"], T0);
        assert_eq!(r.fields["reporter"], "acct-worker");
        // Every field is stamped with the sending device and operation.
        assert!(
            r.field_versions
                .values()
                .all(|v| v["device"] == "phone-1" && v["v"] == 1)
        );
        // A conflict keeps the replaced value in a record of its own.
        let d = decide(
            &ctx,
            &op("place", OpKind::Update, map(json!({"name": "新名字"})), Some(0)),
            Some(&stored("place", GRID, "phone-2")),
            &HashMap::new(),
            &Facts::default(),
        );
        let conflicts: Vec<&Record> = d
            .writes
            .iter()
            .filter_map(|w| match w {
                Write::Record(r) if r.entity == "conflict" => Some(r),
                _ => None,
            })
            .collect();
        assert_eq!(conflicts.len(), 1);
        assert_eq!(conflicts[0].fields["losing_value"], "格林盛景小区");
        assert_eq!(conflicts[0].fields["winning_value"], "新名字");
    }
}
