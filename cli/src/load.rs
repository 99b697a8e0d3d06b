//! `fieldgrid load`: N simulated phones at once against a server, each
//! signing in, pushing M operations and pulling; throughput, latency
//! percentiles and errors. Requests stay on the address given (loopback in
//! tests and benchmarks); every loop is bounded.

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
    /// Account of phone i: this template with `{i}` replaced (see `fieldgrid server seed-load`).
    #[arg(long, default_value = "load-{i}")]
    pub user: String,
    /// Password of every load account.
    #[arg(long, env = "FIELDGRID_PASSWORD", hide_env_values = true)]
    pub password: String,
    /// Grid of phone i: this template with `{i}` replaced.
    #[arg(long, default_value = "load-grid-{i}")]
    pub grid: String,
}

/// What a load run measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Requests that succeeded.
    pub requests: usize,
    /// Operations confirmed.
    pub operations: usize,
    /// Wall time.
    pub elapsed: Duration,
    /// Latency percentiles: p50, p99, max.
    pub p50: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Slowest.
    pub max: Duration,
    /// Errors, as text (no personal data: codes and statuses only).
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

/// Runs the load.
pub fn run(args: &LoadArgs) -> Result<LoadReport, String> {
    HttpTransport::new(&args.server, &HttpOptions::default()).map_err(|e| e.to_string())?;
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(args.devices * 4)));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let confirmed = Arc::new(Mutex::new(0usize));
    let barrier = Arc::new(Barrier::new(args.devices.max(1)));
    let start = Instant::now();
    let threads: Vec<_> = (0..args.devices)
        .map(|i| {
            let (args, latencies, errors, barrier, confirmed) = (
                args.clone(),
                latencies.clone(),
                errors.clone(),
                barrier.clone(),
                confirmed.clone(),
            );
            std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let Ok(t) = HttpTransport::new(&args.server, &HttpOptions::default()) else {
                        return;
                    };
                    let grid = args.grid.replace("{i}", &i.to_string());
                    let user = args.user.replace("{i}", &i.to_string());
                    let ops: Vec<Operation> = datagen::residents(&mut Rng::new(i as u64), &grid, &[], args.operations)
                        .into_iter()
                        .map(|r| resident_op(&grid, r))
                        .collect();
                    barrier.wait();
                    // Each call is retried on 429 after Retry-After, as phones do; 20 tries at most.
                    let timed = |f: &mut dyn FnMut() -> Result<(), TransportError>| -> bool {
                        for _ in 0..20 {
                            let t0 = Instant::now();
                            match f() {
                                Ok(()) => {
                                    latencies.lock().map(|mut l| l.push(t0.elapsed())).ok();
                                    return true;
                                }
                                Err(TransportError::Overloaded { retry_after }) => {
                                    std::thread::sleep(retry_after.unwrap_or(Duration::from_millis(200)));
                                }
                                Err(e) => {
                                    errors.lock().map(|mut v| v.push(e.to_string())).ok();
                                    return false;
                                }
                            }
                        }
                        errors.lock().map(|mut v| v.push("gave up after 20 tries".into())).ok();
                        false
                    };
                    let mut token = String::new();
                    let device_id = format!("load-device-{i}");
                    if !timed(&mut || {
                        token = t
                            .login(&LoginRequest {
                                username: user.clone(),
                                password: args.password.clone(),
                                device_id: device_id.clone(),
                            })?
                            .token;
                        Ok(())
                    }) {
                        return;
                    }
                    for chunk in ops.chunks(500) {
                        let req = PushRequest {
                            device_id: device_id.clone(),
                            operations: chunk.to_vec(),
                        };
                        if timed(&mut || t.push(&token, &req).map(drop)) {
                            confirmed.lock().map(|mut c| *c += chunk.len()).ok();
                        }
                    }
                    timed(&mut || {
                        let mut after = 0;
                        for _ in 0..10_000 {
                            let page = t.changes(&token, after, 500)?;
                            after = page.next_after;
                            if !page.more {
                                break;
                            }
                        }
                        Ok(())
                    });
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
    Ok(LoadReport {
        requests: l.len(),
        operations: *confirmed.lock().map_err(|_| "poisoned")?,
        elapsed,
        p50: pct(0.5),
        p99: pct(0.99),
        max: pct(1.0),
        errors: errors.lock().map_err(|_| "poisoned")?.clone(),
    })
}
