//! The capture rules applied to a record given as wire fields: how the
//! district server validates what devices send, with the very functions the
//! device uses (no second copy of any rule).
//!
//! Every entity has a table of its fields and who writes each
//! ([`fields_of`]): a device sends only [`Writer::Device`] fields (the push
//! step drops the rest from what it sends), the server refuses any other
//! field and fills in its own. `check` takes a record's complete device
//! fields (for an update: the stored record with the patch applied) and
//! returns them normalised and re-encoded (no unknown key survives, nested
//! values included), or the first field that breaks a rule. Whether a
//! referenced record exists is the server's business.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::Entity;
use crate::catalogue::{self, AnswerType, Catalogue, Checklist, ChecklistItem};
use crate::error::{Code, ValidationError};
use crate::model::{EventKind, PhotoOwner, PlaceKind, ResidenceStatus, Sex};
use crate::validate::{self, IdNumber, Location, Phone, limits};

type Fields = Map<String, Value>;
type Checked = Result<Fields, ValidationError>;

/// Largest record a device may send: its fields as compact JSON. The field
/// limits keep every valid record well below it (a resident with every field
/// at its limit is under 16 KiB, and its district fields at most
/// [`EXTRA_MAX_BYTES`] more); it bounds what one record can add to every
/// pull page of its grid.
pub const RECORD_MAX_BYTES: usize = 32 * 1024;

/// Longest grid id (grids are the district's; ids are short codes).
const GRID_ID_MAX: usize = 100;

/// Who writes a field of a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Writer {
    /// The grid worker's device, subject to [`check`].
    Device,
    /// The server only (status, deadlines, times, who did it): refused from a device.
    Server,
}

use Writer::{Device as D, Server as S};

/// The fields of a record of `entity` and who writes each.
pub fn fields_of(entity: Entity) -> &'static [(&'static str, Writer)] {
    match entity {
        Entity::Place => &[("grid_id", D), ("kind", D), ("parent_id", D), ("name", D), ("extra", D)],
        Entity::Household => &[
            ("grid_id", D),
            ("unit_id", D),
            ("room", D),
            ("address", D),
            ("notes", D),
            ("extra", D),
        ],
        Entity::Resident => &[
            ("grid_id", D),
            ("household_id", D),
            ("name", D),
            ("sex", D),
            ("id_number", D),
            ("birth_date", D),
            ("phone", D),
            ("residence", D),
            ("care_tags", D),
            ("notes", D),
            ("extra", D),
        ],
        Entity::Incident => &[
            ("grid_id", D),
            ("category", D),
            ("title", D),
            ("description", D),
            ("location", D),
            ("address", D),
            ("occurred_at_ms", D),
            ("involved_residents", D),
            ("extra", D),
            ("reporter", S),
            ("inspection_id", S),
            ("status", S),
            ("department", S),
            ("deadline_at_ms", S),
            ("reported_at_ms", S),
            ("finished_at_ms", S),
        ],
        Entity::IncidentEvent => &[
            ("incident_id", D),
            ("kind", D),
            ("note", D),
            ("actor", S),
            ("department", S),
            ("deadline_at_ms", S),
            ("at_ms", S),
            ("server_at_ms", S),
        ],
        Entity::ServiceLog => &[
            ("grid_id", D),
            ("kind", D),
            ("resident_ids", D),
            ("notes", D),
            ("occurred_at_ms", D),
        ],
        Entity::Inspection => &[
            ("grid_id", D),
            ("place_id", D),
            ("checklist", D),
            ("answers", D),
            ("item_photos", D),
            ("raised_incidents", D),
            ("location", D),
            ("notes", D),
            ("occurred_at_ms", D),
            ("inspector", S),
        ],
        Entity::Photo => &[
            ("owner", D),
            ("sha256", D),
            ("size", D),
            ("mime", D),
            ("taken_at_ms", D),
            ("location", D),
        ],
    }
}

/// Whether a device may write `field` of an `entity` record.
pub fn device_writes(entity: Entity, field: &str) -> bool {
    fields_of(entity).iter().any(|(f, w)| *f == field && *w == D)
}

