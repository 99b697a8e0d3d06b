//! Crash harness: a phone process captures and syncs with the real server
//! while it is killed with SIGKILL at random moments. After every kill, every
//! capture whose call had returned is in the store and the file opens; at the
//! end the file is intact and the server holds each operation exactly once.
//! `FIELDGRID_CRASH_KILLS` sets the number of kills (default 200; the long
//! mode is 5000); `FIELDGRID_SEED` replays a run.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use fieldgrid_core::datagen::Rng;
use fieldgrid_core::sync::{HttpOptions, HttpTransport};
use fieldgrid_core::*;
use fieldgrid_tests::{District, PASSWORD, quick};

use crate::helpers::*;

#[test]
fn killed_at_random_moments_nothing_captured_is_lost_or_sent_twice() {
    let kills: usize = std::env::var("FIELDGRID_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200);
    let seed: u64 = std::env::var("FIELDGRID_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261126);
    println!("crash harness: {kills} kills, seed {seed} (FIELDGRID_SEED replays it)");
    let d = District::new();
    // The phone process runs on the real clock: so does the server here.
    d.server_clock
        .0
        .store(SystemClock.now_ms(), std::sync::atomic::Ordering::SeqCst);
    let path = d.dir.path().join("crashy.db");
    let key = StoreKey::from_bytes(&[5; 32]).unwrap();
    // The phone is signed in once; each life of the process then just opens
    // its store and works (as an app started again does).
    {
        let store = Store::open(&path, Some(&key)).unwrap();
        store
            .login(
                &HttpTransport::new(&d.server.url(), &HttpOptions::default()).unwrap(),
                "wa1",
                PASSWORD,
            )
            .unwrap();
    }
    let mut rng = Rng::new(seed);
    let mut captured: Vec<String> = Vec::new();
    for run in 0..kills {
        let mut child = Command::new(env!("CARGO_BIN_EXE_crashy"))
            .args([
                path.to_str().unwrap(),
                &d.server.url(),
                "wa1",
                PASSWORD,
                &run.to_string(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(2 + rng.below(80)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        let mut out = String::new();
        child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
        captured.extend(
            out.lines()
                .filter_map(|l| l.strip_prefix("captured "))
                .map(str::to_owned),
        );

        let store =
            Store::open(&path, Some(&key)).unwrap_or_else(|e| panic!("run {run}: the store does not open: {e}"));
        let check: Vec<&String> = if run % 20 == 0 || run + 1 == kills {
            captured.iter().collect()
        } else {
            captured.last().into_iter().collect()
        };
        for id in check {
            store
                .get_service_log(id)
                .unwrap_or_else(|e| panic!("run {run}: a returned capture is missing: {e}"));
        }
    }
    // The file itself is sound.
    assert_eq!(integrity_check(&path, 5), "ok");

    // Finish the sync: the server ends with exactly the phone's records.
    let store = Store::open(&path, Some(&key)).unwrap();
    let transport = HttpTransport::new(&d.server.url(), &HttpOptions::default()).unwrap();
    store.login(&transport, "wa1", PASSWORD).unwrap();
    store
        .sync(
            &transport,
            &quick(),
            &|_| {},
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!(store.outbox_counts().unwrap(), outbox::OutboxCounts::default());
    let counts = store.status_counts().unwrap();
    assert_eq!(counts.records, counts.on_server, "every record confirmed");
    assert!(
        captured.len() >= kills / 4,
        "the harness captured something: {}",
        captured.len()
    );
    assert!(counts.records as usize >= captured.len());
    assert_eq!(
        server_count(&d, "service_log") as u64,
        counts.records,
        "each operation applied exactly once"
    );
    println!(
        "crash harness: {} returned captures survived {kills} kills",
        captured.len()
    );
}
