//! Sync benchmark (issue "Sync"): the district server runs in a child process
//! (this same binary with `--serve`), so the device's peak memory is its own.
//!   (1) push 100,000 operations from one device store, against pushing the
//!       same operations with the bare transport (no store, no receipts);
//!   (2) pull 100,000 changes into a fresh device store, against fetching the
//!       same pages with the bare transport (no applying);
//!   (3) device peak RSS during each (each phone is its own process);
//!   (4) 1,000 simulated devices, each signing in, pushing 100 operations and
//!       pulling, all at once: errors and request latency percentiles.
//! Run: `cargo bench -p fieldgrid-tests --bench sync` (`-- --quick`: 10,000
//! operations and 100 devices).

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::panic
)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use fieldgrid_core::datagen::{self, Rng};
use fieldgrid_core::sync::{HttpOptions, HttpTransport, Phase, SyncOptions, Transport, block_on};
use fieldgrid_core::{Store, StoreKey};
use fieldgrid_protocol::{GridInfo, LoginRequest, Operation, PushRequest};
use fieldgrid_server::{Config, RunningServer, auth};

const PASSWORD: &str = "bench password";

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve") {
        serve(&args[i + 1], args[i + 2].parse().unwrap());
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--device-sync") {
        device_sync(&args[i + 1], &args[i + 2], &args[i + 3]);
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    let (ops, devices) = if quick { (10_000, 100) } else { (100_000, 1_000) };
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .arg("--serve")
        .arg(dir.path().join("server"))
        .arg(devices.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = format!("http://{}", line.trim().trim_start_matches("listening "));
    println!("FieldGrid sync benchmark: {ops} operations, {devices} devices; server in its own process at {url}");
    println!("{}", "-".repeat(100));
    push_and_pull(dir.path(), &url, ops);
    many_devices(&url, devices);
    let _ = child.kill();
    let _ = child.wait();
}

