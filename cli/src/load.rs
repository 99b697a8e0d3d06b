//! `fieldgrid load`: N simulated phones at once against a server, each
//! signing in, pushing M operations and pulling; throughput, latency
//! percentiles and errors. Requests stay on the address given (loopback in
//! tests and benchmarks); every loop is bounded.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use fieldgrid_core::datagen::{self, Rng};
use fieldgrid_core::sync::{HttpOptions, HttpTransport, Transport, TransportError};
use fieldgrid_protocol::{LoginRequest, OpKind, Operation, PushRequest};

/// Options of a load run.
#[derive(clap::Args, Debug, Clone)]
pub struct LoadArgs {
    /// Server URL.
    #[arg(long)]
    pub server: String,
    /// Simulated phones, all at once.
    #[arg(long, default_value_t = 100)]
    pub devices: usize,
    /// Operations each phone pushes (resident creates, in batches of 500).
    #[arg(long, default_value_t = 100)]
    pub operations: usize,
    /// Account of phone i: this template with `{i}` replaced (see
    /// `fieldgrid server seed-load`, or `worker-{i}` for `bulk-district`).
    #[arg(long, default_value = "load-{i}")]
    pub user: String,
    /// Password of every load account.
    #[arg(long, env = "FIELDGRID_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Grid of phone i: this template with `{i}` replaced.
    #[arg(long, default_value = "load-grid-{i}")]
    pub grid: String,
    /// How long a phone keeps trying (seconds): like a phone, each request
    /// is retried on a network error, a 5xx, a 408 or a 429 (after
    /// `Retry-After`), with exponential backoff and jitter, until then.
    #[arg(long, default_value_t = 300)]
    pub deadline_secs: u64,
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests that succeeded.
    pub requests: usize,
    /// Requests tried again (after a 429, a 5xx, a timeout or a dropped connection).
    pub retries: usize,
    /// Operations confirmed.
    pub operations: usize,
    /// Phones that signed in, pushed everything and pulled to the end.
    pub completed: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Latency percentiles of the requests that succeeded: p50, p99, max.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
    /// Phones that did not complete, as `phone i: step: error` (codes and
    /// statuses only, no personal data).
    pub errors: Vec<String>,
}

/// A resident create operation as a phone sends it.
pub fn resident_op(grid: &str, r: fieldgrid_core::NewResident) -> Operation {
    let mut patch = serde_json::Map::new();
    patch.insert("grid_id".into(), grid.into());
    patch.insert("name".into(), r.name.into());
    patch.insert("sex".into(), r.sex.as_str().into());
    patch.insert("id_number".into(), r.id_number.into());
    patch.insert("phone".into(), r.phone.into());
    patch.insert("residence".into(), r.residence.as_str().into());
    patch.insert(
        "care_tags".into(),
        r.care_tags
            .iter()
            .map(|t| serde_json::Value::from(t.as_str()))
            .collect::<Vec<_>>()
            .into(),
    );
    patch.insert("notes".into(), r.notes.into());
    Operation {
        op_id: fieldgrid_core::new_id(),
        entity: "resident".into(),
        entity_id: fieldgrid_core::new_id(),
        kind: OpKind::Create,
        patch,
        base_version: None,
        created_at_ms: 0,
    }
}

/// One phone's requests: each retried like a phone does (backoff with
/// jitter, `Retry-After` honoured) while the error is transient and the
/// deadline not passed. (The core's sync engine has the same policy inside
/// `Store::sync`; a simulated phone has no store, so it is restated here.)
struct Phone<'a> {
    deadline: Instant,
    rng: Rng,
    latencies: &'a Mutex<Vec<Duration>>,
    retries: &'a AtomicUsize,
}

impl Phone<'_> {
    fn call<T, F>(&mut self, mut f: impl FnMut() -> F) -> Result<T, TransportError>
    where
        F: Future<Output = Result<T, TransportError>>,
    {
        let base = Duration::from_millis(500);
        let max = Duration::from_secs(30);
        for attempt in 0u32.. {
            let t0 = Instant::now();
            // Each phone is a thread; its requests run on the core's shared runtime.
            let answer =
                fieldgrid_core::sync::block_on(f()).unwrap_or_else(|e| Err(TransportError::Offline(e.to_string())));
            match answer {
                Ok(v) => {
                    self.latencies.lock().map(|mut l| l.push(t0.elapsed())).ok();
                    return Ok(v);
                }
                Err(e) if e.is_transient() => {
                    let backoff = base.saturating_mul(1 << attempt.min(16)).min(max);
                    let jitter = Duration::from_millis(self.rng.below(backoff.as_millis() as u64 / 2 + 1));
                    let pause = match &e {
                        TransportError::Overloaded { retry_after: Some(d) } => (*d).max(backoff / 2) + jitter / 4,
                        _ => backoff / 2 + jitter,
                    };
                    if Instant::now() + pause > self.deadline {
                        return Err(e);
                    }
                    self.retries.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(pause);
                }
                Err(e) => return Err(e),
            }
        }
        unreachable!("the loop above returns")
    }
}