/// Keeps only the fields a device writes: what the push step sends.
pub fn device_fields(entity: Entity, fields: &Fields) -> Fields {
    fields
        .iter()
        .filter(|(k, _)| device_writes(entity, k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The first field of a device's `patch` it may not write: a server-owned
/// field or one the entity does not have.
pub fn refused_field(entity: Entity, patch: &Fields) -> Option<&str> {
    patch.keys().map(String::as_str).find(|k| !device_writes(entity, k))
}

/// Whether `id` is a record id as devices make them: an RFC 9562 UUID
/// (versions 1 to 8) in its canonical lower-case hyphenated form, so one
/// record has one spelling (docs/openapi.yaml gives the same as a pattern).
pub fn is_record_id(id: &str) -> bool {
    id.len() == 36
        && uuid::Uuid::try_parse(id).is_ok_and(|u| {
            u.get_variant() == uuid::Variant::RFC4122
                && (1..=8).contains(&u.get_version_num())
                && u.hyphenated().to_string() == id
        })
}

/// Validates and normalises the complete device fields of a record of
/// `entity`. `now_ms` is the server's clock. The answer holds only the
/// entity's device fields, each re-encoded from its checked value.
pub fn check(entity: Entity, fields: &Fields, now_ms: i64, catalogue: &Catalogue) -> Checked {
    let today = crate::china_time::date(now_ms);
    let mut f = fields.clone();
    if catalogue::EXTENSIBLE.contains(&entity) {
        extra(&mut f, entity, catalogue)?;
    }
    match entity {
        Entity::Place => {
            enumerated(&f, "kind", |s| PlaceKind::parse(s).is_some())?;
            text(&mut f, "name", limits::LABEL, Need::Required, false)?;
            grid(&f)?;
            reference(&f, "parent_id")?;
        }
        Entity::Household => {
            text(&mut f, "room", limits::LABEL, Need::Required, false)?;
            text(&mut f, "address", limits::ADDRESS, Need::Optional, false)?;
            text(&mut f, "notes", limits::NOTES, Need::Optional, true)?;
            grid(&f)?;
            reference(&f, "unit_id")?;
        }
        Entity::Resident => {
            resident(&mut f, today, catalogue)?;
            grid(&f)?;
            reference(&f, "household_id")?;
        }
        Entity::Incident => {
            let category = string(&f, "category")?.unwrap_or_default();
            let cat = catalogue
                .get(&category)
                .ok_or_else(|| ValidationError::new("category", Code::UnknownCategory))?;
            text(&mut f, "title", limits::TITLE, Need::Optional, false)?;
            let needs_description = if cat.requires_description {
                Need::Required
            } else {
                Need::Optional
            };
            text(&mut f, "description", limits::NOTES, needs_description, true)?;
            text(&mut f, "address", limits::ADDRESS, Need::Optional, false)?;
            location(&mut f, "location", cat.requires_location)?;
            time(&f, "occurred_at_ms", now_ms)?;
            id_list(&f, "involved_residents")?;
            grid(&f)?;
            complete(
                &mut f,
                &[
                    ("title", Value::from("")),
                    ("description", Value::from("")),
                    ("address", Value::from("")),
                    ("involved_residents", Value::Array(vec![])),
                ],
            );
        }
        Entity::IncidentEvent => {
            enumerated(&f, "kind", |s| {
                EventKind::parse(s).is_some_and(|k| k.is_worker_event() || k == EventKind::Reported)
            })?;
            // Resolved on the spot says how (the phone's rule too).
            let need = if string(&f, "kind")?.as_deref() == Some(EventKind::ResolvedOnSite.as_str()) {
                Need::Required
            } else {
                Need::Optional
            };
            text(&mut f, "note", limits::NOTES, need, true)?;
            reference(&f, "incident_id")?;
            string(&f, "incident_id")?.ok_or_else(|| ValidationError::new("incident_id", Code::Required))?;
            complete(&mut f, &[("note", Value::from(""))]);
        }
        Entity::ServiceLog => {
            enumerated(&f, "kind", |s| catalogue.has_service_kind(s))?;
            text(&mut f, "notes", limits::NOTES, Need::Optional, true)?;
            time(&f, "occurred_at_ms", now_ms)?;
            id_list(&f, "resident_ids")?;
            grid(&f)?;
            complete(
                &mut f,
                &[("notes", Value::from("")), ("resident_ids", Value::Array(vec![]))],
            );
        }
        Entity::Inspection => {
            let code = string(&f, "checklist")?.unwrap_or_default();
            let checklist = catalogue
                .checklist(&code)
                .filter(|c| c.usable())
                .ok_or_else(|| ValidationError::new("checklist", Code::UnknownReference))?;
            let empty = Map::new();
            let object = |field: &str| match f.get(field) {
                None | Some(Value::Null) => Ok(&empty),
                Some(Value::Object(o)) => Ok(o),
                Some(_) => Err(ValidationError::new(field, Code::BadFormat)),
            };
            let answers = normalised_answers(checklist, object("answers")?)?;
            let photos = object("item_photos")?.clone();
            // Every failed item that raises an incident has raised one.
            let raising = inspection_failures(checklist, &answers, &photos)?
                .iter()
                .filter(|c| checklist.item(c).is_some_and(|i| i.raises.is_some()))
                .count();
            id_list(&f, "raised_incidents")?;
            let raised = f.get("raised_incidents").and_then(Value::as_array).map_or(0, Vec::len);
            if raised != raising {
                return Err(ValidationError::new("raised_incidents", Code::NotAllowed));
            }
            f.insert("answers".into(), Value::Object(answers));
            f.insert("item_photos".into(), Value::Object(photos));
            location(&mut f, "location", true)?;
            text(&mut f, "notes", limits::NOTES, Need::Optional, true)?;
            time(&f, "occurred_at_ms", now_ms)?;
            reference(&f, "place_id")?;
            complete(
                &mut f,
                &[("notes", Value::from("")), ("raised_incidents", Value::Array(vec![]))],
            );
            grid(&f)?;
        }
        Entity::Photo => {
            let sha = string(&f, "sha256")?.unwrap_or_default();
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                return Err(ValidationError::new("sha256", Code::BadFormat));
            }
            let size = match f.get("size") {
                Some(v) => v
                    .as_u64()
                    .ok_or_else(|| ValidationError::new("size", Code::BadFormat))?,
                None => 0,
            };
            if size == 0 {
                return Err(ValidationError::new("size", Code::Empty));
            }
            if size > limits::PHOTO_BYTES {
                return Err(ValidationError::new(
                    "size",
                    Code::TooLarge {
                        max: limits::PHOTO_BYTES,
                    },
                ));
            }
            enumerated(&f, "mime", |m| {
                ["image/jpeg", "image/png", "image/webp", "image/heic"].contains(&m)
            })?;
            location(&mut f, "location", false)?;
            optional_time(&f, "taken_at_ms")?;
            let owner: PhotoOwner = f
                .get("owner")
                .cloned()
                .and_then(|o| serde_json::from_value(o).ok())
                .ok_or_else(|| ValidationError::new("owner", Code::BadFormat))?;
            if !is_record_id(owner.id()) {
                return Err(ValidationError::new("owner", Code::BadFormat));
            }
            f.insert(
                "owner".into(),
                serde_json::to_value(&owner).map_err(|_| ValidationError::new("owner", Code::BadFormat))?,
            );
        }
    }
    // Only the entity's device fields leave, each as checked above.
    Ok(device_fields(entity, &f))
}

/// An inspection's answers, each checked against its item and re-encoded
/// (a number as a number, text trimmed): unknown items, answers of the
/// wrong type, numbers out of range, text too long, choices not offered and
/// unanswered required items are refused. Item codes come from the
/// catalogue, so an error may name them (`answers.detector_installed`);
/// what a device sent is never repeated.
pub fn normalised_answers(checklist: &Checklist, answers: &Fields) -> Checked {
    let items: Vec<_> = checklist
        .items
        .iter()
        .map(|i| (i, i.required && i.answer != AnswerType::Photo))
        .collect();
    normalised_values(&items, answers, "answers")
}

/// The values of the district's own fields of a record of `entity` (its
/// `extra`), each checked against its field as a checklist's answers are
/// against their items (`extra.<code>` names one). A null value is no
/// value. Codes the catalogue never had are refused (as `extra`); retired
/// fields still hold their values. `new`: a record being created, which
/// must give the fields the district requires (an edit never has to, so a
/// field required later never blocks the edit of an older record).
pub fn normalised_extra(catalogue: &Catalogue, entity: Entity, extra: &Fields, new: bool) -> Checked {
    let items: Vec<_> = catalogue
        .fields_of(entity)
        .map(|d| (&d.item, new && d.item.required && !d.retired))
        .collect();
    let given: Fields = extra
        .iter()
        .filter(|(_, v)| !v.is_null())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let checked = normalised_values(&items, &given, "extra")?;
    let max = EXTRA_MAX_BYTES as u64;
    if serde_json::to_vec(&checked).map_or(u64::MAX, |v| v.len() as u64) > max {
        return Err(ValidationError::new("extra", Code::TooLarge { max }));
    }
    Ok(checked)
}

/// Largest `extra` a record holds (its values as compact JSON): with every
/// other field at its limit a record stays under [`RECORD_MAX_BYTES`].
pub const EXTRA_MAX_BYTES: usize = 8 * 1024;

/// A record's `extra`, checked (no value required: see `normalised_extra`).
fn extra(f: &mut Fields, entity: Entity, catalogue: &Catalogue) -> Result<(), ValidationError> {
    let checked = match f.get("extra") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(o)) => normalised_extra(catalogue, entity, o, false)?,
        Some(_) => return Err(ValidationError::new("extra", Code::BadFormat)),
    };
    if checked.is_empty() {
        f.remove("extra");
    } else {
        f.insert("extra".into(), Value::Object(checked));
    }
    Ok(())
}

