//! The capture rules applied to a record given as wire fields: how the
//! district server validates what devices send, with the very functions the
//! device uses (no second copy of any rule).
//!
//! `check` takes a record's complete fields (for an update: the stored record
//! with the patch applied) and returns them normalised, or the first field
//! that breaks a rule. References between records are the server's business.

use chrono::NaiveDate;
use serde_json::{Map, Value};

use crate::catalogue::Catalogue;
use crate::error::{Code, ValidationError};
use crate::model::{CareTag, EventKind, PlaceKind, ResidenceStatus, ServiceKind, Sex};
use crate::validate::{self, IdNumber, Location, Phone, limits};

type Fields = Map<String, Value>;
type Checked = Result<Fields, ValidationError>;

/// Entities a device may send.
pub const ENTITIES: [&str; 7] = [
    "place",
    "household",
    "resident",
    "incident",
    "incident_event",
    "service_log",
    "photo",
];

/// Validates and normalises the complete fields of a record of `entity`.
/// `now_ms` is the server's clock.
pub fn check(entity: &str, fields: &Fields, now_ms: i64, catalogue: &Catalogue) -> Checked {
    let today = chrono::DateTime::from_timestamp_millis(now_ms + 8 * 3_600_000)
        .unwrap_or_default()
        .date_naive();
    let mut f = fields.clone();
    match entity {
        "place" => {
            enumerated(&f, "kind", |s| PlaceKind::parse(s).is_some())?;
            text(&mut f, "name", limits::LABEL, Need::Required, false)?;
        }
        "household" => {
            text(&mut f, "room", limits::LABEL, Need::Required, false)?;
            text(&mut f, "address", limits::ADDRESS, Need::Optional, false)?;
            text(&mut f, "notes", limits::NOTES, Need::Optional, true)?;
        }
        "resident" => resident(&mut f, today)?,
        "incident" => {
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
            location(&f, "location", cat.requires_location)?;
            time(&f, "occurred_at_ms", now_ms)?;
            id_list(&f, "involved_residents")?;
        }
        "incident_event" => {
            enumerated(&f, "kind", |s| {
                EventKind::parse(s).is_some_and(|k| k.is_worker_event() || k == EventKind::Reported)
            })?;
            text(&mut f, "note", limits::NOTES, Need::Optional, true)?;
            string(&f, "incident_id")?.ok_or_else(|| ValidationError::new("incident_id", Code::Required))?;
        }
        "service_log" => {
            enumerated(&f, "kind", |s| ServiceKind::parse(s).is_some())?;
            text(&mut f, "notes", limits::NOTES, Need::Optional, true)?;
            time(&f, "occurred_at_ms", now_ms)?;
            id_list(&f, "resident_ids")?;
        }
        "photo" => {
            let sha = string(&f, "sha256")?.unwrap_or_default();
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()) {
                return Err(ValidationError::new("sha256", Code::BadFormat));
            }
            let size = f.get("size").and_then(Value::as_u64).unwrap_or(0);
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
            location(&f, "location", false)?;
        }
        _ => return Err(ValidationError::new("entity", Code::UnsupportedType)),
    }
    Ok(f)
}

fn resident(f: &mut Fields, today: NaiveDate) -> Result<(), ValidationError> {
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
        if d > today {
            return Err(ValidationError::new("birth_date", Code::InFuture));
        }
    }
    if let Some(raw) = string(f, "phone")? {
        let p = Phone::parse(&raw).map_err(|c| ValidationError::new("phone", c))?;
        f.insert("phone".into(), Value::String(p.as_str().to_owned()));
    }
    if let Some(tags) = f.get("care_tags") {
        let ok = tags
            .as_array()
            .is_some_and(|a| a.iter().all(|t| t.as_str().and_then(CareTag::parse).is_some()));
        if !ok {
            return Err(ValidationError::new("care_tags", Code::BadFormat));
        }
    }
    text(f, "notes", limits::NOTES, Need::Optional, true)?;
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
    }
    .map_err(|e| {
        e.as_validation()
            .cloned()
            .unwrap_or_else(|| ValidationError::new(field, Code::BadFormat))
    })?;
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

