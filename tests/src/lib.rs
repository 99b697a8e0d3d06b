//! Fixtures of the end-to-end tests: the real district server on loopback
//! with its own SQLite data folder, devices with their own store files, and a
//! loopback proxy that can lose answers, cut requests and drop the network.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod proxy;

use std::collections::{BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
    /// The PostgreSQL database of this district, when the suite runs on PostgreSQL.
    pub database: Option<String>,
}

impl District {
    /// Starts a server with grids `grid-a` and `grid-b`; workers `wa1` and
    /// `wa2` on grid-a, `wb` on grid-b; operator `centre`; department `dept-gas`.
    pub fn new() -> District {
        District::with_config(|_| {})
    }

    /// [`District::new`] with server settings changed by `change`.
    pub fn with_config(change: impl FnOnce(&mut Config)) -> District {
        // The whole suite logs at the most verbose level; see `Drop`.
        captured_logs();
        LIVE_DISTRICTS.fetch_add(1, Ordering::SeqCst);
        let dir = tempfile::tempdir().unwrap();
        let server_clock = ManualClock::at(T0);
        let mut config = Config::new(dir.path().join("server"));
        let c = server_clock.clone();
        config.clock = Arc::new(move || c.now());
        config.database_url = test_database();
        change(&mut config);
        let database = config.database_url.clone();
        let server = RunningServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
        let admin = server.admin();
        for (id, sub) in [("grid-a", "黄河路街道"), ("grid-b", "胜园街道")] {
            admin
                .add_grid(&GridInfo {
                    id: id.into(),
                    code: format!("370502-{id}"),
                    name: format!("{id} 网格"),
                    community: "汇泉社区".into(),
                    sub_district: sub.into(),
                })
                .unwrap();
        }
        // Cheap hashing: the suite signs in thousands of times.
        let cheap = auth::cheap_hasher();
        for (user, grid) in [("wa1", "grid-a"), ("wa2", "grid-a"), ("wb", "grid-b")] {
            let id = admin.add_account_with(user, PASSWORD, Role::Worker, &cheap).unwrap();
            admin.assign_grids(&id, &[grid.to_owned()], T0).unwrap();
        }
        admin
            .add_account_with("centre", PASSWORD, Role::Operator, &cheap)
            .unwrap();
        admin.add_department("dept-gas", "燃气公司").unwrap();
        District {
            dir,
            server,
            server_clock,
            database,
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

impl Drop for District {
    /// Registers the personal data of every resident the server holds, and,
    /// when this was the last district running in the process, checks that
    /// none of the personal data registered so far appears in anything logged
    /// so far. So every end-to-end test is covered, whatever the order they run in.
    fn drop(&mut self) {
        let residents = self.server.admin().records_of("resident", None).unwrap_or_default();
        personal(residents.iter().flat_map(|r| {
            ["name", "id_number", "phone"]
                .into_iter()
                .filter_map(|f| r.fields.get(f).and_then(|v| v.as_str()))
        }));
        if let (Some(server), Some(url)) = (test_postgres(), &self.database)
            && let Some(name) = url.rsplit('/').next()
        {
            postgres_admin(&server, &format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"));
        }
        if LIVE_DISTRICTS.fetch_sub(1, Ordering::SeqCst) == 1 && !std::thread::panicking() {
            let scan = scan_logs();
            assert_eq!(
                scan.found, 0,
                "the logs of this test process show {} of the {} personal values the tests used",
                scan.found, scan.values
            );
        }
    }
}

static LIVE_DISTRICTS: AtomicUsize = AtomicUsize::new(0);

/// The PostgreSQL server the suite runs against when
/// `FIELDGRID_TEST_POSTGRES` names one (`postgres://root@127.0.0.1:5432`),
/// else none (SQLite in the district's folder).
pub fn test_postgres() -> Option<String> {
    std::env::var("FIELDGRID_TEST_POSTGRES").ok().filter(|v| !v.is_empty())
}

/// A fresh PostgreSQL database for one district (dropped with it), when
/// the suite runs on PostgreSQL.
pub fn test_database() -> Option<String> {
    let server = test_postgres()?;
    let name = format!("fieldgrid_test_{}", uuid_simple());
    postgres_admin(&server, &format!("CREATE DATABASE {name}"));
    Some(format!("{}/{name}", server.trim_end_matches('/')))
}

fn uuid_simple() -> String {
    fieldgrid_core::new_id().replace('-', "")
}

/// Runs one statement on the PostgreSQL server's `postgres` database.
pub fn postgres_admin(server: &str, sql: &str) {
    postgres_execute(&format!("{}/postgres", server.trim_end_matches('/')), sql);
}

/// Runs `sql` (any number of statements) in the database at `url`.
pub fn postgres_execute(url: &str, sql: &str) {
    with_postgres(url, |client| async move { client.batch_execute(sql).await.unwrap() });
}

/// Runs `f` with a client of the database at `url`, on a runtime of its own,
/// and closes the connection after it.
pub fn with_postgres<T, F>(url: &str, f: impl FnOnce(std::sync::Arc<tokio_postgres::Client>) -> F) -> T
where
    F: std::future::Future<Output = T>,
{
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await.unwrap();
        let task = tokio::spawn(conn);
        let client = std::sync::Arc::new(client);
        let out = f(client.clone()).await;
        drop(client);
        let _ = task.await;
        out
    })
}
static PERSONAL: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Marks values as personal data (names, ID numbers, phones, notes): the log
/// scan fails if one appears in anything logged. Values under two characters
/// are ignored.
pub fn personal<'a>(values: impl IntoIterator<Item = &'a str>) {
    let mut set = PERSONAL.lock().unwrap_or_else(PoisonError::into_inner);
    for v in values {
        let v = v.trim();
        if v.chars().count() >= 2 {
            set.insert(v.to_owned());
        }
    }
}

/// What a log scan saw.
#[derive(Clone, Copy, Debug)]
pub struct LogScan {
    /// Bytes of log scanned.
    pub bytes: usize,
    /// Personal values looked for.
    pub values: usize,
    /// Values found (the values themselves are never printed).
    pub found: usize,
}

/// Looks for every registered personal value in everything this process logged.
pub fn scan_logs() -> LogScan {
    let values = PERSONAL.lock().unwrap_or_else(PoisonError::into_inner).clone();
    let logs = captured_logs();
    let text = logs.lock().unwrap_or_else(PoisonError::into_inner);
    let text = String::from_utf8_lossy(&text);
    LogScan {
        bytes: text.len(),
        values: values.len(),
        found: find_values(&text, &values),
    }
}

/// How many of `values` occur in `text`, in one pass: the text is cut into
/// runs of the characters personal values are made of (CJK ideographs; digits,
/// `X` and `-`), and each run's windows of the values' lengths are looked up.
/// Values of other characters are looked for directly.
pub fn find_values(text: &str, values: &BTreeSet<String>) -> usize {
    fn class(c: char) -> u8 {
        if ('\u{3400}'..='\u{9FFF}').contains(&c) {
            1
        } else if c.is_ascii_digit() || c == 'X' || c == 'x' || c == '-' {
            2
        } else {
            0
        }
    }
    let (runs_of, others): (Vec<&String>, Vec<&String>) = values.iter().partition(|v| {
        let mut classes = v.chars().map(class);
        let first = classes.next().unwrap_or(0);
        first != 0 && classes.all(|c| c == first)
    });
    let set: HashSet<&str> = runs_of.iter().map(|v| v.as_str()).collect();
    let lengths: BTreeSet<usize> = runs_of.iter().map(|v| v.chars().count()).collect();
    let mut found: HashSet<&str> = others
        .iter()
        .filter(|v| text.contains(v.as_str()))
        .map(|v| v.as_str())
        .collect();
    let mut run: Vec<char> = Vec::new();
    let mut window = String::new();
    let mut kind = 0;
    for c in text.chars().chain(std::iter::once('\n')) {
        let k = class(c);
        if k != 0 && k == kind {
            run.push(c);
            continue;
        }
        for &len in lengths.iter().take_while(|&&l| l <= run.len()) {
            for start in 0..=run.len() - len {
                window.clear();
                window.extend(&run[start..start + len]);
                if let Some(v) = set.get(window.as_str()) {
                    found.insert(v);
                }
            }
        }
        run.clear();
        kind = k;
        if k != 0 {
            run.push(c);
        }
    }
    found.len()
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
        // The server's own filter (its PostgreSQL driver capped at INFO),
        // everything else at TRACE.
        let subscriber = tracing_subscriber::layer::SubscriberExt::with(
            tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || LogWriter(sink.clone()))
                .finish(),
            fieldgrid_server::log_filter(tracing::Level::TRACE),
        );
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scan_finds_values_inside_longer_runs_and_only_them() {
        let values: BTreeSet<String> = ["张伟", "370502198001010113", "13912340987", "0546-7654321", "a@b.c"]
            .into_iter()
            .map(String::from)
            .collect();
        assert_eq!(
            find_values("sync finished ops=12 grid=grid-a 张三 13912340986", &values),
            0
        );
        assert_eq!(find_values("name=张伟民 id=370502198001010113X", &values), 2);
        assert_eq!(find_values("tel:0546-7654321, 913912340987; a@b.c", &values), 3);
    }
}
