#![no_main]
//! ID numbers, phones, text and photo sniffing on arbitrary input.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = fieldgrid_core::validate::photo_mime(data);
    if let Ok(s) = std::str::from_utf8(data) {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap_or_default();
        let _ = fieldgrid_core::validate::IdNumber::parse(s, today);
        let _ = fieldgrid_core::validate::id_number::upgrade_legacy(s, today);
        let _ = fieldgrid_core::validate::Phone::parse(s);
        let _ = fieldgrid_core::validate::text("f", s, 50, true);
        let _ = fieldgrid_core::privacy::mask_name(s);
        let _ = fieldgrid_core::privacy::mask_phone(s);
        let _ = fieldgrid_core::privacy::mask_id_number(s);
    }
});
