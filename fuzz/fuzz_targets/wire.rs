#![no_main]
//! Every protocol body either side decodes.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = serde_json::from_slice::<fieldgrid_protocol::PushRequest>(data);
    let _ = serde_json::from_slice::<fieldgrid_protocol::PushResponse>(data);
    let _ = serde_json::from_slice::<fieldgrid_protocol::ChangesResponse>(data);
    let _ = serde_json::from_slice::<fieldgrid_protocol::LoginRequest>(data);
    let _ = serde_json::from_slice::<fieldgrid_protocol::CentreEventRequest>(data);
    let _ = serde_json::from_slice::<fieldgrid_core::Catalogue>(data);
});
