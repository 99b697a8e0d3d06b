#![no_main]
//! A district spreadsheet exported as CSV, however malformed: rows or line
//! numbers with reasons, never a panic; every parsed row then meets the
//! server's rules or is refused by them.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((rows, _refused)) = fieldgrid_cli::device::parse_residents_csv(data, "g1") else { return };
    for (_, r) in rows {
        let mut fields = serde_json::Map::new();
        fields.insert("name".into(), r.name.into());
        fields.insert("sex".into(), r.sex.as_str().into());
        fields.insert("residence".into(), r.residence.as_str().into());
        fields.insert("id_number".into(), r.id_number.into());
        fields.insert("phone".into(), r.phone.into());
        fields.insert("notes".into(), r.notes.into());
        let _ = fieldgrid_core::rules::check("resident", &fields, 1_795_665_600_000, &fieldgrid_core::Catalogue::builtin());
    }
});
