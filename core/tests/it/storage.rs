//! Opening stores: keys, refusals that leave the file untouched, atomic
//! writes, schema versions.

use std::sync::Arc;
use std::sync::atomic::AtomicI64;

use fieldgrid_core::*;
use sha2::Digest;

use crate::common::*;

fn key(byte: u8) -> StoreKey {
    StoreKey::from_bytes(&[byte; 32]).unwrap()
}

fn file_hash(path: &std::path::Path) -> String {
    hex::encode(sha2::Sha256::digest(std::fs::read(path).unwrap()))
}

fn clock() -> Arc<TestClock> {
    Arc::new(TestClock(AtomicI64::new(NOW_MS)))
}

#[test]
fn a_keyed_store_is_encrypted_and_needs_its_key() {
    let k = key(7);
    let f = Fixture::with_key(Some(&k));
    let r = f
        .store
        .create_resident(&f.resident("张伟", &id_for("19800101", "011"), Sex::Male))
        .unwrap();
    let path = f.path();
    drop(f.store);

    let head = std::fs::read(&path).unwrap();
    assert!(!head.starts_with(b"SQLite format 3"), "the file is encrypted");
    assert!(
        !head.windows("张伟".len()).any(|w| w == "张伟".as_bytes()),
        "no plaintext name in the file"
    );
    let hash = file_hash(&path);

    assert!(matches!(open(&path, None, &clock()), Err(Error::NotADatabase)));
    assert!(matches!(open(&path, Some(&key(8)), &clock()), Err(Error::WrongKey)));
    assert_eq!(file_hash(&path), hash, "failed opens leave the file untouched");
    // and a raw rusqlite connection without the key cannot read it either
    let raw = rusqlite::Connection::open(&path).unwrap();
    assert!(
        raw.query_row("SELECT count(*) FROM sqlite_master", [], |r| r.get::<_, i64>(0))
            .is_err()
    );

    let store = open(&path, Some(&k), &clock()).unwrap();
    assert_eq!(store.get_resident(&r.id).unwrap().name.as_str(), "张伟");
}

#[test]
fn a_plain_store_opened_with_a_key_is_refused() {
    let f = Fixture::with_key(None);
    let path = f.path();
    drop(f.store);
    assert!(std::fs::read(&path).unwrap().starts_with(b"SQLite format 3\0"));
    assert!(matches!(open(&path, Some(&key(1)), &clock()), Err(Error::NotEncrypted)));
    assert!(StoreKey::from_bytes(&[0; 16]).is_err(), "keys are exactly 32 bytes");
}

#[test]
fn a_file_that_is_not_a_database_is_refused_and_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("notes.db");
    let junk: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &junk).unwrap();
    assert!(matches!(open(&path, None, &clock()), Err(Error::NotADatabase)));
    assert!(matches!(open(&path, Some(&key(2)), &clock()), Err(Error::WrongKey)));
    assert_eq!(std::fs::read(&path).unwrap(), junk);
    assert!(!dir.path().join("notes.db-wal").exists());

    let moved = Store::move_aside(&path, NOW_MS).unwrap();
    assert!(!path.exists());
    assert_eq!(std::fs::read(&moved).unwrap(), junk, "moved, never deleted");
    let fresh = open(&path, None, &clock()).unwrap();
    assert!(fresh.grids().unwrap().is_empty());
}

