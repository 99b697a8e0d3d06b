//! A phone that is killed mid-flight: used by the crash harness. It captures
//! service logs, printing each id once the capture call has returned, and
//! syncs every few captures, until it is killed.
//!
//! Usage: `crashy STORE SERVER_URL USER PASSWORD RUN`

#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::io::Write;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use fieldgrid_core::sync::{HttpOptions, HttpTransport, SyncOptions};
use fieldgrid_core::{NewServiceLog, ServiceKind, Store, StoreKey};

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (store, url, user, password, run) = (&args[1], &args[2], &args[3], &args[4], &args[5]);
    let store = Store::open(store, Some(&StoreKey::from_bytes(&[5; 32]).unwrap())).unwrap();
    let transport = HttpTransport::new(
        url,
        &HttpOptions {
            timeout: Duration::from_secs(5),
            pinned_ca_pem: None,
        },
    )
    .unwrap();
    if store.grids().unwrap().is_empty() {
        store.login(&transport, user, password).unwrap();
    }
    let grid = store.grids().unwrap()[0].id.clone();
    let options = SyncOptions {
        batch_operations: 3,
        max_attempts: 1,
        ..SyncOptions::default()
    };
    let mut out = std::io::stdout();
    for i in 0.. {
        let log = store
            .create_service_log(&NewServiceLog {
                grid_id: grid.clone(),
                kind: ServiceKind::PhoneCheckIn,
                resident_ids: vec![],
                notes: format!("run {run} capture {i}"),
                occurred_at_ms: None,
                photos: vec![],
            })
            .unwrap();
        // Printed only after the call returned: the harness holds us to it.
        writeln!(out, "captured {}", log.id).unwrap();
        out.flush().unwrap();
        if i % 4 == 3 {
            let _ = store.sync(&transport, &options, &|_| {}, &AtomicBool::new(false));
        }
    }
}
