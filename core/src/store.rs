//! The on-device store: opening (keys, pragmas, migrations), the one writer
//! and the reader connection, the clock, and small shared tables (meta,
//! grids, catalogue). Capture and queries live in their own modules as further
//! `impl Store` blocks.

use std::fmt;
use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use rusqlite::{Connection, ErrorCode, OpenFlags, OptionalExtension, Transaction, TransactionBehavior, params};
use zeroize::Zeroizing;

use crate::catalogue::Catalogue;
use crate::db::schema;
use crate::entity::{self, Entity};
use crate::error::{Code, Error, Result};
use crate::model::Grid;
use crate::validate::{self, limits};

/// A 32-byte database key. The app generates it once at random and keeps it
/// in the platform keystore; the core never stores it. Zeroed on drop.
#[derive(Clone)]
pub struct StoreKey(Zeroizing<[u8; 32]>);

impl StoreKey {
    /// A key from exactly 32 bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<StoreKey> {
        let arr: [u8; 32] = bytes.try_into().map_err(|_| Error::invalid("key", Code::BadFormat))?;
        Ok(StoreKey(Zeroizing::new(arr)))
    }

    /// The keys of the photo files, derived from the store key so that the
    /// database key itself never encrypts anything else.
    fn photo_keys(&self) -> PhotoKeys {
        use sha2::{Digest, Sha256};
        let mut v2 = Zeroizing::new([0u8; 32]);
        // HKDF-SHA256 (RFC 5869) with the store key as input keying material.
        // Expanding 32 bytes cannot fail (the limit is 255 blocks).
        let expanded =
            hkdf::Hkdf::<Sha256>::new(None, self.0.as_slice()).expand(b"fieldgrid photo files v2", &mut v2[..]);
        debug_assert!(expanded.is_ok());
        // Files written before version 2: SHA-256 of a label and the key.
        let mut h = Sha256::new();
        h.update(b"fieldgrid photo files v1");
        h.update(self.0.as_slice());
        let v1 = Zeroizing::new(h.finalize().into());
        PhotoKeys { v1, v2 }
    }

    /// Applies the key and the cipher settings to a fresh connection. The
    /// key goes through `sqlite3_key` (fieldgrid-sqlite's cipher.rs), never through SQL text.
    /// A raw key skips SQLCipher's PBKDF2 over a passphrase: the key is
    /// already random. Pages are authenticated with HMAC-SHA256 instead of
    /// SQLCipher 4's default SHA-512: as strong here, and several times faster
    /// on phones, whose ARMv8 crypto extensions accelerate SHA-256 but
    /// (mostly) not SHA-512. Pages are 8 KiB: SQLCipher's per-page work (IV,
    /// HMAC) halves against 4 KiB, which is what lets a 100,000-resident
    /// import pass 50,000 rows/s here, while a single capture still writes
    /// little (docs/PERFORMANCE.md has both figures). Both are part of the
    /// file format: never change them for existing stores
    /// (sqlite/tests/fixtures/sqlcipher4-fieldgrid.db, written by stock
    /// SQLCipher, holds them).
    fn apply(&self, conn: &Connection) -> Result<()> {
        crate::db::cipher::key_connection(conn, &self.0)?;
        conn.execute_batch("PRAGMA cipher_hmac_algorithm = HMAC_SHA256; PRAGMA cipher_page_size = 8192;")?;
        Ok(())
    }
}

/// The keys of a keyed store's photo files.
struct PhotoKeys {
    /// `FGP1` files: no associated data.
    v1: Zeroizing<[u8; 32]>,
    /// `FGP2` files: the photo's SHA-256 as associated data, so a file
    /// moved to another photo's name does not open.
    v2: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

/// Source of the current time, and of the sync's pauses between retries.
/// Tests and the simulator substitute their own (a test clock's `sleep` can
/// move its time on at once, so backoff runs in microseconds).
pub trait Clock: Send + Sync {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> i64;

    /// Waits `duration` without holding a thread (the sync's backoff calls
    /// it in slices of at most 20 ms, checking for a cancel between them).
    /// Runs on tokio's timer unless a test clock says otherwise.
    fn sleep(&self, duration: std::time::Duration) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// The device clock.
#[derive(Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        chrono::Utc::now().timestamp_millis()
    }
}

