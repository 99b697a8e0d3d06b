//! One wire shape per entity (SYNC.md invariant 13, "stored means
//! readable"): the model's types as serde reads and writes them. The
//! phone's pull reads every pulled record with [`read`]; the server stores a
//! record only once [`complete`] has read it the same way and filled in
//! every field the shape has, so a phone build that requires a field (this
//! one, or an older one) always finds it.
//!
//! A record that does not read is [`Unreadable`]: the server refuses to
//! store it, and a phone that meets one anyway (stored before this rule, or
//! by a newer server) sets it aside instead of failing its pull.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::Entity;
use crate::model::{Household, Incident, IncidentEvent, Inspection, Photo, Place, Resident, ServiceLog};

type Fields = Map<String, Value>;

/// A record read in its entity's wire shape.
#[derive(Clone, Debug, PartialEq)]
pub enum WireRecord {
    /// A compound, building or unit.
    Place(Place),
    /// A household.
    Household(Household),
    /// A resident.
    Resident(Box<Resident>),
    /// An incident.
    Incident(Box<Incident>),
    /// A timeline event.
    IncidentEvent(IncidentEvent),
    /// A service log.
    ServiceLog(ServiceLog),
    /// An inspection.
    Inspection(Box<Inspection>),
    /// A photo's record.
    Photo(Photo),
}

/// Why a record does not read: its entity and the field where reading
/// failed (a path of field names, `location.lat`; never a value).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a {entity} that this version cannot read (at {field})")]
pub struct Unreadable {
    /// The record's entity (wire name).
    pub entity: &'static str,
    /// Where reading failed: field names only (`record` when the path is
    /// not one of plain field names).
    pub field: String,
}

/// Reads a record of `entity` with id `id` from its wire fields.
pub fn read(entity: Entity, id: &str, fields: &Fields) -> Result<WireRecord, Unreadable> {
    read_owned(entity, id, fields.clone())
}

/// [`read`] of fields the caller gives up (the pull's path: no copy).
pub fn read_owned(entity: Entity, id: &str, mut fields: Fields) -> Result<WireRecord, Unreadable> {
    fields.insert("id".into(), Value::String(id.to_owned()));
    decode_record(entity, &Value::Object(fields))
}

/// The fields a record is stored with: `fields` as given, each field of the
/// entity's wire shape that they leave out added in its encoded form (an
/// empty note `""`, an absent location `null`), so every build that
/// requires a field of the shape finds it. Fields the shape does not have
/// (the server's status, deadline, reporter) are kept as they are; values
/// present are never re-encoded (the rules normalised them).
pub fn complete(entity: Entity, id: &str, fields: &Fields) -> Result<Fields, Unreadable> {
    let mut out = fields.clone();
    complete_in_place(entity, id, &mut out)?;
    Ok(out)
}

/// [`complete`] on the fields where they are (the server's push: no copy);
/// unchanged when they do not read.
pub fn complete_in_place(entity: Entity, id: &str, fields: &mut Fields) -> Result<(), Unreadable> {
    let mut map = std::mem::take(fields);
    let prior = map.insert("id".into(), Value::String(id.to_owned()));
    let value = Value::Object(map);
    let read = decode_record(entity, &value);
    if let Value::Object(mut map) = value {
        match prior {
            Some(v) => map.insert("id".into(), v),
            None => map.remove("id"),
        };
        *fields = map;
    }
    let encoded = match read? {
        WireRecord::Place(r) => encode(&r),
        WireRecord::Household(r) => encode(&r),
        WireRecord::Resident(r) => encode(&r),
        WireRecord::Incident(r) => encode(&r),
        WireRecord::IncidentEvent(r) => encode(&r),
        WireRecord::ServiceLog(r) => encode(&r),
        WireRecord::Inspection(r) => encode(&r),
        WireRecord::Photo(r) => encode(&r),
    };
    for (k, v) in encoded {
        if k != "id" && !fields.contains_key(&k) {
            fields.insert(k, v);
        }
    }
    Ok(())
}

