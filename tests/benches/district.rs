//! District-scale server benchmark (issue "District-scale server"): the
//! centre's statistics and lists, a phone's first sync of a grid, and a
//! phone's pull while the centre works, on a district built by
//! `fieldgrid-server bulk-district` (973 grids, 570,000 residents, 3,000,000
//! incidents with their timelines), on SQLite or PostgreSQL. Every figure is
//! printed beside a same-run baseline.
//!
//! Run:
//!   cargo bench -p fieldgrid-tests --bench district -- --data DIR [--database URL]
//! builds the district in DIR (and URL) if it is empty, then measures;
//! `--quick` builds and measures a 20-grid slice (62,000 incidents);
//! `--only-coverage` stops after the statistics and visit coverage.

#![allow(
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::panic
)]

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fieldgrid_core::sync::{HttpOptions, HttpTransport, SyncOptions, Transport, block_on};
use fieldgrid_core::{Store, StoreKey};
use fieldgrid_protocol::{LoginRequest, Role};
use fieldgrid_server::admin::AdminSession;
use fieldgrid_server::bulk::{self, DistrictPlan};
use fieldgrid_server::service::Period;
use fieldgrid_server::{Config, RunningServer, auth};

const PASSWORD: &str = "bench password";

fn arg(args: &[String], name: &str) -> Option<String> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1).cloned())
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let scratch = tempfile::tempdir().unwrap();
    let data = arg(&args, "--data").map_or_else(|| scratch.path().join("district"), Into::into);
    let database = arg(&args, "--database");
    let (grids, residents, incidents) = if quick {
        (20, 11_720, 62_000)
    } else {
        (973, 570_000, 3_000_000)
    };
    let mut config = Config::new(&data);
    config.database_url = database.clone();
    config.max_in_flight = 1024;
    let location = config.location();

    // Build the district once (a later run reuses it).
    let session = AdminSession::open(&location).unwrap();
    if session
        .admin()
        .records_of("resident", Some("grid-0"))
        .unwrap()
        .is_empty()
    {
        println!("building the district: {grids} grids, {residents} residents, {incidents} incidents ...");
        bulk::accounts(&session.admin(), grids, PASSWORD, &auth::cheap_hasher()).unwrap();
        let plan = DistrictPlan {
            grids,
            residents,
            incidents,
            seed: 2026,
            now_ms: chrono_now(),
        };
        let r = session.block_on(bulk::build(session.store(), &plan)).unwrap();
        println!(
            "built in {:.0} s: {} residents, {} service logs, {} incidents, {} timeline events ({:.0} records/s)",
            r.seconds,
            r.residents,
            r.service_logs,
            r.incidents,
            r.events,
            (r.residents + r.service_logs + r.incidents + r.events) as f64 / r.seconds
        );
    }
    // District IT, for the console's account pages.
    if session.admin().account_id("it").unwrap().is_none() {
        session
            .admin()
            .add_account_with("it", PASSWORD, Role::Admin, &auth::cheap_hasher())
            .unwrap();
    }
    drop(session);

    let server = RunningServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let url = server.url();
    let engine = server.state.store.engine();
    println!("FieldGrid district benchmark on {engine}: {url}");
    println!("{}", "-".repeat(112));
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let token = |user: &str| -> String {
        let mut r = agent
            .post(format!("{url}/v1/session"))
            .send_json(serde_json::json!({"username": user, "password": PASSWORD, "device_id": "bench"}))
            .unwrap();
        r.body_mut().read_json::<serde_json::Value>().unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let centre = token("centre");
    let get = |token: &str, path: &str| -> (Duration, serde_json::Value) {
        let t = Instant::now();
        let mut r = agent
            .get(format!("{url}{path}"))
            .header("authorization", format!("Bearer {token}"))
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let body: serde_json::Value = r.body_mut().read_json().unwrap_or_default();
        (t.elapsed(), body)
    };
    let timed = |n: usize, f: &dyn Fn() -> Duration| -> (f64, f64) {
        let mut v: Vec<f64> = (0..n).map(|_| f().as_secs_f64() * 1e3).collect();
        v.sort_by(f64::total_cmp);
        (v[v.len() / 2], v[v.len() - 1])
    };
    // The floor of any request: an authenticated round trip that reads an
    // empty index range.
    let (floor, _) = timed(20, &|| get(&centre, "/v1/centre/incidents?grid=no-such-grid&limit=1").0);
    let (health, _) = timed(20, &|| {
        let t = Instant::now();
        agent.get(format!("{url}/v1/health")).call().unwrap();
        t.elapsed()
    });

    let (stats_p50, stats_max) = timed(5, &|| get(&centre, "/v1/centre/stats").0);
    let store = server.state.store.clone();
    let now = chrono_now();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (direct_p50, _) = timed(5, &|| {
        let t = Instant::now();
        rt.block_on(store.stats(&Period::default(), now)).unwrap();
        t.elapsed()
    });
    let (_, stats) = get(&centre, "/v1/centre/stats");
    let reported: u64 = stats["grids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["reported"].as_u64().unwrap())
        .sum();
    row(
        &format!("centre statistics over {reported} incidents, p50"),
        stats_p50,
        direct_p50,
        "ms",
        "the same query called in-process",
    );
    println!("    (slowest of 5: {stats_max:.0} ms)");
    // Visit coverage, district-wide, per rule: this period and the last.
    for (rule, at) in [
        ("elderly_alone_monthly_visit", None),
        ("elderly_alone_monthly_visit", Some(now - 31 * 86_400_000)),
        ("elderly_alone_weekly_call", None),
        ("care_quarterly_visit", None),
    ] {
        let day = at.map(fieldgrid_core::visits::china_date);
        let path = match day {
            Some(d) => format!("/v1/centre/coverage?rule={rule}&at={d}"),
            None => format!("/v1/centre/coverage?rule={rule}"),
        };
        let (p50, _) = timed(5, &|| get(&centre, &path).0);
        let (direct, _) = timed(5, &|| {
            let t = Instant::now();
            rt.block_on(store.coverage(rule, day, now)).unwrap();
            t.elapsed()
        });
        let (_, c) = get(&centre, &path);
        let n = |k: &str| c["district"][k].as_u64().unwrap_or(0);
        row(
            &format!(
                "coverage {rule}{}, p50",
                if at.is_some() { " (last month)" } else { "" }
            ),
            p50,
            direct,
            "ms",
            "the same query called in-process",
        );
        println!(
            "    {} residents covered in {} grids: {} on time, {} late, {} missed, {} pending",
            n("residents"),
            c["grids"].as_array().map_or(0, Vec::len),
            n("on_time"),
            n("late"),
            n("missed"),
            n("pending")
        );
    }
    if args.iter().any(|a| a == "--only-coverage") {
        return;
    }
    // One month's statistics (the console's default period).
    let month = fieldgrid_server::records::month_of(now - 45 * 86_400_000);
    let path = format!("/v1/centre/stats?from={month}&to={month}");
    let (month_p50, _) = timed(5, &|| get(&centre, &path).0);
    let period = Period::parse(Some(&month), Some(&month)).unwrap();
    let (month_direct, _) = timed(5, &|| {
        let t = Instant::now();
        rt.block_on(store.stats(&period, now)).unwrap();
        t.elapsed()
    });
    row(
        &format!("centre statistics of one month ({month}), p50"),
        month_p50,
        month_direct,
        "ms",
        "the same query called in-process",
    );
    let lists = [
        (
            "one grid's 20 newest incidents",
            "/v1/centre/incidents?grid=grid-7&limit=20",
        ),
        ("100 newest, whole district", "/v1/centre/incidents?limit=100"),
        (
            "100 overdue, by deadline",
            "/v1/centre/incidents?overdue=true&sort=deadline&limit=100",
        ),
        (
            "100 of one sub-district, dispatched",
            "/v1/centre/incidents?sub_district=胜园街道&status=dispatched&limit=100",
        ),
        (
            "100 of one category",
            "/v1/centre/incidents?category=gas_no_alarm&limit=100",
        ),
    ];
    for (what, path) in lists {
        let (p50, max) = timed(10, &|| get(&centre, path).0);
        row(
            &format!("{what}, p50 (max {max:.0} ms)"),
            p50,
            floor,
            "ms",
            "an authenticated empty list",
        );
    }
    // The next page of a deep list, by its cursor.
    let (_, first) = get(&centre, "/v1/centre/incidents?limit=100");
    let next = first["next"].as_str().unwrap().to_owned();
    let (p50, _) = timed(10, &|| {
        get(&centre, &format!("/v1/centre/incidents?limit=100&after={next}")).0
    });
    row(
        "the page after, by cursor, p50",
        p50,
        floor,
        "ms",
        "an authenticated empty list",
    );
    println!("    (health round trip: {health:.2} ms)");

    // The console's pages as a browser gets them: cookie session, HTML.
    let console = |user: &str| -> String {
        let no_redirects: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let r = no_redirects
            .post(format!("{url}/console/login"))
            .send_form([("username", user), ("password", PASSWORD)])
            .unwrap();
        let cookie = r.headers()["set-cookie"].to_str().unwrap();
        cookie.split(';').next().unwrap().to_owned()
    };
    let page = |cookie: &str, path: &str| -> Duration {
        let t = Instant::now();
        let mut r = agent
            .get(format!("{url}{path}"))
            .header("cookie", cookie)
            .call()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let _ = r.body_mut().read_to_string();
        t.elapsed()
    };
    let (centre_cookie, it_cookie) = (console("centre"), console("it"));
    let (console_floor, _) = timed(20, &|| page(&centre_cookie, "/console/incidents?grid=no-such-grid"));
    let (_, newest) = get(&centre, "/v1/centre/incidents?limit=1");
    let incident = newest["incidents"][0]["id"].as_str().unwrap().to_owned();
    let pages = [
        ("queue, first page", &centre_cookie, "/console/incidents".to_owned()),
        (
            "queue, sub-district + status + deadline order",
            &centre_cookie,
            "/console/incidents?sub_district=胜园街道&status=dispatched&sort=deadline".to_owned(),
        ),
        (
            "queue, overdue",
            &centre_cookie,
            "/console/incidents?overdue=1&sort=deadline".to_owned(),
        ),
        (
            "an incident with timeline and photos",
            &centre_cookie,
            format!("/console/incidents/{incident}"),
        ),
        (
            "statistics, 12 months by sub-district",
            &centre_cookie,
            "/console/stats".to_owned(),
        ),
        (
            "statistics, 2 years by grid (973 rows)",
            &centre_cookie,
            "/console/stats?from=2024-12&to=2026-12&by=grid".to_owned(),
        ),
        (
            "statistics CSV, 2 years by grid",
            &centre_cookie,
            "/console/stats.csv?from=2024-12&to=2026-12&by=grid".to_owned(),
        ),
        ("map, 1,000 newest incidents", &centre_cookie, "/console/map".to_owned()),
        ("map, overdue", &centre_cookie, "/console/map?overdue=1".to_owned()),
        ("conflicts", &centre_cookie, "/console/conflicts".to_owned()),
        ("accounts (district IT)", &it_cookie, "/console/accounts".to_owned()),
        ("audit log (district IT)", &it_cookie, "/console/audit".to_owned()),
    ];
    for (what, cookie, path) in &pages {
        let (p50, max) = timed(10, &|| page(cookie, path));
        row(
            &format!("console: {what}, p50 (max {max:.0} ms)"),
            p50,
            console_floor,
            "ms",
            "a console page that reads nothing",
        );
    }

    // A phone's first sync of a whole grid, into an encrypted store.
    let key = StoreKey::from_bytes(&[9; 32]).unwrap();
    let phone = Store::open(scratch.path().join("phone.db"), Some(&key)).unwrap();
    let http = HttpTransport::new(&url, &HttpOptions::default()).unwrap();
    phone.login(&http, "worker-3", PASSWORD).unwrap();
    let t = Instant::now();
    let report = phone
        .sync(&http, &sync_options(), &|_| {}, &AtomicBool::new(false))
        .unwrap();
    let first_sync = t.elapsed().as_secs_f64();
    let worker = block_on(http.login(&LoginRequest {
        username: "worker-3".into(),
        password: PASSWORD.into(),
        device_id: "raw".into(),
    }))
    .unwrap()
    .unwrap()
    .token;
    let t = Instant::now();
    let (mut after, mut fetched) = (0, 0usize);
    loop {
        let page = block_on(http.changes(&worker, after, 2_000)).unwrap().unwrap();
        fetched += page.changes.len();
        after = page.next_after;
        if !page.more {
            break;
        }
    }
    let raw = t.elapsed().as_secs_f64();
    row(
        &format!("first sync of a grid ({} changes), seconds", report.pulled),
        first_sync,
        raw,
        "s",
        &format!("fetching the same {fetched} changes, bare transport"),
    );

    // A phone's pull is not held up by the centre's heavy reads.
    let pull_latency = |n: usize| -> (f64, f64) {
        timed(n, &|| {
            let t = Instant::now();
            block_on(http.changes(&worker, 0, 500)).unwrap().unwrap();
            t.elapsed()
        })
    };
    let (idle_p50, idle_max) = pull_latency(30);
    let busy = Arc::new(AtomicBool::new(true));
    let stats_runs = Arc::new(Mutex::new(0usize));
    let centre_threads: Vec<_> = (0..2)
        .map(|_| {
            let (busy, runs, url, centre) = (busy.clone(), stats_runs.clone(), url.clone(), centre.clone());
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
                while busy.load(Ordering::SeqCst) {
                    agent
                        .get(format!("{url}/v1/centre/stats"))
                        .header("authorization", format!("Bearer {centre}"))
                        .call()
                        .unwrap();
                    *runs.lock().unwrap() += 1;
                }
            })
        })
        .collect();
    let (busy_p50, busy_max) = pull_latency(30);
    busy.store(false, Ordering::SeqCst);
    for t in centre_threads {
        t.join().unwrap();
    }
    row(
        "a phone's pull page while 2 statistics run, p50",
        busy_p50,
        idle_p50,
        "ms",
        "the same pull with the centre idle",
    );
    println!(
        "    (max {busy_max:.0} ms against {idle_max:.0} ms idle; {} statistics ran meanwhile)",
        stats_runs.lock().unwrap()
    );
    println!("server and bench process peak RSS: {:.0} MiB", peak_rss_mib());
}

fn sync_options() -> SyncOptions {
    SyncOptions {
        page_limit: 2_000,
        ..SyncOptions::default()
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn peak_rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

fn row(what: &str, ours: f64, base: f64, unit: &str, baseline: &str) {
    println!(
        "{what:<58} {ours:>9.2} {unit}   baseline {base:>8.2} {unit} ({baseline})   ratio {:>6.1}",
        ours / base.max(1e-9)
    );
}
