//! Fixtures of the end-to-end tests: the real district server on loopback
//! with its own SQLite data folder, devices with their own store files, and a
//! loopback proxy that can lose answers, cut requests and drop the network.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod proxy;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::Duration;

use fieldgrid_core::sync::{HttpOptions, HttpTransport, SyncOptions, SyncReport};
use fieldgrid_core::{Clock, Store, StoreKey, StoreOptions};
use fieldgrid_protocol::{GridInfo, Role};
use fieldgrid_server::{Config, RunningServer, auth};

/// 2026-11-26 12:00 China time.
pub const T0: i64 = 1_795_665_600_000;

/// A clock tests move by hand (shared by server and devices, or not).
#[derive(Clone)]
pub struct ManualClock(pub Arc<AtomicI64>);

impl ManualClock {
    /// A clock at `t`.
    pub fn at(t: i64) -> ManualClock {
        ManualClock(Arc::new(AtomicI64::new(t)))
    }
    /// Moves it forward.
    pub fn advance(&self, ms: i64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
    /// Now.
    pub fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.now()
    }
}

/// The password of every test account.
pub const PASSWORD: &str = "correct horse battery";

/// A district slice: two grids, workers, an operator, a department.
pub struct District {
    /// Temporary folder of everything.
    pub dir: tempfile::TempDir,
    /// The server.
    pub server: RunningServer,
    /// The server's clock.
    pub server_clock: ManualClock,
}

impl District {
    /// Starts a server with grids `grid-a` and `grid-b`; workers `wa1` and
    /// `wa2` on grid-a, `wb` on grid-b; operator `centre`; department `dept-gas`.
    pub fn new() -> District {
        let dir = tempfile::tempdir().unwrap();
        let server_clock = ManualClock::at(T0);
        let mut config = Config::new(dir.path().join("server"));
        let c = server_clock.clone();
        config.clock = Arc::new(move || c.now());
        let server = RunningServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        server.admin(|conn| {
            for (id, sub) in [("grid-a", "黄河路街道"), ("grid-b", "胜园街道")] {
                auth::add_grid(
                    conn,
                    &GridInfo {
                        id: id.into(),
                        code: format!("370502-{id}"),
                        name: format!("{id} 网格"),
                        community: "汇泉社区".into(),
                        sub_district: sub.into(),
                    },
                )
                .unwrap();
            }
            for (user, grid) in [("wa1", "grid-a"), ("wa2", "grid-a"), ("wb", "grid-b")] {
                let id = auth::add_account(conn, user, PASSWORD, Role::Worker).unwrap();
                auth::assign_grids(conn, &id, &[grid.to_owned()], T0).unwrap();
            }
            auth::add_account(conn, "centre", PASSWORD, Role::Operator).unwrap();
            auth::add_department(conn, "dept-gas", "燃气公司").unwrap();
        });
        District {
            dir,
            server,
            server_clock,
        }
    }

    /// A device signed in as `user`, talking to `url` (the server or a proxy).
    pub fn device(&self, name: &str, user: &str, url: &str) -> Device {
        let path = self.dir.path().join(format!("{name}.db"));
        let clock = ManualClock::at(T0);
        let key = StoreKey::from_bytes(&[7; 32]).unwrap();
        let store = Store::open_with(
            &path,
            Some(&key),
            StoreOptions {
                clock: Arc::new(clock.clone()),
            },
        )
        .unwrap();
        let transport = HttpTransport::new(
            url,
            &HttpOptions {
                timeout: Duration::from_secs(5),
                pinned_ca_pem: None,
            },
        )
        .unwrap();
        store.login(&transport, user, PASSWORD).unwrap();
        Device {
            store,
            transport,
            path,
            clock,
        }
    }
}

impl Default for District {
    fn default() -> Self {
        District::new()
    }
}

/// A phone: its store and its way to the server.
pub struct Device {
    /// The store.
    pub store: Store,
    /// The transport.
    pub transport: HttpTransport,
    /// The store file.
    pub path: PathBuf,
    /// The phone's clock.
    pub clock: ManualClock,
}

/// Sync options for tests: quick retries.
pub fn quick() -> SyncOptions {
    SyncOptions {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_millis(100),
        ..SyncOptions::default()
    }
}

impl Device {
    /// One sync with quick retries and no progress sink.
    pub fn sync(&self) -> fieldgrid_core::Result<SyncReport> {
        self.sync_with(&quick())
    }

    /// One sync with `options`.
    pub fn sync_with(&self, options: &SyncOptions) -> fieldgrid_core::Result<SyncReport> {
        self.store
            .sync(&self.transport, options, &|_| {}, &AtomicBool::new(false))
    }
}

/// Everything logged in this test process, at the most verbose level, from
/// the first call on (devices, server and libraries alike).
pub fn captured_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buffer = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = buffer.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || LogWriter(sink.clone()))
            .finish();
        // Also the `log` records of libraries (HTTP client and server, TLS).
        let _ = tracing_subscriber::util::SubscriberInitExt::try_init(subscriber);
        buffer
    })
    .clone()
}

struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().map(|mut b| b.extend_from_slice(buf)).ok();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