/// `values` checked against `items` (each with whether it is required), as
/// the list `list` (`answers`, `extra`): see `normalised_answers`.
fn normalised_values(items: &[(&ChecklistItem, bool)], values: &Fields, list: &str) -> Checked {
    let mut out = Map::new();
    for (key, value) in values {
        let Some((item, _)) = items.iter().find(|(i, _)| &i.code == key) else {
            return Err(ValidationError::new(list, Code::UnknownReference));
        };
        let field = format!("{list}.{}", item.code);
        let bad = || ValidationError::new(field.as_str(), Code::BadFormat);
        let checked = match (item.answer, value) {
            (AnswerType::YesNo, Value::Bool(b)) => Value::Bool(*b),
            (AnswerType::Number, Value::Number(n)) => {
                let x = n.as_f64().filter(|x| x.is_finite()).ok_or_else(bad)?;
                if item.min.is_some_and(|m| x < m) || item.max.is_some_and(|m| x > m) {
                    return Err(ValidationError::new(field.as_str(), Code::OutOfRange));
                }
                // One spelling per number (6, never 6.0 on one side and 6 on
                // the other), so a value read back compares equal.
                const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53
                if x.fract() == 0.0 && x.abs() < EXACT {
                    Value::from(x as i64)
                } else {
                    Value::from(x)
                }
            }
            (AnswerType::Text, Value::String(t)) => {
                Value::String(validate::optional_text(&field, t, item.text_limit(), true)?)
            }
            (AnswerType::Choice, Value::String(c)) if item.options.contains(c) => value.clone(),
            _ => return Err(bad()),
        };
        out.insert(item.code.clone(), checked);
    }
    for (item, required) in items {
        let blank = out
            .get(&item.code)
            .is_none_or(|v| v.as_str().is_some_and(str::is_empty));
        if *required && blank {
            return Err(ValidationError::new(format!("{list}.{}", item.code), Code::Required));
        }
    }
    Ok(out)
}

/// The items an inspection fails, in checklist order, once its photos are
/// checked: each item's photos are record ids (at most 9 an item, 30 in
/// all) of items the checklist has, and a required photo item has one.
pub fn inspection_failures(
    checklist: &Checklist,
    answers: &Fields,
    item_photos: &Fields,
) -> Result<Vec<String>, ValidationError> {
    const PHOTOS_IN_ALL: usize = 30;
    let mut total = 0;
    for (key, ids) in item_photos {
        let Some(item) = checklist.item(key) else {
            return Err(ValidationError::new("item_photos", Code::UnknownReference));
        };
        let field = format!("item_photos.{}", item.code);
        let ids = ids
            .as_array()
            .ok_or_else(|| ValidationError::new(field.as_str(), Code::BadFormat))?;
        if !ids.iter().all(|id| id.as_str().is_some_and(is_record_id)) {
            return Err(ValidationError::new(field.as_str(), Code::BadFormat));
        }
        total += ids.len();
        let max = limits::PHOTOS_PER_RECORD;
        if ids.len() > max || total > PHOTOS_IN_ALL {
            return Err(ValidationError::new(field.as_str(), Code::TooMany { max }));
        }
    }
    for item in &checklist.items {
        let photographed = item_photos
            .get(&item.code)
            .and_then(Value::as_array)
            .is_some_and(|a| !a.is_empty());
        if item.answer == AnswerType::Photo && item.required && !photographed {
            return Err(ValidationError::new(
                format!("item_photos.{}", item.code),
                Code::Required,
            ));
        }
    }
    Ok(checklist
        .items
        .iter()
        .filter(|i| answers.get(&i.code).is_some_and(|a| i.fails(a)))
        .map(|i| i.code.clone())
        .collect())
}

