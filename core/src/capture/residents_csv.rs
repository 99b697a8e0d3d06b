//! District spreadsheets of residents, as CSV: the column names and the
//! Chinese labels districts write (男/女, 户籍/实有/流动, care tags by their
//! wire names), read into [`NewResident`] rows for [`Store::import_residents`].
//! Field rules (ID numbers, phones, lengths) are the store's, applied on
//! import; what is refused here is what cannot become a row at all.

use std::io::Read;

use crate::entity::Entity;
use crate::error::{Code, Error, Result, ValidationError};
use crate::model::Answer;
use crate::model::{CareTag, ResidenceStatus, Sex};
use crate::store::Store;
use crate::{ItemAnswer, NewResident};

/// A residents CSV, read.
#[derive(Debug, Default)]
pub struct ResidentsCsv {
    /// Rows to import, with their line numbers in the file (the header is 1).
    pub rows: Vec<(u64, NewResident)>,
    /// Lines that cannot become a row, and why (the field and the rule).
    pub refused: Vec<(u64, ValidationError)>,
}

/// What importing a CSV did.
#[derive(Debug, Default)]
pub struct CsvImportReport {
    /// Ids of the residents created, in file order.
    pub created: Vec<String>,
    /// Lines refused, by the reader or by the store's rules, in line order.
    /// Nothing of them was written.
    pub refused: Vec<(u64, ValidationError)>,
    /// Lines saved with something to check (a mobile number in a segment
    /// not allocated today): line, field, and the warning's code.
    pub warnings: Vec<(u64, &'static str, &'static str)>,
}

/// `男`/`女` as districts write them, or the wire names.
pub fn parse_sex_label(s: &str) -> Option<Sex> {
    match s.trim() {
        "男" | "male" | "m" | "M" => Some(Sex::Male),
        "女" | "female" | "f" | "F" => Some(Sex::Female),
        _ => None,
    }
}

/// `户籍` (registered, also the default when empty), `实有`/`常住` (actual),
/// `流动` (floating), or the wire names.
pub fn parse_residence_label(s: &str) -> Option<ResidenceStatus> {
    match s.trim() {
        "" | "户籍" => Some(ResidenceStatus::Registered),
        "实有" | "常住" => Some(ResidenceStatus::Actual),
        "流动" => Some(ResidenceStatus::Floating),
        other => ResidenceStatus::parse(other),
    }
}

/// Reads a residents CSV for `grid`. Header: `name` (required), and any of
/// `sex`, `id_number`, `phone`, `residence`, `care_tags` (separated by `;`
/// or `；`), `notes`, `household_id`, and `extra.<code>` for the district's
/// own fields (read as text here; [`Store::import_residents_csv`] reads
/// each by its field's type). A file without a header or a `name` column is
/// an error; a bad line is refused on its own.
pub fn parse_residents_csv(input: impl Read, grid: &str) -> Result<ResidentsCsv> {
    let mut reader = csv::Reader::from_reader(input);
    let headers = reader
        .headers()
        .map_err(|_| Error::invalid("header", Code::Unreadable))?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.trim() == name);
    let name_col = col("name").ok_or_else(|| Error::invalid("name", Code::Required))?;
    let mut out = ResidentsCsv::default();
    for (i, record) in reader.records().enumerate() {
        let line = i as u64 + 2;
        let Ok(record) = record else {
            out.refused.push((line, ValidationError::new("row", Code::Unreadable)));
            continue;
        };
        let get = |name: &str| col(name).and_then(|c| record.get(c)).unwrap_or("").trim().to_owned();
        match row(&get, record.get(name_col).unwrap_or(""), grid) {
            Ok(mut resident) => {
                resident.extra = headers
                    .iter()
                    .zip(record.iter())
                    .filter_map(|(h, cell)| Some((h.trim().strip_prefix("extra.")?, cell.trim())))
                    .filter(|(_, cell)| !cell.is_empty())
                    .map(|(code, cell)| ItemAnswer {
                        item: code.to_owned(),
                        answer: Answer::Text(cell.to_owned()),
                    })
                    .collect();
                out.rows.push((line, resident))
            }
            Err(why) => out.refused.push((line, why)),
        }
    }
    Ok(out)
}

fn row(get: &dyn Fn(&str) -> String, name: &str, grid: &str) -> std::result::Result<NewResident, ValidationError> {
    let sex = parse_sex_label(&get("sex")).ok_or_else(|| ValidationError::new("sex", Code::BadFormat))?;
    let residence =
        parse_residence_label(&get("residence")).ok_or_else(|| ValidationError::new("residence", Code::BadFormat))?;
    let care_tags = get("care_tags")
        .split([';', '；'])
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(CareTag::new) // checked against the catalogue when created
        .collect();
    let optional = |v: String| if v.is_empty() { None } else { Some(v) };
    Ok(NewResident {
        extra: Vec::new(),
        grid_id: grid.to_owned(),
        household_id: optional(get("household_id")),
        name: name.to_owned(),
        sex,
        id_number: optional(get("id_number")),
        birth_date: None,
        phone: optional(get("phone")),
        residence,
        care_tags,
        notes: get("notes"),
    })
}

impl Store {
    /// Reads a residents CSV ([`parse_residents_csv`]) and imports its rows
    /// ([`Store::import_residents`]): refusals of both, by line.
    pub fn import_residents_csv(&self, input: impl Read, grid: &str) -> Result<CsvImportReport> {
        let mut parsed = parse_residents_csv(input, grid)?;
        // Each district field's cell read by the field's type (是/否, a number).
        let catalogue = self.catalogue();
        let mut typed = Vec::with_capacity(parsed.rows.len());
        'rows: for (line, mut row) in parsed.rows {
            for a in &mut row.extra {
                let Some(def) = catalogue.fields_of(Entity::Resident).find(|d| d.item.code == a.item) else {
                    continue; // the store refuses it by name
                };
                let Answer::Text(text) = &a.answer else { continue };
                match def.item.answer.parse_text(text) {
                    Some(answer) => a.answer = answer,
                    None => {
                        let why = ValidationError::new(format!("extra.{}", def.item.code), Code::BadFormat);
                        parsed.refused.push((line, why));
                        continue 'rows;
                    }
                }
            }
            typed.push((line, row));
        }
        let (lines, rows): (Vec<u64>, Vec<NewResident>) = typed.into_iter().unzip();
        let imported = self.import_residents(&rows)?;
        let mut refused = parsed.refused;
        let mut saved = vec![true; rows.len()];
        for (index, why) in imported.rejected {
            if let Some(&line) = lines.get(index) {
                refused.push((line, why));
            }
            if let Some(s) = saved.get_mut(index) {
                *s = false;
            }
        }
        refused.sort_by_key(|(line, _)| *line);
        let warnings = rows
            .iter()
            .zip(&lines)
            .zip(saved)
            .filter(|(_, saved)| *saved)
            .filter_map(|((row, &line), _)| {
                let warning = crate::validate::Phone::parse(row.phone.as_deref()?).ok()?.warning()?;
                Some((line, "phone", warning.as_str()))
            })
            .collect();
        Ok(CsvImportReport {
            created: imported.created,
            refused,
            warnings,
        })
    }
}