/// What one committed write changed, for screens that follow the data: the
/// kinds of record and their grids, never a record's content. Reported after
/// each capture and each applied pull page (one per transaction).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DataChange {
    /// Kinds of record written, inserted or removed.
    pub entities: Vec<Entity>,
    /// Grids of the records changed that are still on the phone.
    pub grids: Vec<String>,
    /// Some changed record's grid is unknown (it was removed, or arrived
    /// before what gives it one): treat every grid as changed.
    pub any_grid: bool,
}

/// Told of every [`DataChange`], on the thread that wrote, after the commit.
/// Keep it quick (post to the UI) and never block on the store in it.
pub trait ChangeListener: Send + Sync {
    /// One transaction's changes.
    fn changed(&self, change: &DataChange);
}

/// Options for [`Store::open_with`].
#[derive(Clone)]
pub struct StoreOptions {
    /// The clock used for time stamps and "not in the future" checks.
    pub clock: Arc<dyn Clock>,
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            clock: Arc::new(SystemClock),
        }
    }
}

/// An open FieldGrid store: one SQLite file (encrypted when keyed) and a
/// folder of photos beside it.
///
/// `Store` is `Send + Sync`: share it across threads. Every call blocks until
/// its work is done; writes are serialised on one connection, reads use a
/// second one and are not blocked by writes (WAL).
pub struct Store {
    writer: Mutex<Connection>,
    reader: Mutex<Connection>,
    path: PathBuf,
    photo_dir: PathBuf,
    clock: Arc<dyn Clock>,
    catalogue: RwLock<Arc<Catalogue>>,
    /// Keys of the photo files when the store is keyed (derived from its key).
    photo_keys: Option<PhotoKeys>,
    /// Rows of record tables the writer's open transaction touched (its
    /// update hook), and who is told once it commits.
    touched: Arc<Mutex<Vec<(Entity, i64)>>>,
    listening: Arc<AtomicBool>,
    listener: RwLock<Option<Arc<dyn ChangeListener>>>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
const PHOTO_MAGIC_V1: &[u8; 4] = b"FGP1";
const PHOTO_MAGIC_V2: &[u8; 4] = b"FGP2";

impl Store {
    /// Opens (or creates) the store at `path`, encrypted with `key` if given.
    ///
    /// A wrong key, a file that is not a database, or a database written by a
    /// newer version returns a typed error and leaves the file as it was.
    pub fn open(path: impl AsRef<Path>, key: Option<&StoreKey>) -> Result<Store> {
        Store::open_with(path, key, StoreOptions::default())
    }

    /// [`Store::open`] with options.
    pub fn open_with(path: impl AsRef<Path>, key: Option<&StoreKey>, options: StoreOptions) -> Result<Store> {
        // SQLCipher (C, linked after this crate) calls the crypto provider by
        // name; this reference keeps it in every binary.
        std::hint::black_box(crate::db::cipher::linked());
        let path = path.as_ref().to_path_buf();
        let plain_header = match fs::File::open(&path) {
            Ok(mut f) => {
                let mut head = [0u8; 16];
                match f.read_exact(&mut head) {
                    Ok(()) => Some(&head == SQLITE_HEADER),
                    Err(_) if f.metadata()?.len() == 0 => None,
                    Err(_) => Some(false),
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e.into()),
        };
        match (plain_header, key) {
            (Some(true), Some(_)) => return Err(Error::NotEncrypted),
            (Some(false), None) => return Err(Error::NotADatabase),
            _ => {}
        }

        let mut writer = connect(&path, key)?;
        // Refuse a newer schema before anything (even WAL mode) touches the file.
        let version: i64 = writer.query_row("PRAGMA user_version", [], |r| r.get(0))?;
        if version > schema::LATEST {
            return Err(Error::NewerSchema {
                found: version,
                supported: schema::LATEST,
            });
        }
        let mode: String = writer.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Internal(format!("journal mode {mode} instead of wal")));
        }
        // Captures are durable when the call returns (SYNC.md invariant 1).
        writer.pragma_update(None, "synchronous", "FULL")?;
        schema::migrate(&mut writer, schema::MIGRATIONS)?;