/// The child: a server with a bench grid and accounts, until killed.
fn serve(dir: &str, devices: usize) {
    let mut config = Config::new(dir);
    config.max_in_flight = 512;
    let server = RunningServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let admin = server.admin();
    let grid = |id: String| GridInfo {
        id: id.clone(),
        code: id.clone(),
        name: id,
        community: "汇泉社区".into(),
        sub_district: "黄河路街道".into(),
    };
    admin.add_grid(&grid("grid-bench".into())).unwrap();
    let cheap = auth::cheap_hasher();
    for user in ["bench-a", "bench-b"] {
        admin
            .add_worker(user, PASSWORD, &["grid-bench".to_owned()], &cheap)
            .unwrap();
    }
    for i in 0..devices {
        let g = format!("grid-{i}");
        admin.add_grid(&grid(g.clone())).unwrap();
        admin.add_worker(&format!("dev-{i}"), PASSWORD, &[g], &cheap).unwrap();
    }
    println!("listening {}", server.addr);
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

/// Peak resident memory of this process, in MiB.
fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn options() -> SyncOptions {
    SyncOptions {
        batch_operations: 500,
        page_limit: 2_000,
        ..SyncOptions::default()
    }
}

fn row(what: &str, ours: f64, base: f64, unit: &str, target: &str) {
    println!(
        "{what:<46} {ours:>10.0} {unit}   baseline {base:>10.0} {unit}   ratio {:>5.2}   target {target}",
        ours / base
    );
}

/// A phone in its own process: opens its store, syncs once, and prints
/// `push_ms pull_ms confirmed pulled push_rss_mib end_rss_mib`.
fn device_sync(db: &str, url: &str, user: &str) {
    let key = StoreKey::from_bytes(&[9; 32]).unwrap();
    let store = Store::open(db, Some(&key)).unwrap();
    let t = HttpTransport::new(url, &HttpOptions::default()).unwrap();
    store.login(&t, user, PASSWORD).unwrap();
    let start = Instant::now();
    let push_done = Mutex::new((Duration::ZERO, 0.0));
    let progress = |p: fieldgrid_core::sync::Progress| {
        if p.phase == Phase::Push {
            *push_done.lock().unwrap() = (start.elapsed(), peak_rss_mib());
        }
    };
    let report = store.sync(&t, &options(), &progress, &AtomicBool::new(false)).unwrap();
    let total = start.elapsed();
    let (push, push_rss) = *push_done.lock().unwrap();
    println!(
        "{} {} {} {} {:.1} {:.1}",
        push.as_millis(),
        (total - push).as_millis(),
        report.confirmed,
        report.pulled,
        push_rss,
        peak_rss_mib()
    );
}

/// Runs [`device_sync`] in a child process; returns its figures.
fn device_process(db: &std::path::Path, url: &str, user: &str) -> (f64, f64, u64, u64, f64, f64) {
    let out = Command::new(std::env::current_exe().unwrap())
        .arg("--device-sync")
        .arg(db)
        .arg(url)
        .arg(user)
        .stderr(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Vec<f64> = text.split_whitespace().map(|x| x.parse().unwrap()).collect();
    assert_eq!(v.len(), 6, "device process said: {text}");
    (v[0] / 1e3, v[1] / 1e3, v[2] as u64, v[3] as u64, v[4], v[5])
}

fn push_and_pull(dir: &std::path::Path, url: &str, n: usize) {
    let key = StoreKey::from_bytes(&[9; 32]).unwrap();
    let http = || HttpTransport::new(url, &HttpOptions::default()).unwrap();
    // A phone with n residents captured and not yet sent.
    let a_path = dir.join("a.db");
    {
        let a = Store::open(&a_path, Some(&key)).unwrap();
        a.login(&http(), "bench-a", PASSWORD).unwrap();
        a.import_residents(&datagen::residents(&mut Rng::new(1), "grid-bench", &[], n))
            .unwrap();
    }
    // (1) it pushes, in its own process.
    let (push, _, confirmed, _, push_rss, _) = device_process(&a_path, url, "bench-a");
    assert_eq!(confirmed as usize, n);
    // (2) a fresh phone pulls everything, in its own process.
    let (_, pull, _, pulled, _, pull_rss) = device_process(&dir.join("b.db"), url, "bench-b");
    assert_eq!(pulled as usize, n);

    // Baselines: the same exchanges through the bare transport.
    let ta = http();
    let token = block_on(ta.login(&LoginRequest {
        username: "bench-a".into(),
        password: PASSWORD.into(),
        device_id: "raw".into(),
    }))
    .unwrap()
    .unwrap()
    .token;
    let t = Instant::now();
    let (mut after, mut fetched) = (0, 0usize);
    loop {
        let page = block_on(ta.changes(&token, after, 2_000)).unwrap().unwrap();
        fetched += page.changes.len();
        after = page.next_after;
        if !page.more {
            break;
        }
    }
    let raw_pull = t.elapsed();
    // Last: it adds records.
    let raw_ops: Vec<Operation> = datagen::residents(&mut Rng::new(1), "grid-bench", &[], n)
        .into_iter()
        .map(|r| fieldgrid_cli::load::resident_op("grid-bench", r))
        .collect();
    let t = Instant::now();
    for chunk in raw_ops.chunks(500) {
        block_on(ta.push(
            &token,
            &PushRequest {
                device_id: "raw".into(),
                operations: chunk.to_vec(),
            },
        ))
        .unwrap()
        .unwrap();
    }
    let raw_push = t.elapsed();
    row(
        &format!("(1) push {n} operations, ops/s"),
        n as f64 / push,
        n as f64 / raw_push.as_secs_f64(),
        "/s",
        ">= 20,000/s",
    );
    println!("    device process peak RSS while pushing: {push_rss:.1} MiB (target <= 64 MiB)");
    row(
        &format!("(2) pull {pulled} changes, changes/s"),
        pulled as f64 / pull,
        fetched as f64 / raw_pull.as_secs_f64(),
        "/s",
        ">= 50,000/s",
    );
    println!("    device process peak RSS, whole run: {pull_rss:.1} MiB (target <= 64 MiB)");
}

/// (4) Many devices at once, through the `fieldgrid load` generator.
fn many_devices(url: &str, devices: usize) {
    let args = fieldgrid_cli::load::LoadArgs {
        server: url.to_owned(),
        devices,
        operations: 100,
        user: "dev-{i}".into(),
        password: PASSWORD.into(),
        grid: "grid-{i}".into(),
        deadline_secs: 300,
    };
    let r = fieldgrid_cli::load::run(&args).unwrap();
    println!(
        "(4) {devices} devices x (sign in, push 100, pull): {} of {devices} completed, {} requests ({} retried) in {:.1} s, errors {}, latency p50 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
        r.completed,
        r.requests,
        r.retries,
        r.elapsed.as_secs_f64(),
        r.errors.len(),
        r.p50.as_secs_f64() * 1e3,
        r.p99.as_secs_f64() * 1e3,
        r.max.as_secs_f64() * 1e3
    );
    if let Some(e) = r.errors.first() {
        println!("    first error: {e}");
    }
}
