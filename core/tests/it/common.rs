//! Shared fixtures: a store in a temporary folder with a settable clock, a
//! grid with places, and a snapshot of everything stored.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use fieldgrid_core::*;

/// 2026-11-26 12:00 in China (04:00 UTC).
pub const NOW_MS: i64 = 1_795_665_600_000;

pub struct TestClock(pub AtomicI64);

impl Clock for TestClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Time moves on at once: a sync's backoff costs no real time, and the
    /// pauses it took show as the clock's advance.
    fn sleep(&self, duration: std::time::Duration) -> std::pin::Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.0.fetch_add(duration.as_millis() as i64, Ordering::SeqCst);
        Box::pin(std::future::ready(()))
    }
}

pub struct Fixture {
    pub dir: tempfile::TempDir,
    /// The store's key (the suite's: [`suite_key`], unless a test chose one).
    pub key: Option<StoreKey>,
    pub store: Store,
    pub clock: Arc<TestClock>,
    pub grid: Grid,
    pub compound: Place,
    pub building: Place,
    pub unit: Place,
    pub household: Household,
}

/// A tiny valid JPEG header followed by `seed` bytes: enough for type sniffing.
pub fn jpeg(seed: u8, len: usize) -> Vec<u8> {
    let mut v = vec![0xFF, 0xD8, 0xFF, 0xE0];
    v.extend((0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)));
    v
}

pub fn photo(seed: u8) -> NewPhoto {
    NewPhoto {
        source: PhotoSource::Bytes(jpeg(seed, 2048)),
        taken_at_ms: Some(NOW_MS - 60_000),
        location: Some(location()),
    }
}

pub fn location() -> validate::Location {
    validate::Location {
        latitude: 37.4563,
        longitude: 118.5031,
        accuracy_m: Some(6.5),
        crs: validate::CoordinateSystem::Wgs84,
    }
}

/// The key of the suite's stores: none, or a fixed one when
/// `FIELDGRID_TEST_KEYED=1` (scripts/test.sh runs the suite both ways, so
/// everything it checks holds on encrypted stores as on plain ones).
pub fn suite_key() -> Option<StoreKey> {
    std::env::var("FIELDGRID_TEST_KEYED")
        .is_ok_and(|v| v == "1")
        .then(|| StoreKey::from_bytes(&SUITE_KEY).unwrap())
}

const SUITE_KEY: [u8; 32] = [0x5a; 32];

/// A connection past the store, to the file at `path`, with the key of the
/// suite's stores when they are keyed.
pub fn raw_connection(path: &Path, keyed: bool) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    if keyed {
        let statements = format!(
            "PRAGMA key = \"x'{}'\"; PRAGMA cipher_hmac_algorithm = HMAC_SHA256; PRAGMA cipher_page_size = 8192;",
            hex::encode(SUITE_KEY)
        );
        conn.execute_batch(&statements).unwrap();
    }
    conn
}

pub fn open(path: &Path, key: Option<&StoreKey>, clock: &Arc<TestClock>) -> Result<Store> {
    Store::open_with(path, key, StoreOptions { clock: clock.clone() })
}

impl Fixture {
    /// A store with the suite's key (none, unless the suite runs keyed).
    pub fn new() -> Fixture {
        Fixture::with_key(suite_key().as_ref())
    }

    pub fn with_key(key: Option<&StoreKey>) -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let clock = Arc::new(TestClock(AtomicI64::new(NOW_MS)));
        let store = open(&dir.path().join("device.db"), key, &clock).unwrap();
        let grid = store.put_grid(&datagen::grid(1)).unwrap();
        let compound = store
            .create_place(&NewPlace {
                extra: Vec::new(),
                grid_id: grid.id.clone(),
                kind: PlaceKind::Compound,
                parent_id: None,
                name: "格林盛景小区".into(),
            })
            .unwrap();
        let building = store
            .create_place(&NewPlace {
                extra: Vec::new(),
                grid_id: grid.id.clone(),
                kind: PlaceKind::Building,
                parent_id: Some(compound.id.clone()),
                name: "3号楼".into(),
            })
            .unwrap();
        let unit = store
            .create_place(&NewPlace {
                extra: Vec::new(),
                grid_id: grid.id.clone(),
                kind: PlaceKind::Unit,
                parent_id: Some(building.id.clone()),
                name: "2单元".into(),
            })
            .unwrap();
        let household = store
            .create_household(&NewHousehold {
                extra: Vec::new(),
                grid_id: grid.id.clone(),
                unit_id: Some(unit.id.clone()),
                room: "301".into(),
                address: None,
                notes: String::new(),
            })
            .unwrap();
        Fixture {
            dir,
            key: key.cloned(),
            store,
            clock,
            grid,
            compound,
            building,
            unit,
            household,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().join("device.db")
    }

    /// A connection past the store to its file (a fixture with the suite's key
    /// or none only).
    pub fn raw(&self) -> rusqlite::Connection {
        assert!(
            self.key.is_none() || suite_key().is_some(),
            "raw connections know the suite's key only"
        );
        raw_connection(&self.path(), self.key.is_some())
    }

    /// Opens the fixture's file again, after `self.store` was dropped.
    pub fn reopen(path: &Path, clock: &Arc<TestClock>) -> Store {
        open(path, suite_key().as_ref(), clock).unwrap()
    }

    /// A valid resident of the fixture's household.
    pub fn resident(&self, name: &str, id_number: &str, sex: Sex) -> NewResident {
        NewResident {
            extra: Vec::new(),
            grid_id: self.grid.id.clone(),
            household_id: Some(self.household.id.clone()),
            name: name.into(),
            sex,
            id_number: Some(id_number.into()),
            birth_date: None,
            phone: Some("13812345678".into()),
            residence: ResidenceStatus::Registered,
            care_tags: vec![],
            notes: String::new(),
        }
    }

    pub fn incident(&self, category: &str) -> NewIncident {
        NewIncident {
            extra: Vec::new(),
            grid_id: self.grid.id.clone(),
            category: category.into(),
            title: String::new(),
            description: "楼道内发现马蜂窝，约拳头大小".into(),
            location: Some(location()),
            address: "格林盛景小区3号楼2单元".into(),
            occurred_at_ms: Some(NOW_MS - 3_600_000),
            involved_residents: vec![],
        }
    }

    /// Every row of every table, and the photo files, as text: two equal
    /// snapshots mean nothing was written in between.
    pub fn snapshot(&self) -> Vec<String> {
        snapshot_file(&self.raw(), &self.store)
    }
}

pub fn snapshot_file(conn: &rusqlite::Connection, store: &Store) -> Vec<String> {
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let mut stmt = conn.prepare(&format!("SELECT * FROM {t}")).unwrap();
        let n = stmt.column_count();
        let mut rows = stmt.query([]).unwrap();
        while let Some(r) = rows.next().unwrap() {
            let cells: Vec<String> = (0..n).map(|i| format!("{:?}", r.get_ref(i).unwrap())).collect();
            out.push(format!("{t}: {}", cells.join(" | ")));
        }
    }
    out.sort();
    if let Ok(entries) = std::fs::read_dir(store.photo_dir()) {
        let mut files: Vec<String> = entries
            .map(|e| format!("photo file {:?}", e.unwrap().file_name()))
            .collect();
        files.sort();
        out.extend(files);
    }
    out
}

/// A valid ID number for a birth date and sex, registered in Dongying.
pub fn id_for(date: &str, seq: &str) -> String {
    let mut s = format!("370502{date}{seq}");
    let c = validate::id_number::check_character(s.as_bytes()) as char;
    s.push(c);
    s
}