        let touched: Arc<Mutex<Vec<(Entity, i64)>>> = Arc::default();
        let listening = Arc::new(AtomicBool::new(false));
        let (hook, on) = (touched.clone(), listening.clone());
        writer.update_hook(Some(
            move |_: rusqlite::hooks::Action, _: &str, table: &str, rowid: i64| {
                if !on.load(Ordering::Relaxed) {
                    return; // nobody to tell: nothing kept
                }
                if let Some(kind) = entity::of_table(table) {
                    hook.lock().unwrap_or_else(PoisonError::into_inner).push((kind, rowid));
                }
            },
        ))?;

        let reader = connect(&path, key)?;
        reader.pragma_update(None, "query_only", true)?;

        let photo_dir = photo_dir_for(&path);
        let store = Store {
            writer: Mutex::new(writer),
            reader: Mutex::new(reader),
            path,
            photo_dir,
            clock: options.clock,
            catalogue: RwLock::new(Arc::new(Catalogue::builtin())),
            photo_keys: key.map(StoreKey::photo_keys),
            touched,
            listening,
            listener: RwLock::new(None),
        };
        store.load_catalogue()?;
        store.collect_orphan_photos()?;
        tracing::debug!(schema = schema::LATEST, keyed = key.is_some(), "store opened");
        Ok(store)
    }

    /// Moves a store that cannot be opened (corrupt, or its key is lost) out
    /// of the way, with its WAL and photo folder, so the app can start afresh
    /// without destroying what may be the only copy of a day's work. Returns
    /// the new path of the database file. Nothing is deleted.
    pub fn move_aside(path: impl AsRef<Path>, now_ms: i64) -> Result<PathBuf> {
        let path = path.as_ref();
        let target = with_suffix(path, &format!("unreadable-{now_ms}"));
        fs::rename(path, &target)?;
        for extra in ["-wal", "-shm"] {
            let from = with_raw_suffix(path, extra);
            if from.exists() {
                fs::rename(&from, with_raw_suffix(&target, extra))?;
            }
        }
        let photos = photo_dir_for(path);
        if photos.exists() {
            fs::rename(&photos, photo_dir_for(&target))?;
        }
        tracing::warn!("store moved aside");
        Ok(target)
    }

