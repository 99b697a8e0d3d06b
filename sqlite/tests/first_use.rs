//! SQLCipher's first use from many threads at once.
//!
//! SQLite marks itself initialised before it runs SQLCipher's own
//! initialisation (`SQLITE_EXTRA_INIT`), outside its mutex: a second thread's
//! `sqlite3_initialize` returns at once, and its `sqlite3_key` found SQLCipher
//! not yet initialised and failed with a bare `SQLITE_ERROR`. The race exists
//! only at a process's first database, so each try runs in a fresh process
//! (this test binary, started again as a child).
#![cfg(feature = "sqlcipher")]
#![allow(clippy::expect_used)] // a test: a failure is a panic

use std::process::Command;
use std::sync::{Arc, Barrier};

const CHILD: &str = "FIELDGRID_FIRST_USE_CHILD";
const THREADS: usize = 32;
/// Without the fix 15 processes in 1,000 failed on this machine (12 ms a
/// process): a pass by chance is about one in three million.
const PROCESSES: usize = 1000;

/// In a child: `THREADS` threads open and key a database at the same moment.
fn race() {
    let barrier = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|i| {
            let barrier = Arc::clone(&barrier);
            std::thread::spawn(move || {
                barrier.wait();
                let c = rusqlite::Connection::open_in_memory().expect("open");
                let key = [u8::try_from(i).expect("small"); 32];
                fieldgrid_sqlite::cipher::key_connection(&c, &key).expect("the first key of a process");
                c.execute_batch("CREATE TABLE t(x); INSERT INTO t VALUES (1);")
                    .expect("a keyed write");
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a thread that keyed its database");
    }
}

#[test]
fn the_first_keyed_databases_of_a_process_open_from_many_threads_at_once() {
    if std::env::var_os(CHILD).is_some() {
        race();
        return;
    }
    let exe = std::env::current_exe().expect("this test binary");
    let mut failed = 0;
    for _ in 0..PROCESSES {
        let status = Command::new(&exe)
            .args([
                "--exact",
                "the_first_keyed_databases_of_a_process_open_from_many_threads_at_once",
                "--test-threads=1",
                "--quiet",
            ])
            .env(CHILD, "1")
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .expect("a child process");
        if !status.success() {
            failed += 1;
        }
    }
    assert_eq!(failed, 0, "{failed} of {PROCESSES} processes failed a first keyed open");
}
