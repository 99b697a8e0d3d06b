//! `fieldgrid server` and `fieldgrid load` as an operator runs them: separate
//! processes on loopback.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn the_load_generator_drives_a_real_server_process() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("district");
    let data = data.to_str().unwrap();
    let fieldgrid = env!("CARGO_BIN_EXE_fieldgrid");
    let seeded = Command::new(fieldgrid)
        .args([
            "server",
            "--data",
            data,
            "seed-load",
            "--devices",
            "20",
            "--password",
            "load password",
        ])
        .output()
        .unwrap();
    assert!(seeded.status.success(), "{}", String::from_utf8_lossy(&seeded.stderr));

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let listen = format!("127.0.0.1:{port}");
    let mut server = Command::new(fieldgrid)
        .args(["server", "--data", data, "--listen", &listen])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&listen).is_err() {
        assert!(Instant::now() < deadline, "the server did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = Command::new(fieldgrid)
        .args([
            "load",
            "--server",
            &format!("http://{listen}"),
            "--devices",
            "20",
            "--operations",
            "50",
            "--password",
            "load password",
        ])
        .output()
        .unwrap();
    let _ = server.kill();
    let _ = server.wait();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        text.contains("20 phones x 50 operations: 20 of 20 phones completed, 1000 operations confirmed"),
        "{text}"
    );
    assert!(text.contains("errors 0"), "{text}");
    assert!(text.contains("p99"), "{text}");
}
