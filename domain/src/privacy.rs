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

#[cfg(test)]
mod tests {
    use super::*;

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
