//! Personal data that must not leak into logs, errors or crash reports.
//!
//! [`PersonName`] and [`PrivateText`] wrap values whose `Debug` prints a mask,
//! so `#[derive(Debug)]` on a record is safe. None of them implements
//! `Display`: showing the real value takes a deliberate `.as_str()`.

use std::fmt;

use serde::{Deserialize, Serialize};

pub use crate::validate::id_number::mask_id_number;
pub use crate::validate::phone::mask_phone;

/// A person's name. `Debug` prints the masked form (`张*`, `张*明`).
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PersonName(pub(crate) String);

impl PersonName {
    /// Wraps a name (checked by the caller: see the core's capture rules).
    pub fn new(name: impl Into<String>) -> PersonName {
        PersonName(name.into())
    }

    /// The real name, for display on the worker's own screen.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The masked form for lists shown to others: see [`mask_name`].
    pub fn masked(&self) -> String {
        mask_name(&self.0)
    }
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PersonName({})", self.masked())
    }
}

/// Free text that may hold personal data (addresses, notes, descriptions).
/// `Debug` prints only its length.
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(transparent)]
pub struct PrivateText(pub(crate) String);

impl PrivateText {
    /// Wraps free text (checked by the caller: see the core's capture rules).
    pub fn new(text: impl Into<String>) -> PrivateText {
        PrivateText(text.into())
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the text is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for PrivateText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrivateText({} chars)", self.0.chars().count())
    }
}

/// Masks a name the way Chinese public notices do: the first character kept,
/// and the last one too when the name has three or more characters
/// (`张伟` → `张*`, `张小明` → `张*明`, `欧阳小明` → `欧**明`).
pub fn mask_name(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    match chars.len() {
        0 => String::new(),
        1 => "*".to_owned(),
        2 => format!("{}*", chars[0]),
        n => format!("{}{}{}", chars[0], "*".repeat(n - 2), chars[n - 1]),
    }
}

/// A record's value as shown to someone who may not see residents whole
/// (the centre's conflict lists): codes as they are (sex, residence, care
/// tags, kinds, categories, ids of records), a name, an ID number or a
/// phone masked as everywhere else, a birth date to its year, and anything
/// else (free text, the district's own fields, numbers) by its length only.
pub fn masked_value(field: &str, value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    const CODES: &[&str] = &[
        "sex",
        "residence",
        "care_tags",
        "kind",
        "category",
        "status",
        "grid_id",
        "household_id",
        "unit_id",
        "parent_id",
        "place_id",
        "checklist",
    ];
    let text = match value {
        Value::Null | Value::Bool(_) => return value.clone(),
        _ if CODES.contains(&field) => return value.clone(),
        Value::String(s) => s.as_str(),
        other => return Value::String(format!("（{} 字符）", other.to_string().chars().count())),
    };
    Value::String(match field {
        "name" => mask_name(text),
        "id_number" => crate::validate::id_number::mask_id_number(text),
        "phone" => crate::validate::phone::mask_phone(text),
        "birth_date" => match text.split_once('-') {
            Some((year, _)) => format!("{year}-**-**"),
            None => "*".repeat(text.chars().count()),
        },
        _ => format!("（{} 字）", text.chars().count()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_masked_by_their_field() {
        use serde_json::json;
        let m = |f: &str, v| masked_value(f, &v);
        assert_eq!(m("id_number", json!("370502198001011589")), json!("370***********1589"));
        assert_eq!(m("phone", json!("13912345678")), json!("139****5678"));
        assert_eq!(m("name", json!("欧阳娜娜")), json!("欧**娜"));
        assert_eq!(m("birth_date", json!("1980-01-01")), json!("1980-**-**"));
        assert_eq!(m("notes", json!("住3号楼301")), json!("（7 字）"));
        assert_eq!(m("extra.allowance", json!(370502)), json!("（6 字符）"));
        assert_eq!(
            m("care_tags", json!(["elderly_living_alone"])),
            json!(["elderly_living_alone"])
        );
        assert_eq!(m("phone", json!(null)), json!(null));
    }

    #[test]
    fn names_are_masked() {
        assert_eq!(mask_name("张伟"), "张*");
        assert_eq!(mask_name("张小明"), "张*明");
        assert_eq!(mask_name("欧阳小明"), "欧**明");
        assert_eq!(mask_name("王"), "*");
        let debug = format!("{:?}", PersonName("张小明".into()));
        assert!(!debug.contains("小"));
        let debug = format!("{:?}", PrivateText("格林盛景小区3号楼".into()));
        assert!(!debug.contains("格林"));
    }
}