fn location(f: &Fields, field: &str, required: bool) -> Result<(), ValidationError> {
    match f.get(field) {
        None | Some(Value::Null) if required => Err(ValidationError::new(field, Code::Required)),
        None | Some(Value::Null) => Ok(()),
        Some(v) => {
            let loc: Location =
                serde_json::from_value(v.clone()).map_err(|_| ValidationError::new(field, Code::BadFormat))?;
            loc.validate(field).map_err(|e| {
                e.as_validation()
                    .cloned()
                    .unwrap_or_else(|| ValidationError::new(field, Code::BadFormat))
            })
        }
    }
}

fn time(f: &Fields, field: &str, now_ms: i64) -> Result<(), ValidationError> {
    let t = f
        .get(field)
        .and_then(Value::as_i64)
        .ok_or_else(|| ValidationError::new(field, Code::Required))?;
    validate::not_in_future(field, t, now_ms).map_err(|e| {
        e.as_validation()
            .cloned()
            .unwrap_or_else(|| ValidationError::new(field, Code::OutOfRange))
    })
}

fn id_list(f: &Fields, field: &str) -> Result<(), ValidationError> {
    let max = limits::RESIDENTS_PER_RECORD;
    match f.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(Value::Array(a)) if a.len() > max => Err(ValidationError::new(field, Code::TooMany { max })),
        Some(Value::Array(a)) if a.iter().all(Value::is_string) => Ok(()),
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

    fn field_of(entity: &str, v: Value) -> String {
        check(entity, &obj(v), NOW, &Catalogue::builtin()).unwrap_err().field
    }

    #[test]
    fn residents_follow_the_device_rules() {
        let ok = json!({"grid_id": "g", "name": " 张伟 ", "sex": "female", "id_number": "11010519491231002x",
                        "phone": "+86 138 1234 5678", "residence": "registered", "care_tags": ["disabled"], "notes": ""});
        let f = check("resident", &obj(ok.clone()), NOW, &Catalogue::builtin()).unwrap();
        assert_eq!(f["name"], "张伟");
        assert_eq!(f["id_number"], "11010519491231002X");
        assert_eq!(f["birth_date"], "1949-12-31");
        assert_eq!(f["phone"], "13812345678");
        let mut bad = ok.clone();
        bad["sex"] = json!("male");
        assert_eq!(field_of("resident", bad), "sex");
        let mut bad = ok.clone();
        bad["id_number"] = json!("110105194912310021");
        assert_eq!(field_of("resident", bad), "id_number");
        let mut bad = ok.clone();
        bad["care_tags"] = json!(["vip"]);
        assert_eq!(field_of("resident", bad), "care_tags");
        let mut bad = ok;
        bad["name"] = json!(42);
        assert_eq!(field_of("resident", bad), "name");
    }

    #[test]
    fn incidents_need_a_known_category_and_its_fields() {
        let ok = json!({"category": "broken_facility", "title": "", "description": "路灯损坏", "address": "",
                        "location": {"latitude": 37.4, "longitude": 118.5, "accuracy_m": 5.0, "crs": "wgs84"},
                        "occurred_at_ms": NOW - 1000, "involved_residents": []});
        assert!(check("incident", &obj(ok.clone()), NOW, &Catalogue::builtin()).is_ok());
        let mut bad = ok.clone();
        bad["category"] = json!("ufo");
        assert_eq!(field_of("incident", bad), "category");
        let mut bad = ok.clone();
        bad["location"] = Value::Null;
        assert_eq!(field_of("incident", bad), "location");
        let mut bad = ok;
        bad["occurred_at_ms"] = json!(NOW + 86_400_000);
        assert_eq!(field_of("incident", bad), "occurred_at_ms");
        assert_eq!(field_of("bogus", json!({})), "entity");
        assert_eq!(
            field_of("photo", json!({"sha256": "zz", "size": 1, "mime": "image/jpeg"})),
            "sha256"
        );
    }
}