#[test]
fn a_store_from_a_newer_version_is_refused_untouched() {
    let f = Fixture::new();
    let path = f.path();
    let raw = f.raw();
    drop(f.store);
    raw.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    raw.pragma_update(None, "journal_mode", "DELETE").unwrap();
    drop(raw);
    let hash = file_hash(&path);
    match open(&path, f.key.as_ref(), &clock()) {
        Err(Error::NewerSchema { found, supported }) => {
            assert_eq!((found, supported), (SCHEMA_VERSION + 1, SCHEMA_VERSION));
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(file_hash(&path), hash);
}

#[test]
fn the_store_is_wal_with_full_sync_and_foreign_keys() {
    let f = Fixture::new();
    let raw = f.raw();
    let mode: String = raw.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let v: i64 = raw.query_row("PRAGMA user_version", [], |r| r.get(0)).unwrap();
    assert_eq!(v, SCHEMA_VERSION);
    let ok: String = raw.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
}

/// A write that fails between the record and its outbox operation leaves
/// neither: the failure is injected by a trigger on the outbox, created from a
/// second connection, so the real capture path runs unchanged.
#[test]
fn a_write_killed_between_record_and_outbox_leaves_neither() {
    let f = Fixture::new();
    let before = f.snapshot();
    let raw = f.raw();
    raw.execute_batch(
        "CREATE TRIGGER fail_outbox BEFORE INSERT ON outbox BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
    )
    .unwrap();

    let new = f.resident("刘洋", &id_for("19920202", "051"), Sex::Male);
    let err = f.store.create_resident(&new).unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    // drafts are not queued: saving one needs no outbox write and succeeds
    let draft = f.store.create_incident_draft(&f.incident("neighbour_dispute")).unwrap();
    let err = f.store.submit_incident(&draft.id).unwrap_err();
    assert!(matches!(err, Error::Storage(_)));

    raw.execute_batch("DROP TRIGGER fail_outbox").unwrap();
    f.store.discard_incident_draft(&draft.id).unwrap();
    assert_eq!(f.snapshot(), before, "nothing of the failed writes remains");
    let r = f.store.create_resident(&new).unwrap();
    assert_eq!(f.store.get_resident(&r.id).unwrap().name.as_str(), "刘洋");
}

#[test]
fn wipe_refuses_while_work_is_unsent_and_removes_everything_when_told() {
    let f = Fixture::new();
    let d = f.store.create_incident_draft(&f.incident("gas_no_alarm")).unwrap();
    f.store.attach_incident_photo(&d.id, &photo(3)).unwrap();
    let (path, photos, clock) = (f.path(), f.store.photo_dir().to_path_buf(), f.clock.clone());
    assert!(photos.exists());
    match f.store.wipe(false) {
        Err(Error::Unsynced { operations }) => assert_eq!(operations, 4, "the places and household wait"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    // Refused: the store is intact and opens again.
    let store = Fixture::reopen(&path, &clock);
    assert_eq!(store.get_incident(&d.id).unwrap().photos.len(), 1);
    store.wipe(true).unwrap();
    assert!(!path.exists());
    assert!(!photos.exists());
    assert!(!std::path::PathBuf::from(format!("{}-wal", path.display())).exists());
}

#[test]
fn photos_of_a_keyed_store_are_encrypted_on_disk() {
    let f = Fixture::with_key(Some(&key(4)));
    let d = f.store.create_incident_draft(&f.incident("gas_no_alarm")).unwrap();
    let p = f.store.attach_incident_photo(&d.id, &photo(8)).unwrap();
    let plain = jpeg(8, 2048);
    let on_disk = std::fs::read(f.store.photo_dir().join(&p.sha256)).unwrap();
    assert!(!on_disk.starts_with(&[0xFF, 0xD8, 0xFF]), "no JPEG header on disk");
    assert!(
        !on_disk.windows(64).any(|w| plain.windows(64).any(|q| q == w)),
        "no plaintext run on disk"
    );
    assert_eq!(f.store.photo_bytes(&p).unwrap(), plain);
    assert_eq!(
        p.sha256,
        hex::encode(sha2::Sha256::digest(&plain)),
        "named by the plain bytes' hash"
    );
    // A plain (QA) store keeps them as they are.
    let g = Fixture::with_key(None);
    let d = g.store.create_incident_draft(&g.incident("gas_no_alarm")).unwrap();
    let q = g.store.attach_incident_photo(&d.id, &photo(8)).unwrap();
    assert_eq!(std::fs::read(g.store.photo_dir().join(&q.sha256)).unwrap(), plain);
}

/// Seals `plain` as stores before photo format 2 did: AES-256-GCM under
/// SHA-256("fieldgrid photo files v1" || key), no associated data.
fn seal_v1(key: &[u8; 32], plain: &[u8]) -> Vec<u8> {
    use aes_gcm::aead::Aead;
    use aes_gcm::{Aes256Gcm, KeyInit, Nonce};
    let mut h = sha2::Sha256::new();
    h.update(b"fieldgrid photo files v1");
    h.update(key);
    let photo_key: [u8; 32] = h.finalize().into();
    let nonce = [9u8; 12];
    let sealed = Aes256Gcm::new_from_slice(&photo_key)
        .unwrap()
        .encrypt(Nonce::from_slice(&nonce), plain)
        .unwrap();
    [b"FGP1".as_slice(), &nonce, &sealed].concat()
}

#[test]
fn photo_files_are_bound_to_their_names_and_older_files_still_open() {
    let f = Fixture::with_key(Some(&key(4)));
    let d = f.store.create_incident_draft(&f.incident("gas_no_alarm")).unwrap();
    let a = f.store.attach_incident_photo(&d.id, &photo(8)).unwrap();
    let b = f.store.attach_incident_photo(&d.id, &photo(9)).unwrap();
    let (path_a, path_b) = (f.store.photo_dir().join(&a.sha256), f.store.photo_dir().join(&b.sha256));
    assert!(std::fs::read(&path_a).unwrap().starts_with(b"FGP2"));

    // A file moved to another photo's name does not open as that photo,
    // though it was sealed with the same store's key.
    let b_file = std::fs::read(&path_b).unwrap();
    std::fs::copy(&path_a, &path_b).unwrap();
    let e = f.store.photo_bytes(&b).unwrap_err();
    assert_eq!(e.as_validation().unwrap().code, Code::Unreadable, "{e:?}");
    std::fs::write(&path_b, &b_file).unwrap();
    assert_eq!(f.store.photo_bytes(&b).unwrap(), jpeg(9, 2048));

    // A file written before format 2 still opens.
    std::fs::write(&path_a, seal_v1(&[4; 32], &jpeg(8, 2048))).unwrap();
    assert_eq!(f.store.photo_bytes(&a).unwrap(), jpeg(8, 2048));
    // And a format-1 file under another key does not.
    std::fs::write(&path_a, seal_v1(&[5; 32], &jpeg(8, 2048))).unwrap();
    assert!(f.store.photo_bytes(&a).is_err());
}
