#![no_main]
//! The server's validation of any JSON record a device might send.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&which, json)) = data.split_first() else { return };
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_slice(json) else { return };
    let entity = fieldgrid_core::rules::ENTITIES[which as usize % fieldgrid_core::rules::ENTITIES.len()];
    let _ = fieldgrid_core::rules::check(entity, &fields, 1_795_665_600_000, &fieldgrid_core::Catalogue::builtin());
});