fn decode_record(entity: Entity, value: &Value) -> Result<WireRecord, Unreadable> {
    let e = entity.as_str();
    Ok(match entity {
        Entity::Place => WireRecord::Place(decode(e, value)?),
        Entity::Household => WireRecord::Household(decode(e, value)?),
        Entity::Resident => WireRecord::Resident(Box::new(decode(e, value)?)),
        Entity::Incident => WireRecord::Incident(Box::new(decode(e, value)?)),
        Entity::IncidentEvent => WireRecord::IncidentEvent(decode(e, value)?),
        Entity::ServiceLog => WireRecord::ServiceLog(decode(e, value)?),
        Entity::Inspection => WireRecord::Inspection(Box::new(decode(e, value)?)),
        Entity::Photo => WireRecord::Photo(decode(e, value)?),
    })
}

fn decode<T: DeserializeOwned>(entity: &'static str, value: &Value) -> Result<T, Unreadable> {
    // The plain read first (the hot path); only a record that does not
    // read is read again to learn where.
    if let Ok(record) = T::deserialize(value) {
        return Ok(record);
    }
    serde_path_to_error::deserialize(value).map_err(|e| {
        // A missing field is named by the error, not the path (which
        // stops at the record holding it). Only that message is read: the
        // others may quote a value.
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        let missing = inner
            .strip_prefix("missing field `")
            .and_then(|rest| rest.split('`').next());
        let field = match missing {
            Some(name) if path == "." => name.to_owned(),
            Some(name) => format!("{path}.{name}"),
            None => path,
        };
        Unreadable {
            entity,
            field: field_path(&field),
        }
    })
}

fn encode<T: serde::Serialize>(record: &T) -> Fields {
    match serde_json::to_value(record) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// Whether `path` is fit to repeat: field names and indexes of the
/// protocol (`answers.smoke_alarm`, `involved_residents[2]`), nothing longer
/// or odd (a map key may be anything a client sent).
pub fn is_field_path(path: &str) -> bool {
    !path.is_empty()
        && path != "."
        && path.len() <= 80
        && path
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.' | b'[' | b']'))
}

fn field_path(path: &str) -> String {
    if is_field_path(path) {
        path.to_owned()
    } else {
        "record".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ID: &str = "01890f6e-7b1c-7cc0-8a00-000000000001";
    const INCIDENT: &str = "01890f6e-7b1c-7cc0-8a00-000000000002";

    fn fields(v: Value) -> Fields {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn an_event_without_a_note_is_unreadable_and_names_the_field() {
        let e = read(
            Entity::IncidentEvent,
            ID,
            &fields(json!({"incident_id": INCIDENT, "kind": "reported", "actor": null, "at_ms": 1})),
        )
        .unwrap_err();
        assert_eq!(
            e,
            Unreadable {
                entity: "incident_event",
                field: "note".into()
            }
        );
    }

    #[test]
    fn complete_fills_in_what_the_shape_has_and_keeps_the_rest() {
        let f = fields(json!({"incident_id": INCIDENT, "kind": "note", "note": "", "at_ms": 5, "server_at_ms": 5}));
        let done = complete(Entity::IncidentEvent, ID, &f).unwrap();
        assert_eq!(
            Value::Object(done),
            json!({"incident_id": INCIDENT, "kind": "note", "note": "", "at_ms": 5, "server_at_ms": 5,
                   "actor": null, "department": null, "deadline_at_ms": null})
        );
    }

    #[test]
    fn values_present_are_not_re_encoded() {
        let f = fields(json!({"grid_id": "g", "checklist": "fire", "answers": {"count": 6},
                              "occurred_at_ms": 1, "location": null}));
        let done = complete(Entity::Inspection, ID, &f).unwrap();
        assert_eq!(done["answers"], json!({"count": 6}), "6 stays 6, never 6.0");
        assert_eq!(done["notes"], json!(""));
    }

    #[test]
    fn a_value_is_never_repeated_in_the_reason() {
        let f = fields(
            json!({"grid_id": "g", "household_id": null, "name": "张三", "sex": "male",
                              "id_number": "370502198001011589x", "residence": "registered"}),
        );
        let e = read(Entity::Resident, ID, &f).unwrap_err();
        assert_eq!(e.field, "id_number");
        assert!(!e.to_string().contains("3705"), "{e}");
        // A path through a map key a client chose is not repeated.
        assert_eq!(field_path("answers.Robert'); DROP"), "record");
    }
}