/// The incident categories an inspection's failed items raise, one per
/// item, sorted: what its `raised_incidents` must be, category by category.
pub fn raised_categories(catalogue: &Catalogue, fields: &Fields) -> Vec<String> {
    let checklist = fields
        .get("checklist")
        .and_then(Value::as_str)
        .and_then(|c| catalogue.checklist(c));
    let (Some(checklist), Some(answers)) = (checklist, fields.get("answers").and_then(Value::as_object)) else {
        return Vec::new();
    };
    let mut out: Vec<String> = checklist
        .items
        .iter()
        .filter(|i| answers.get(&i.code).is_some_and(|a| i.fails(a)))
        .filter_map(|i| i.raises.clone())
        .collect();
    out.sort();
    out
}

/// A device's update `patch` applied to a record's stored device fields:
/// each field replaced, except `extra`, which merges value by value (a null
/// clears one). Two devices changing different fields of the district's on
/// one record never overwrite each other, as with the record's own fields.
pub fn patched(stored: &Fields, patch: &Fields) -> Fields {
    let mut merged = stored.clone();
    for (key, value) in patch {
        match (key.as_str(), value, stored.get(key)) {
            ("extra", Value::Object(changes), stored_extra) => {
                let mut extra = match stored_extra {
                    Some(Value::Object(o)) => o.clone(),
                    _ => Map::new(),
                };
                for (code, v) in changes {
                    if v.is_null() {
                        extra.remove(code);
                    } else {
                        extra.insert(code.clone(), v.clone());
                    }
                }
                merged.insert(key.clone(), Value::Object(extra));
            }
            _ => {
                merged.insert(key.clone(), value.clone());
            }
        }
    }
    merged
}

/// What an update `patch` writes, field by field, with the stored value
/// and the new one: each field of the patch, and each value of `extra` on
/// its own (`extra.<code>`), so concurrent edits are decided (and their
/// conflicts recorded) per field of the district's too.
pub fn written<'a>(
    patch: &Fields,
    old: &'a Fields,
    new: &'a Fields,
) -> Vec<(String, Option<&'a Value>, Option<&'a Value>)> {
    let inner = |f: &'a Fields, code: &str| f.get("extra").and_then(|e| e.get(code));
    let mut out = Vec::new();
    for (key, value) in patch {
        match (key.as_str(), value) {
            ("extra", Value::Object(changes)) => {
                for code in changes.keys() {
                    out.push((format!("extra.{code}"), inner(old, code), inner(new, code)));
                }
            }
            _ => out.push((key.clone(), old.get(key), new.get(key))),
        }
    }
    out
}

/// Whether two values of `field` mean the same: care tags are a set, and a
/// resident stored before tags were kept sorted may list them in another
/// order (so an edit that leaves them as they were changes nothing).
pub fn same_value(field: &str, a: Option<&Value>, b: Option<&Value>) -> bool {
    if a == b {
        return true;
    }
    fn set(v: Option<&Value>) -> Option<std::collections::BTreeSet<&str>> {
        v?.as_array()?.iter().map(Value::as_str).collect()
    }
    field == "care_tags" && set(a).is_some() && set(a) == set(b)
}

/// Fills fields a device left out (or sent as null) with their empty value,
/// so every stored record reads whole on every phone.
fn complete(f: &mut Fields, defaults: &[(&str, Value)]) {
    for (field, empty) in defaults {
        if f.get(*field).is_none_or(Value::is_null) {
            f.insert((*field).to_owned(), empty.clone());
        }
    }
}

/// The grid a record names: a short string (the server checks it is the
/// caller's).
fn grid(f: &Fields) -> Result<(), ValidationError> {
    match string(f, "grid_id")? {
        Some(g) if !g.is_empty() && g.len() <= GRID_ID_MAX => Ok(()),
        Some(_) => Err(ValidationError::new("grid_id", Code::BadFormat)),
        None => Err(ValidationError::new("grid_id", Code::Required)),
    }
}

/// A reference to another record: absent, null or a record id.
fn reference(f: &Fields, field: &str) -> Result<(), ValidationError> {
    match string(f, field)? {
        Some(id) if !is_record_id(&id) => Err(ValidationError::new(field, Code::BadFormat)),
        _ => Ok(()),
    }
}

fn resident(f: &mut Fields, today: NaiveDate, catalogue: &Catalogue) -> Result<(), ValidationError> {
    text(f, "name", limits::NAME, Need::Required, false)?;
    let sex = string(f, "sex")?
        .and_then(|s| Sex::parse(&s))
        .ok_or_else(|| ValidationError::new("sex", Code::BadFormat))?;
    enumerated(f, "residence", |s| ResidenceStatus::parse(s).is_some())?;
    if let Some(raw) = string(f, "id_number")? {
        let id = IdNumber::parse(&raw, today).map_err(|c| ValidationError::new("id_number", c))?;
        if id.sex() != sex {
            return Err(ValidationError::new("sex", Code::SexMismatch));
        }
        let birth = id.birth_date().to_string();
        match string(f, "birth_date")? {
            Some(b) if b != birth => return Err(ValidationError::new("birth_date", Code::BirthDateMismatch)),
            _ => {}
        }
        f.insert("id_number".into(), Value::String(id.as_str().to_owned()));
        f.insert("birth_date".into(), Value::String(birth));
    } else if let Some(b) = string(f, "birth_date")? {
        let d: NaiveDate = b
            .parse()
            .map_err(|_| ValidationError::new("birth_date", Code::BadDate))?;
        validate::birth_date(d, today)?;
    }
    if let Some(raw) = string(f, "phone")? {
        let p = Phone::parse(&raw).map_err(|c| ValidationError::new("phone", c))?;
        f.insert("phone".into(), Value::String(p.as_str().to_owned()));
    }
    if let Some(tags) = f.get("care_tags").filter(|t| !t.is_null()) {
        let max = limits::CARE_TAGS;
        if tags.as_array().is_some_and(|a| a.len() > max) {
            return Err(ValidationError::new("care_tags", Code::TooMany { max }));
        }
        let mut codes: Vec<&str> = tags
            .as_array()
            .and_then(|a| a.iter().map(Value::as_str).collect::<Option<_>>())
            .filter(|codes: &Vec<&str>| codes.iter().all(|t| catalogue.has_care_tag(t)))
            .ok_or_else(|| ValidationError::new("care_tags", Code::BadFormat))?;
        // Sorted, without repeats: as the phone keeps them.
        codes.sort_unstable();
        codes.dedup();
        let codes = Value::from(codes);
        f.insert("care_tags".into(), codes);
    }
    text(f, "notes", limits::NOTES, Need::Optional, true)?;
    complete(f, &[("care_tags", Value::Array(vec![])), ("notes", Value::from(""))]);
    Ok(())
}