/// Runs the load.
pub fn run(args: &LoadArgs) -> Result<LoadReport, String> {
    HttpTransport::new(&args.server, &HttpOptions::default()).map_err(|e| e.to_string())?;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(args.devices * 4)));
    let retries = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let confirmed = Arc::new(AtomicUsize::new(0));
    let completed = Arc::new(AtomicUsize::new(0));
    let barrier = Arc::new(Barrier::new(args.devices.max(1)));
    let start = Instant::now();
    let deadline = start + Duration::from_secs(args.deadline_secs);
    let threads: Vec<_> = (0..args.devices)
        .map(|i| {
            let (args, latencies, retries, errors, barrier, confirmed, completed) = (
                args.clone(),
                latencies.clone(),
                retries.clone(),
                errors.clone(),
                barrier.clone(),
                confirmed.clone(),
                completed.clone(),
            );
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let fail = |step: &str, e: String| {
                        errors
                            .lock()
                            .map(|mut v| v.push(format!("phone {i}: {step}: {e}")))
                            .ok();
                    };
                    let Ok(t) = HttpTransport::new(&args.server, &HttpOptions::default()) else {
                        return;
                    };
                    let grid = args.grid.replace("{i}", &i.to_string());
                    let user = args.user.replace("{i}", &i.to_string());
                    let ops: Vec<Operation> = datagen::residents(&mut Rng::new(i as u64), &grid, &[], args.operations)
                        .into_iter()
                        .map(|r| resident_op(&grid, r))
                        .collect();
                    let mut phone = Phone {
                        deadline,
                        rng: Rng::new(0x10ad ^ i as u64),
                        latencies: &latencies,
                        retries: &retries,
                    };
                    barrier.wait();
                    let device_id = format!("load-device-{i}");
                    let login = LoginRequest {
                        username: user,
                        password: args.password.clone(),
                        device_id: device_id.clone(),
                    };
                    let token = match phone.call(|| t.login(&login)) {
                        Ok(r) => r.token,
                        Err(e) => return fail("sign-in", e.to_string()),
                    };
                    // A repeated push is answered from the stored receipts.
                    for chunk in ops.chunks(500) {
                        let req = PushRequest {
                            device_id: device_id.clone(),
                            operations: chunk.to_vec(),
                        };
                        match phone.call(|| t.push(&token, &req)) {
                            Ok(resp) => {
                                let applied = resp
                                    .receipts
                                    .iter()
                                    .filter(|r| matches!(r.outcome, fieldgrid_protocol::Outcome::Applied { .. }))
                                    .count();
                                confirmed.fetch_add(applied, Ordering::Relaxed);
                                if applied < chunk.len() {
                                    return fail(
                                        "push",
                                        format!("{} of {} operations refused", chunk.len() - applied, chunk.len()),
                                    );
                                }
                            }
                            Err(e) => return fail("push", e.to_string()),
                        }
                    }
                    // The pull resumes from its cursor after a failed page.
                    let mut after = 0;
                    for _ in 0..100_000 {
                        match phone.call(|| t.changes(&token, after, 500)) {
                            Ok(page) => {
                                after = page.next_after;
                                if !page.more {
                                    completed.fetch_add(1, Ordering::Relaxed);
                                    return;
                                }
                            }
                            Err(e) => return fail("pull", e.to_string()),
                        }
                    }
                    fail("pull", "no end of pages".into());
                })
                .map_err(|e| e.to_string())
        })
        .collect::<Result<_, _>>()?;
    for t in threads {
        let _ = t.join();
    }
    let elapsed = start.elapsed();
    let mut l = latencies.lock().map_err(|_| "poisoned")?.clone();
    l.sort_unstable();
    let pct = |p: f64| {
        l.get(((l.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    let mut errors = errors.lock().map_err(|_| "poisoned")?.clone();
    errors.sort();
    Ok(LoadReport {
        requests: l.len(),
        retries: retries.load(Ordering::Relaxed),
        operations: confirmed.load(Ordering::Relaxed),
        completed: completed.load(Ordering::Relaxed),
        elapsed,
        p50: pct(0.5),
        p99: pct(0.99),
        max: pct(1.0),
        errors,
    })
}