    /// Removes the store for good: the database, its WAL, its photos and its
    /// sync state (for a worker leaving, or a phone handed on). Refused with
    /// [`Error::Unsynced`] while operations wait for the server, unless
    /// `force`: the worker must be told what would be lost.
    pub fn wipe(self, force: bool) -> Result<()> {
        let counts = self.outbox_counts()?;
        let waiting = counts.pending + counts.sending;
        if waiting > 0 && !force {
            return Err(Error::Unsynced { operations: waiting });
        }
        let Store {
            writer,
            reader,
            path,
            photo_dir,
            ..
        } = self;
        drop(writer);
        drop(reader);
        for file in [
            path.clone(),
            with_raw_suffix(&path, "-wal"),
            with_raw_suffix(&path, "-shm"),
        ] {
            match fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e.into()),
                _ => {}
            }
        }
        if photo_dir.exists() {
            fs::remove_dir_all(&photo_dir)?;
        }
        tracing::warn!(forced = force && waiting > 0, "store wiped");
        Ok(())
    }

    /// Bytes as they go to a photo file: AES-256-GCM sealed when the store is
    /// keyed (`FGP2`, a random nonce, the ciphertext and tag; the photo's
    /// SHA-256 as associated data), as they are otherwise.
    pub(crate) fn seal_photo(&self, plain: &[u8], sha256: &str) -> Result<Vec<u8>> {
        use aes_gcm::aead::{Aead, Payload};
        use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
        let Some(keys) = &self.photo_keys else {
            return Ok(plain.to_vec());
        };
        let aad = hex::decode(sha256).map_err(|_| Error::Internal("photo name is not a SHA-256".into()))?;
        let cipher = Aes256Gcm::new_from_slice(&keys.v2[..]).map_err(|_| Error::Internal("photo key".into()))?;
        let mut nonce = [0u8; 12];
        getrandom::fill(&mut nonce).map_err(|e| Error::Internal(format!("random: {e}")))?;
        let sealed = cipher
            .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad: &aad })
            .map_err(|_| Error::Internal("photo encryption failed".into()))?;
        let mut out = Vec::with_capacity(16 + sealed.len());
        out.extend_from_slice(PHOTO_MAGIC_V2);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// The plain bytes of the photo file named `sha256`, written by
    /// [`Store::seal_photo`] or by a version before it (`FGP1`).
    pub(crate) fn open_photo(&self, stored: Vec<u8>, sha256: &str) -> Result<Vec<u8>> {
        use aes_gcm::aead::{Aead, Payload};
        use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
        let Some(keys) = &self.photo_keys else {
            return Ok(stored);
        };
        // Damaged, moved to another photo's name, or sealed under another
        // key: this photo's error (it is not sent, and shows so), not the store's.
        let unreadable = || Error::invalid("photo", Code::Unreadable);
        if stored.len() < 16 {
            return Err(unreadable());
        }
        let (magic, rest) = stored.split_at(4);
        let (nonce, sealed) = rest.split_at(12);
        let aad = hex::decode(sha256).map_err(|_| unreadable())?;
        let (key, payload) = match magic {
            m if m == PHOTO_MAGIC_V2 => (&keys.v2, Payload { msg: sealed, aad: &aad }),
            m if m == PHOTO_MAGIC_V1 => (&keys.v1, Payload::from(sealed)),
            _ => return Err(unreadable()),
        };
        let cipher = Aes256Gcm::new_from_slice(&key[..]).map_err(|_| unreadable())?;
        cipher
            .decrypt(Nonce::from_slice(nonce), payload)
            .map_err(|_| unreadable())
    }

    /// Path of the database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Folder holding the photo files.
    pub fn photo_dir(&self) -> &Path {
        &self.photo_dir
    }

    /// The store's clock.
    pub(crate) fn clock(&self) -> &dyn Clock {
        self.clock.as_ref()
    }

    /// Device time now, in ms.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// Best estimate of the server's time now: the device clock corrected by
    /// the offset learned at the last sync (0 before any sync).
    pub fn server_now_ms(&self) -> Result<i64> {
        let offset = self.read(|c| meta_get(c, "clock_offset_ms"))?;
        let offset: i64 = offset.and_then(|v| v.parse().ok()).unwrap_or(0);
        Ok(self.now_ms() + offset)
    }

    /// Today's date in China (UTC+8), for birth-date checks.
    pub(crate) fn today(&self) -> chrono::NaiveDate {
        fieldgrid_domain::china_time::date(self.now_ms())
    }

    /// Runs `f` in one IMMEDIATE transaction on the writer connection; commits
    /// if it returns `Ok`, rolls back otherwise.
    pub(crate) fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        self.take_touched(); // left by a transaction that failed
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
        let out = f(&tx)?;
        tx.commit()?;
        let touched = self.take_touched();
        let listener = self.listener.read().unwrap_or_else(PoisonError::into_inner).clone();
        if let Some(listener) = listener
            && !touched.is_empty()
        {
            let change = describe(&conn, touched);
            drop(conn);
            match change {
                Ok(change) => {
                    // A listener's panic is its own; the write has committed.
                    let told = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| listener.changed(&change)));
                    if told.is_err() {
                        tracing::error!("a change listener panicked");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "changes not reported"),
            }
        }
        Ok(out)
    }

    fn take_touched(&self) -> Vec<(Entity, i64)> {
        std::mem::take(&mut *self.touched.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Tells `listener` of every committed change from now on (`None`: stop).
    /// One listener per store; a new one replaces the last.
    pub fn set_change_listener(&self, listener: Option<Arc<dyn ChangeListener>>) {
        self.listening.store(listener.is_some(), Ordering::Relaxed);
        *self.listener.write().unwrap_or_else(PoisonError::into_inner) = listener;
    }

    /// Runs `f` in one read transaction on the reader connection, so that
    /// everything it reads is from one consistent snapshot.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let mut conn = self.reader.lock().unwrap_or_else(PoisonError::into_inner);
        let tx = conn.transaction_with_behavior(TransactionBehavior::Deferred)?;
        let out = f(&tx)?;
        tx.finish()?;
        Ok(out)
    }

    /// Records the signed-in worker's account id (the reporter of incidents
    /// and the actor of timeline events from now on); `None` on sign-out.
    pub fn set_account_id(&self, account_id: Option<&str>) -> Result<()> {
        self.write(|tx| match account_id {
            Some(id) => meta_set(
                tx,
                "account_id",
                &validate::text("account_id", id, limits::LABEL, false)?,
            ),
            None => {
                tx.execute("DELETE FROM meta WHERE key = 'account_id'", [])?;
                Ok(())
            }
        })
    }

    /// Adds or replaces a grid (reference data from the district: no outbox).
    pub fn put_grid(&self, grid: &Grid) -> Result<Grid> {
        let g = Grid {
            id: validate::text("id", &grid.id, limits::LABEL, false)?,
            code: validate::text("code", &grid.code, limits::LABEL, false)?,
            name: validate::text("name", &grid.name, limits::LABEL, false)?,
            community: validate::optional_text("community", &grid.community, limits::LABEL, false)?,
            sub_district: validate::optional_text("sub_district", &grid.sub_district, limits::LABEL, false)?,
        };
        self.write(|tx| {
            let clash: Option<String> = tx
                .query_row(
                    "SELECT id FROM grids WHERE code = ?1 AND id <> ?2",
                    params![g.code, g.id],
                    |r| r.get(0),
                )
                .optional()?;
            if clash.is_some() {
                return Err(Error::invalid("code", Code::Duplicate));
            }
            tx.execute(
                "INSERT INTO grids (id, code, name, community, sub_district) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET code = ?2, name = ?3, community = ?4, sub_district = ?5",
                params![g.id, g.code, g.name, g.community, g.sub_district],
            )?;
            Ok(())
        })?;
        Ok(g)
    }

    /// All grids on this device, by code.
    pub fn grids(&self) -> Result<Vec<Grid>> {
        self.read(|c| {
            let mut stmt = c.prepare("SELECT id, code, name, community, sub_district FROM grids ORDER BY code")?;
            let rows = stmt.query_map([], |r| {
                Ok(Grid {
                    id: r.get(0)?,
                    code: r.get(1)?,
                    name: r.get(2)?,
                    community: r.get(3)?,
                    sub_district: r.get(4)?,
                })
            })?;
            Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
        })
    }

    /// The incident category catalogue in force.
    pub fn catalogue(&self) -> Arc<Catalogue> {
        self.catalogue.read().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Installs `catalogue` if its version is newer than the one in force.
    /// Returns whether it was installed.
    pub fn replace_catalogue(&self, catalogue: Catalogue) -> Result<bool> {
        if catalogue.categories.is_empty() {
            return Err(Error::invalid("categories", Code::Empty));
        }
        let installed = self.write(|tx| {
            let current: Option<i64> = tx
                .query_row("SELECT version FROM catalogue WHERE id = 1", [], |r| r.get(0))
                .optional()?;
            if current.is_some_and(|v| v >= catalogue.version) {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO catalogue (id, version, body) VALUES (1, ?1, ?2)
                 ON CONFLICT (id) DO UPDATE SET version = ?1, body = ?2",
                params![catalogue.version, serde_json::to_string(&catalogue)?],
            )?;
            Ok(true)
        })?;
        if installed {
            tracing::info!(version = catalogue.version, "catalogue replaced");
            *self.catalogue.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(catalogue);
        }
        Ok(installed)
    }

    /// Puts the stored catalogue in force (at open, and after a pull).
    pub(crate) fn load_catalogue(&self) -> Result<()> {
        let stored: Option<String> = self.read(|c| {
            Ok(c.query_row("SELECT body FROM catalogue WHERE id = 1", [], |r| r.get(0))
                .optional()?)
        })?;
        // A district's catalogue replaces the built-in one only when newer:
        // at the same version, this build's text wins (a newer build may have
        // added parts, such as visit rules, to the same version).
        let builtin = Catalogue::builtin();
        let builtin_body = serde_json::to_string(&builtin)?;
        if let Some(body) = &stored {
            let stored: Catalogue = serde_json::from_str(body)?;
            if stored.version > builtin.version {
                *self.catalogue.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(stored);
                return Ok(());
            }
        }
        if stored.as_ref() != Some(&builtin_body) {
            self.write(|tx| {
                tx.execute(
                    "INSERT INTO catalogue (id, version, body) VALUES (1, ?1, ?2)
                     ON CONFLICT (id) DO UPDATE SET version = ?1, body = ?2",
                    params![builtin.version, builtin_body],
                )?;
                Ok(())
            })?;
        }
        *self.catalogue.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(builtin);
        Ok(())
    }
}

/// The kinds and grids of the rows a transaction touched.
fn describe(conn: &Connection, touched: Vec<(Entity, i64)>) -> Result<DataChange> {
    let mut by_kind: std::collections::BTreeMap<Entity, Vec<i64>> = std::collections::BTreeMap::new();
    for (kind, rowid) in touched {
        by_kind.entry(kind).or_default().push(rowid);
    }
    let mut change = DataChange::default();
    let mut grids = std::collections::BTreeSet::new();
    for (kind, mut rowids) in by_kind {
        rowids.sort_unstable();
        rowids.dedup();
        let found: Vec<Option<String>> = conn
            .prepare_cached(entity::grids_of_rows(kind))?
            .query_map([serde_json::to_string(&rowids)?], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        change.any_grid |= found.len() < rowids.len() || found.iter().any(Option::is_none);
        grids.extend(found.into_iter().flatten());
        change.entities.push(kind);
    }
    change.grids = grids.into_iter().collect();
    Ok(change)
}

/// Opens one connection, applies the key, and proves the key by reading.
fn connect(path: &Path, key: Option<&StoreKey>) -> Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    let version: String = conn.query_row("PRAGMA cipher_version", [], |r| r.get(0))?;
    if !version.starts_with(crate::db::cipher::SQLCIPHER_MAJOR) {
        // A build linked against another SQLCipher: its file format and
        // provider interface are not the ones this code was checked with.
        return Err(Error::Internal(format!(
            "SQLCipher {version} is linked; FieldGrid needs version 4"
        )));
    }
    match key {
        Some(key) => key.apply(&conn)?,
        // Plain (QA) stores use the same page size; no effect on an existing file.
        None => conn.pragma_update(None, "page_size", 8192)?,
    }
    let probe = conn.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0));
    if let Err(e) = probe {
        return Err(match e.sqlite_error_code() {
            Some(ErrorCode::NotADatabase) if key.is_some() => Error::WrongKey,
            Some(ErrorCode::NotADatabase) => Error::NotADatabase,
            _ => e.into(),
        });
    }
    conn.pragma_update(None, "foreign_keys", true)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Up to 16 MiB of page cache per connection; a grid's store (1-2k
    // residents, a few MiB) never fills it, a district-sized one benefits.
    conn.pragma_update(None, "cache_size", -16384)?;
    Ok(conn)
}

/// Where the store of one account lives in a folder of stores: a phone
/// shared by workers in shifts keeps one store (and one key) per account,
/// so switching accounts never mixes their data. The file name is derived
/// from the account id (no personal data in paths).
pub fn store_path_for_account(dir: &Path, account_id: &str) -> PathBuf {
    use sha2::{Digest, Sha256};
    let digest = hex::encode(Sha256::digest(account_id.as_bytes()));
    dir.join(format!("account-{}.db", &digest[..32]))
}

fn photo_dir_for(path: &Path) -> PathBuf {
    with_suffix(path, "photos")
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    with_raw_suffix(path, &format!(".{suffix}"))
}

fn with_raw_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Reads a value from the `meta` table.
pub(crate) fn meta_get(conn: &Connection, key: &str) -> Result<Option<String>> {
    Ok(conn
        .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
        .optional()?)
}

/// Writes a value to the `meta` table.
pub(crate) fn meta_set(tx: &Transaction<'_>, key: &str, value: &str) -> Result<()> {
    tx.execute(
        "INSERT INTO meta (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO UPDATE SET value = ?2",
        params![key, value],
    )?;
    Ok(())
}