#[derive(PartialEq)]
enum Need {
    Required,
    Optional,
}

/// A string field, `None` when absent or null.
fn string(f: &Fields, field: &str) -> Result<Option<String>, ValidationError> {
    match f.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(ValidationError::new(field, Code::BadFormat)),
    }
}

fn text(f: &mut Fields, field: &str, max: usize, need: Need, multiline: bool) -> Result<(), ValidationError> {
    let value = string(f, field)?.unwrap_or_default();
    let checked = match need {
        Need::Required => validate::text(field, &value, max, multiline),
        Need::Optional => validate::optional_text(field, &value, max, multiline),
    }?;
    if f.contains_key(field) || need == Need::Required {
        f.insert(field.to_owned(), Value::String(checked));
    }
    Ok(())
}

fn enumerated(f: &Fields, field: &str, valid: impl Fn(&str) -> bool) -> Result<(), ValidationError> {
    match string(f, field)? {
        Some(s) if valid(&s) => Ok(()),
        Some(_) => Err(ValidationError::new(field, Code::BadFormat)),
        None => Err(ValidationError::new(field, Code::Required)),
    }
}

fn location(f: &mut Fields, field: &str, required: bool) -> Result<(), ValidationError> {
    match f.get(field) {
        None | Some(Value::Null) if required => Err(ValidationError::new(field, Code::Required)),
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            let loc: Location =
                serde_json::from_value(v.clone()).map_err(|_| ValidationError::new(field, Code::BadFormat))?;
            loc.validate(field)?;
            // Re-encoded: keys the location does not have do not travel on.
            let encoded = serde_json::to_value(loc).map_err(|_| ValidationError::new(field, Code::BadFormat))?;
            f.insert(field.to_owned(), encoded);
            Ok(())
        }
    }
}

fn optional_time(f: &Fields, field: &str) -> Result<(), ValidationError> {
    match f.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if v.as_i64().is_some_and(|t| t >= 0) => Ok(()),
        Some(_) => Err(ValidationError::new(field, Code::BadFormat)),
    }
}

fn time(f: &Fields, field: &str, now_ms: i64) -> Result<(), ValidationError> {
    let t = f
        .get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| ValidationError::new(field, Code::Required))?;
    validate::not_in_future(field, t, now_ms)
}

