//! Lost answers, cut uploads, interrupted pulls: nothing lost, nothing twice,
//! no progress thrown away.

use fieldgrid_core::sync::SyncOptions;
use fieldgrid_core::*;
use fieldgrid_tests::proxy::{Fault, Proxy};
use fieldgrid_tests::{District, T0, quick};

use crate::helpers::*;

#[test]
fn a_lost_push_answer_is_retried_without_duplicates() {
    let d = District::new();
    let proxy = Proxy::start(d.server.addr);
    let a = d.device("a", "wa1", &proxy.url());
    let mut rng = datagen::Rng::new(4);
    let rows = datagen::residents(&mut rng, "grid-a", &[], 30);
    a.store.import_residents(&rows).unwrap();

    // The server commits the batch; its answer never reaches the phone.
    proxy.set(Fault::LoseResponse("/v1/sync/push".into()));
    let report = a.sync().unwrap();
    assert_eq!(proxy.faults_applied(), 1);
    assert_eq!(report.confirmed, 30);
    let pushes = proxy.paths().iter().filter(|p| p.starts_with("/v1/sync/push")).count();
    assert_eq!(pushes, 2, "the batch was sent twice");
    assert_eq!(server_count(&d, "resident"), 30, "but applied once");
    assert_eq!(server_receipts(&d), 30);
    assert_eq!(a.store.outbox_counts().unwrap(), outbox::OutboxCounts::default());
}

#[test]
fn a_photo_upload_cut_half_way_resumes_from_the_server_offset() {
    let d = District::new();
    let proxy = Proxy::start(d.server.addr);
    let a = d.device("a", "wa1", &proxy.url());
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..2 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let photo = NewPhoto {
        source: PhotoSource::Bytes(bytes.clone()),
        taken_at_ms: Some(T0 - 5000),
        location: None,
    };
    let i = a
        .store
        .report_incident(&incident("grid-a", "hornets_nest", T0 - 60_000), &[photo])
        .unwrap();
    let sha = i.photos[0].sha256.clone();
    let options = SyncOptions {
        chunk_bytes: 256 * 1024,
        ..quick()
    };

    // The network goes after the HEAD and four of the nine chunks.
    proxy.set(Fault::DropAfter("/v1/photos/".into(), 5));
    let err = a.sync_with(&options).unwrap_err();
    assert!(matches!(err, Error::Offline), "{err:?}");
    let received: i64 = d
        .server
        .admin()
        .upload(&sha, &d.server.admin().account_id("wa1").unwrap().unwrap())
        .unwrap()
        .map_or(0, |(received, _)| received);
    assert_eq!(received, 4 * 256 * 1024, "about half arrived");
    let centre = token(&d, "centre");
    let (_, list) = call(&d, &centre, "GET", "/v1/centre/incidents", None);
    assert_eq!(list["incidents"][0]["id"], i.id.as_str(), "the incident itself landed");
    assert_eq!(
        list["incidents"][0]["complete"], false,
        "not complete while a photo is missing"
    );
    assert!(!a.store.get_incident(&i.id).unwrap().photos[0].uploaded);

    proxy.set(Fault::None);
    let before = proxy.paths().len();
    let report = a.sync_with(&options).unwrap();
    assert_eq!(report.photos_uploaded, 1);
    let patches = proxy.paths()[before..]
        .iter()
        .filter(|p| p.starts_with("/v1/photos/"))
        .count();
    assert_eq!(patches, 1 + 5, "one HEAD, then only the five missing chunks");
    let stored = std::fs::read(d.dir.path().join("server/photos").join(&sha)).unwrap();
    assert_eq!(stored, bytes);
    let (_, list) = call(&d, &centre, "GET", "/v1/centre/incidents", None);
    assert_eq!(list["incidents"][0]["complete"], true, "complete once the hash matched");
    assert!(a.store.get_incident(&i.id).unwrap().photos[0].uploaded);
}

#[test]
fn an_interrupted_pull_resumes_from_its_cursor() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let mut rng = datagen::Rng::new(5);
    let rows = datagen::residents(&mut rng, "grid-a", &[], 1200);
    a.store.import_residents(&rows).unwrap();
    a.sync().unwrap();

    let proxy = Proxy::start(d.server.addr);
    let b = d.device("b", "wa2", &proxy.url());
    // Pages of 100, each committed as it arrives.
    let options = SyncOptions {
        page_limit: 100,
        pull_commit_changes: 100,
        ..quick()
    };
    proxy.set(Fault::DropAfter("/v1/sync/changes".into(), 5));
    assert!(matches!(b.sync_with(&options), Err(Error::Offline)));
    let cursor = b.store.pull_cursor().unwrap();
    let q = ResidentQuery {
        grid_id: Some("grid-a".into()),
        ..Default::default()
    };
    let first = b
        .store
        .search_residents(
            &q,
            &PageRequest {
                limit: 500,
                after: None,
            },
        )
        .unwrap();
    assert!(cursor > 0);
    let have = b.store.dashboard("grid-a").unwrap().residents;
    assert_eq!(have, 500, "five pages of 100 committed");
    assert_eq!(first.items.len(), 500);

    proxy.set(Fault::None);
    let before = proxy.paths().len();
    let report = b.sync_with(&options).unwrap();
    let pages = proxy.paths()[before..]
        .iter()
        .filter(|p| p.starts_with("/v1/sync/changes"))
        .count();
    assert_eq!(pages, 7, "the seven remaining pages, not twelve");
    assert_eq!(report.pulled, 700);
    assert_eq!(b.store.dashboard("grid-a").unwrap().residents, 1200);
}
