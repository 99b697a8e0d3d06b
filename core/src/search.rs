//! The search index kept beside residents: name bigrams, care tags, and the
//! reversed ID and phone columns that turn suffix search into a range scan.
//!
//! Why bigrams and not FTS5: Chinese names are two or three characters, and
//! FTS5's trigram tokenizer cannot match a two-character name without a full
//! scan. Every two-character substring of a name is a row of
//! `resident_name_grams`; a query of two or more characters looks up its first
//! bigram and checks the whole query against the few candidates.

use rusqlite::{Transaction, params};

use crate::error::Result;
use crate::model::Resident;

/// Lower-cased the way SQLite's `lower()` does (ASCII only), so that Rust and
/// SQL agree on what matches.
pub(crate) fn fold(s: &str) -> String {
    s.to_ascii_lowercase()
}

/// Every distinct two-character window of `name` (folded).
pub(crate) fn bigrams(name: &str) -> Vec<String> {
    let chars: Vec<char> = fold(name).chars().collect();
    let mut out: Vec<String> = chars.windows(2).map(|w| w.iter().collect()).collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// `s` reversed, for suffix search as a prefix range.
pub(crate) fn reversed(s: &str) -> String {
    s.chars().rev().collect()
}

/// Adds the index rows of a live resident.
pub(crate) fn index_resident(
    tx: &Transaction<'_>,
    rid: i64,
    resident: &Resident,
    building_id: Option<&str>,
) -> Result<()> {
    if resident.meta.deleted {
        return Ok(());
    }
    let mut gram = tx.prepare_cached("INSERT OR IGNORE INTO resident_name_grams (gram, rid) VALUES (?1, ?2)")?;
    for g in bigrams(resident.name.as_str()) {
        gram.execute(params![g, rid])?;
    }
    let mut tag =
        tx.prepare_cached("INSERT OR IGNORE INTO resident_tags (tag, building_id, rid) VALUES (?1, ?2, ?3)")?;
    for t in &resident.care_tags {
        tag.execute(params![t.as_str(), building_id.unwrap_or(""), rid])?;
    }
    Ok(())
}

/// Removes the index rows of a resident as it was (`previous`, in `building_id`).
pub(crate) fn unindex_resident(
    tx: &Transaction<'_>,
    rid: i64,
    previous: &Resident,
    building_id: Option<&str>,
) -> Result<()> {
    let mut gram = tx.prepare_cached("DELETE FROM resident_name_grams WHERE gram = ?1 AND rid = ?2")?;
    for g in bigrams(previous.name.as_str()) {
        gram.execute(params![g, rid])?;
    }
    let mut tag = tx.prepare_cached("DELETE FROM resident_tags WHERE tag = ?1 AND building_id = ?2 AND rid = ?3")?;
    for t in &previous.care_tags {
        tag.execute(params![t.as_str(), building_id.unwrap_or(""), rid])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bigrams_of_names() {
        assert_eq!(bigrams("张伟"), vec!["张伟"]);
        assert_eq!(bigrams("张小明"), vec!["小明", "张小"]);
        assert_eq!(bigrams("王"), Vec::<String>::new());
        assert_eq!(bigrams("Anna"), vec!["an", "na", "nn"]);
    }
}