fn id_list(f: &Fields, field: &str) -> Result<(), ValidationError> {
    let max = limits::RESIDENTS_PER_RECORD;
    match f.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.len() > max => Err(ValidationError::new(field, Code::TooMany { max })),
        Some(Value::Array(a)) if a.iter().all(|v| v.as_str().is_some_and(is_record_id)) => Ok(()),
        Some(_) => Err(ValidationError::new(field, Code::BadFormat)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const NOW: i64 = 1_795_665_600_000;

    fn obj(v: Value) -> Fields {
        v.as_object().cloned().unwrap()
    }

    fn field_of(entity: Entity, v: Value) -> String {
        check(entity, &obj(v), NOW, &Catalogue::builtin()).unwrap_err().field
    }

    #[test]
    fn residents_follow_the_device_rules() {
        let ok = json!({"grid_id": "g", "name": " 张伟 ", "sex": "female", "id_number": "11010519491231002x",
                        "phone": "+86 138 1234 5678", "residence": "registered", "care_tags": ["disabled"], "notes": ""});
        let f = check(Entity::Resident, &obj(ok.clone()), NOW, &Catalogue::builtin()).unwrap();
        assert_eq!(f["name"], "张伟");
        assert_eq!(f["id_number"], "11010519491231002X");
        assert_eq!(f["birth_date"], "1949-12-31");
        assert_eq!(f["phone"], "13812345678");
        let mut bad = ok.clone();
        bad["sex"] = json!("male");
        assert_eq!(field_of(Entity::Resident, bad), "sex");
        let mut bad = ok.clone();
        bad["id_number"] = json!("110105194912310021");
        assert_eq!(field_of(Entity::Resident, bad), "id_number");
        let mut bad = ok.clone();
        bad["care_tags"] = json!(["vip"]);
        assert_eq!(field_of(Entity::Resident, bad), "care_tags");
        let mut bad = ok;
        bad["name"] = json!(42);
        assert_eq!(field_of(Entity::Resident, bad), "name");
    }

    #[test]
    fn incidents_need_a_known_category_and_its_fields() {
        let ok = json!({"grid_id": "g", "category": "broken_facility", "title": "", "description": "路灯损坏", "address": "",
                        "location": {"latitude": 37.4, "longitude": 118.5, "accuracy_m": 5.0, "crs": "wgs84"},
                        "occurred_at_ms": NOW - 1000, "involved_residents": []});
        assert!(check(Entity::Incident, &obj(ok.clone()), NOW, &Catalogue::builtin()).is_ok());
        let mut bad = ok.clone();
        bad["category"] = json!("ufo");
        assert_eq!(field_of(Entity::Incident, bad), "category");
        let mut bad = ok.clone();
        bad["location"] = Value::Null;
        assert_eq!(field_of(Entity::Incident, bad), "location");
        let mut bad = ok;
        bad["occurred_at_ms"] = json!(NOW + 86_400_000);
        assert_eq!(field_of(Entity::Incident, bad), "occurred_at_ms");
        assert_eq!(Entity::parse("bogus"), None, "not a kind: refused before any rule");
        assert_eq!(
            field_of(Entity::Photo, json!({"sha256": "zz", "size": 1, "mime": "image/jpeg"})),
            "sha256"
        );
    }

    #[test]
    fn only_device_fields_leave_a_check_each_re_encoded() {
        let sent = json!({"grid_id": "g", "category": "broken_facility", "description": "路灯损坏",
                          "location": {"latitude": 37.4, "longitude": 118.5, "accuracy_m": 5.0, "crs": "wgs84",
                                       "junk": "x".repeat(100_000)},
                          "occurred_at_ms": NOW - 1000, "finished_at_ms": 1, "status": "closed", "whatever": 1});
        let f = check(Entity::Incident, &obj(sent), NOW, &Catalogue::builtin()).unwrap();
        assert!(f.keys().all(|k| device_writes(Entity::Incident, k)), "{:?}", f.keys());
        assert!(f.get("finished_at_ms").is_none() && f.get("status").is_none());
        assert!(
            f["location"].get("junk").is_none(),
            "nested keys a location does not have are dropped"
        );
        let photo = json!({"owner": {"kind": "incident", "id": crate::new_id(), "extra": 1}, "sha256": "a".repeat(64),
                           "size": 10, "mime": "image/jpeg"});
        let f = check(Entity::Photo, &obj(photo), NOW, &Catalogue::builtin()).unwrap();
        assert_eq!(f["owner"].as_object().unwrap().len(), 2);
    }

    #[test]
    fn server_fields_and_unknown_fields_are_refused_from_devices() {
        for (entity, field) in [
            ("incident", "status"),
            ("incident", "finished_at_ms"),
            ("incident", "deadline_at_ms"),
            ("incident", "reported_at_ms"),
            ("incident", "department"),
            ("incident", "reporter"),
            ("incident", "inspection_id"),
            ("inspection", "inspector"),
            ("incident_event", "actor"),
            ("incident_event", "at_ms"),
            ("incident_event", "department"),
            ("resident", "server_version"),
            ("place", "catalogue"),
        ] {
            let patch = obj(json!({ field: 1 }));
            let entity = Entity::parse(entity).unwrap();
            assert_eq!(refused_field(entity, &patch), Some(field), "{entity}.{field}");
        }
        assert_eq!(Entity::parse("bogus"), None, "an unknown entity is not a kind");
        assert_eq!(
            refused_field(Entity::Resident, &obj(json!({"name": "x", "notes": ""}))),
            None
        );
        // What a device's own record holds beyond that never travels.
        let local = obj(json!({"incident_id": "i", "kind": "note", "note": "n", "actor": "a", "at_ms": 5}));
        assert_eq!(
            device_fields(Entity::IncidentEvent, &local).keys().collect::<Vec<_>>(),
            ["incident_id", "kind", "note"]
        );
    }

    #[test]
    fn inspections_are_checked_item_by_item_against_their_checklist() {
        let good = valid(Entity::Inspection);
        let out = check(Entity::Inspection, &good, NOW, &Catalogue::builtin()).unwrap();
        assert_eq!(out["answers"]["detector_installed"], false);
        let gas = Catalogue::builtin();
        let gas = gas.checklist("gas_safety").unwrap();
        let failed = inspection_failures(gas, out["answers"].as_object().unwrap(), &Map::new()).unwrap();
        assert_eq!(failed, ["detector_installed"], "a missing detector fails the item");
        let with = |path: &[&str], v: Value| {
            let mut f = Value::Object(good.clone());
            let mut at = &mut f;
            for p in &path[..path.len() - 1] {
                at = &mut at[*p];
            }
            at[path[path.len() - 1]] = v;
            field_of(Entity::Inspection, f)
        };
        for (path, value, field) in [
            (&["checklist"][..], json!("fire_drill"), "checklist"),
            (
                &["answers", "detector_installed"],
                json!("yes"),
                "answers.detector_installed",
            ),
            (&["answers", "hose_years"], json!(51), "answers.hose_years"),
            (&["answers", "hose_years"], json!("3"), "answers.hose_years"),
            (&["answers", "ventilation_ok"], Value::Null, "answers.ventilation_ok"),
            (&["answers", "张三13812345678"], json!(true), "answers"),
            (&["answers", "remarks"], json!("x".repeat(501)), "answers.remarks"),
            (
                &["item_photos", "meter_photo"],
                json!(["not-an-id"]),
                "item_photos.meter_photo",
            ),
            (&["item_photos", "no_such_item"], json!([]), "item_photos"),
            (&["location"], Value::Null, "location"),
        ] {
            assert_eq!(with(path, value.clone()), field, "{path:?} = {value}");
        }
        let mut unanswered = good.clone();
        unanswered["answers"].as_object_mut().unwrap().remove("ventilation_ok");
        assert_eq!(
            field_of(Entity::Inspection, Value::Object(unanswered)),
            "answers.ventilation_ok"
        );
        // A choice must be one offered; a required photo item needs a photo.
        let fire = json!({"grid_id": "g", "checklist": "fire_exits", "answers": {"exit_clear": true, "extinguisher": "坏了"},
                          "location": {"latitude": 37.4, "longitude": 118.5}, "occurred_at_ms": NOW - 1});
        assert_eq!(field_of(Entity::Inspection, fire.clone()), "answers.extinguisher");
        let mut fire = fire;
        fire["answers"]["extinguisher"] = json!("过期");
        assert_eq!(field_of(Entity::Inspection, fire), "item_photos.exit_photo");
    }

    #[test]
    fn the_districts_own_fields_are_checked_like_answers() {
        let mut catalogue = Catalogue::builtin();
        catalogue.field_defs = crate::catalogue::demo_field_defs();
        let household = json!({"grid_id": "g", "room": "301", "address": "", "notes": ""});
        let with = |extra: Value| {
            let mut f = household.clone();
            f["extra"] = extra;
            check(Entity::Household, &obj(f), NOW, &catalogue)
        };
        let f = with(json!({"gas_supplier": "管道天然气", "smoke_alarm": false})).unwrap();
        assert_eq!(f["extra"], json!({"gas_supplier": "管道天然气", "smoke_alarm": false}));
        // A null is no value; an empty extra is left out.
        assert_eq!(with(json!({"smoke_alarm": null})).unwrap().get("extra"), None);
        assert_eq!(
            check(Entity::Household, &obj(household.clone()), NOW, &catalogue)
                .unwrap()
                .get("extra"),
            None
        );
        for (extra, field) in [
            (json!({"gas_supplier": "煤气罐"}), "extra.gas_supplier"),
            (json!({"smoke_alarm": "yes"}), "extra.smoke_alarm"),
            // A resident's field is not a household's, and unknown codes
            // are never repeated back.
            (json!({"disability_grade": "一级"}), "extra"),
            (json!({"张伟 13812345678": 1}), "extra"),
            (json!(["gas_supplier"]), "extra"),
        ] {
            assert_eq!(with(extra.clone()).unwrap_err().field, field, "{extra}");
        }
        let mut resident = json!({"grid_id": "g", "name": "张伟", "sex": "male", "residence": "registered"});
        resident["extra"] = json!({"monthly_allowance": 20000});
        let err = check(Entity::Resident, &obj(resident.clone()), NOW, &catalogue).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code),
            ("extra.monthly_allowance", Code::OutOfRange)
        );
        // Required on a new record only; a retired field keeps its values.
        let given = obj(json!({"smoke_alarm": true}));
        assert_eq!(
            normalised_extra(&catalogue, Entity::Household, &given, true)
                .unwrap_err()
                .field,
            "extra.gas_supplier"
        );
        assert!(normalised_extra(&catalogue, Entity::Household, &given, false).is_ok());
        assert!(with(json!({"gas_supplier": "瓶装液化气"})).is_ok());
        catalogue.field_defs[2].retired = true;
        assert!(normalised_extra(&catalogue, Entity::Household, &given, true).is_ok());
        let kept = obj(json!({"gas_supplier": "瓶装液化气"}));
        assert!(normalised_extra(&catalogue, Entity::Household, &kept, false).is_ok());
        // Kinds with no fields of the district's take no extra.
        assert!(!device_writes(Entity::ServiceLog, "extra"));
    }

    #[test]
    fn a_records_district_fields_fit_a_byte_budget_that_keeps_the_record_under_its_cap() {
        let mut catalogue = Catalogue::builtin();
        let mut def = crate::catalogue::demo_field_defs().remove(4); // place.property_company, text
        def.item.max_len = Some(2000);
        for i in 0..6 {
            let mut d = def.clone();
            d.item.code = format!("note_{i}");
            catalogue.field_defs.push(d);
        }
        assert_eq!(catalogue.problem(), None);
        let long = "注".repeat(2000); // 6,000 bytes each
        let extra: Fields = (0..6).map(|i| (format!("note_{i}"), json!(long))).collect();
        let place = json!({"grid_id": "g", "kind": "compound", "name": "小区", "extra": extra});
        let err = check(Entity::Place, &obj(place), NOW, &catalogue).unwrap_err();
        assert_eq!(
            (err.field.as_str(), err.code),
            (
                "extra",
                Code::TooLarge {
                    max: EXTRA_MAX_BYTES as u64
                }
            )
        );
        let one: Fields = (0..1).map(|i| (format!("note_{i}"), json!(long))).collect();
        let place = json!({"grid_id": "g", "kind": "compound", "name": "小区", "extra": one});
        let f = check(Entity::Place, &obj(place), NOW, &catalogue).unwrap();
        assert!(serde_json::to_vec(&f).unwrap().len() < RECORD_MAX_BYTES);
    }

    #[test]
    fn a_districts_care_tags_and_service_kinds_are_checked_against_its_catalogue() {
        let mut catalogue = Catalogue::builtin();
        let resident = json!({"grid_id": "g", "name": "张伟", "sex": "male", "residence": "registered",
                              "care_tags": ["disabled", "key_watch"]});
        let log = json!({"grid_id": "g", "kind": "haircut_at_home", "occurred_at_ms": NOW - 1000});
        let err = check(Entity::Resident, &obj(resident.clone()), NOW, &catalogue).unwrap_err();
        assert_eq!(err.field, "care_tags");
        assert_eq!(
            check(Entity::ServiceLog, &obj(log.clone()), NOW, &catalogue)
                .unwrap_err()
                .field,
            "kind"
        );
        let term = |code: &str| crate::catalogue::Term {
            code: code.into(),
            name_zh: "x".into(),
            retired: true, // retired: records keep it, and it still counts
        };
        catalogue.care_tags.push(term("key_watch"));
        catalogue.service_kinds.push(term("haircut_at_home"));
        assert!(check(Entity::Resident, &obj(resident), NOW, &catalogue).is_ok());
        assert!(check(Entity::ServiceLog, &obj(log), NOW, &catalogue).is_ok());
    }

    #[test]
    fn an_update_merges_the_districts_fields_value_by_value() {
        let stored = obj(json!({"room": "301", "extra": {"gas_supplier": "管道天然气", "smoke_alarm": false}}));
        let patch = obj(json!({"notes": "x", "extra": {"smoke_alarm": null, "heating": "集中"}}));
        let merged = patched(&stored, &patch);
        assert_eq!(
            Value::Object(merged.clone()),
            json!({"room": "301", "notes": "x", "extra": {"gas_supplier": "管道天然气", "heating": "集中"}})
        );
        let fields: Vec<String> = written(&patch, &stored, &merged)
            .into_iter()
            .map(|(k, _, _)| k)
            .collect();
        assert_eq!(fields, ["extra.heating", "extra.smoke_alarm", "notes"]);
        // Anything but an object is the rules' to refuse, as it came.
        let bad = obj(json!({"extra": ["gas_supplier"]}));
        assert_eq!(patched(&stored, &bad)["extra"], json!(["gas_supplier"]));
    }

    #[test]
    fn care_tags_in_another_order_are_the_same_value() {
        let (a, b) = (json!(["veteran", "disabled"]), json!(["disabled", "veteran"]));
        assert!(same_value("care_tags", Some(&a), Some(&b)));
        assert!(!same_value("care_tags", Some(&json!(["veteran"])), Some(&b)));
        assert!(
            !same_value("involved_residents", Some(&a), Some(&b)),
            "other lists keep their order"
        );
    }

    #[test]
    fn record_ids_are_canonical_uuids() {
        let id = crate::new_id();
        assert!(is_record_id(&id));
        for bad in [
            String::new(),
            "catalogue".into(),
            id.to_uppercase(),
            id.replace('-', ""),
            format!("{{{id}}}"),
            "00000000-0000-0000-0000-000000000000".into(),
            "0190f1d2-8c1a-0b3e-9f00-0123456789ab".into(), // version 0
            "0190f1d2-8c1a-7b3e-cf00-0123456789ab".into(), // not the RFC variant
            "x".repeat(700_000),
        ] {
            assert!(!is_record_id(&bad), "{}", &bad[..bad.len().min(40)]);
        }
        let f = json!({"grid_id": "g", "kind": "unit", "name": "1单元", "parent_id": "catalogue"});
        assert_eq!(field_of(Entity::Place, f), "parent_id");
        let f = json!({"grid_id": "g", "kind": "visit", "occurred_at_ms": NOW, "resident_ids": ["r1"]});
        assert_eq!(field_of(Entity::ServiceLog, f), "resident_ids");
    }

    /// A valid record of every entity (a photo's owner id is a record id).
    fn valid(entity: Entity) -> Fields {
        let id = "0190f1d2-8c1a-7b3e-9f00-0123456789ab";
        obj(match entity {
            Entity::Place => json!({"grid_id": "g", "kind": "compound", "parent_id": null, "name": "科教小区"}),
            Entity::Household => json!({"grid_id": "g", "unit_id": id, "room": "301", "address": "", "notes": ""}),
            Entity::Resident => json!({"grid_id": "g", "household_id": id, "name": "王芳", "sex": "female",
                                 "residence": "registered", "care_tags": ["elderly_living_alone"], "notes": ""}),
            Entity::Incident => json!({"grid_id": "g", "category": "hornets_nest", "title": "", "description": "",
                                 "address": "", "occurred_at_ms": NOW - 1, "involved_residents": [id],
                                 "location": {"latitude": 37.4, "longitude": 118.5, "accuracy_m": 5.0}}),
            Entity::IncidentEvent => json!({"incident_id": id, "kind": "note", "note": "n"}),
            Entity::ServiceLog => json!({"grid_id": "g", "kind": "visit", "resident_ids": [id], "notes": "",
                                    "occurred_at_ms": NOW - 1}),
            Entity::Inspection => json!({"grid_id": "g", "place_id": id, "checklist": "gas_safety",
                                  "answers": {"detector_installed": false, "nothing_on_pipes": true, "ventilation_ok": true,
                                              "hose_years": 3, "remarks": ""},
                                  "item_photos": {"detector_installed": [id]}, "raised_incidents": [id], "notes": "",
                                  "location": {"latitude": 37.4, "longitude": 118.5, "accuracy_m": 5.0},
                                  "occurred_at_ms": NOW - 1}),
            Entity::Photo => json!({"owner": {"kind": "incident", "id": id}, "sha256": "a".repeat(64), "size": 10,
                        "mime": "image/jpeg", "taken_at_ms": null, "location": null}),
        })
    }

    proptest::proptest! {
        /// A valid record with anything else added (keys the entity does
        /// not have, server fields, keys inside its nested values) passes,
        /// and what leaves the check is only the entity's device fields,
        /// within the record size cap.
        #[test]
        fn checked_records_hold_device_fields_only_and_fit_the_cap(
            which in 0..Entity::ALL.len(),
            extra in proptest::collection::vec(("[a-z_]{1,16}", ".{0,2000}"), 0..8),
            notes in "[^\\p{Cc}]{0,2000}",
        ) {
            let entity = Entity::ALL[which];
            let mut f = valid(entity);
            for (k, v) in &extra {
                if !device_writes(entity, k) {
                    f.insert(k.clone(), Value::String(v.clone()));
                }
                if let Some(Value::Object(o)) = f.get_mut("location") {
                    o.insert(format!("x_{k}"), Value::String(v.clone()));
                }
            }
            for field in ["notes", "note", "description"] {
                if f.contains_key(field) {
                    f.insert(field.into(), Value::String(notes.clone()));
                }
            }
            let out = check(entity, &f, NOW, &Catalogue::builtin());
            proptest::prop_assert!(out.is_ok(), "{entity}: {:?}", out.err());
            let out = out.unwrap_or_default();
            proptest::prop_assert!(out.keys().all(|k| device_writes(entity, k)));
            if let Some(Value::Object(loc)) = out.get("location") {
                proptest::prop_assert!(loc.keys().all(|k| !k.starts_with("x_")));
            }
            proptest::prop_assert!(serde_json::to_vec(&out).unwrap_or_default().len() <= RECORD_MAX_BYTES);
        }
    }
}
