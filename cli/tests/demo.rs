//! The demo, run as a user runs it: the real binary, as a process.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use std::process::Command;

#[test]
fn the_demo_runs_the_whole_loop_and_reports_from_the_stores_and_the_server() {
    let out = Command::new(env!("CARGO_BIN_EXE_fieldgrid"))
        .args(["demo", "--residents", "120", "--seed", "7"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}\n{}", String::from_utf8_lossy(&out.stderr));
    for expected in [
        "[7] Summary, read from the phones' stores and the server",
        "network dropped: 24 of ",
        "waiting, nothing lost",
        "refused service_log: occurred_at_ms is in the future (in_future)",
        "1 in conflict",
        "on-time rate",
        "phone 1 visit round: ",
        "monthly visits to elderly residents living alone",
        "phone 1 recorded gas supply and smoke alarm (the district's own fields) of 3 households",
        "households hold their gas supply",
        "phone 3 gas safety inspection: 1 of 4 items failed, 1 incident raised (未安装可燃气体报警器)",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    // Personal data never reaches the output: phone numbers are masked.
    assert!(!text.contains("13905461234") && !text.contains("13705469876"));
    // The same seed gives the same district.
    let again = Command::new(env!("CARGO_BIN_EXE_fieldgrid"))
        .args(["demo", "--residents", "120", "--seed", "7"])
        .output()
        .unwrap();
    let summary = |t: &str| {
        t.lines()
            .filter(|l| l.contains(" / "))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    assert_eq!(summary(&String::from_utf8_lossy(&again.stdout)), summary(&text));
}

#[test]
fn every_command_explains_itself() {
    for args in [
        vec!["--help"],
        vec!["demo", "--help"],
        vec!["server", "--help"],
        vec!["server", "add-worker", "--help"],
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_fieldgrid"))
            .args(&args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(text.lines().count() > 3, "{args:?}: {text}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_fieldgrid"))
        .args(["demo", "--residents", "lots"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--residents"),
        "the error names what to fix"
    );
}
