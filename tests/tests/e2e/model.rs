//! Model-based test: random programs of edits, deletes, reports with photos,
//! syncs, restarts, crashes, grid reassignments, the centre acting on
//! incidents (dispatch, resolve, return) and brand-new phones joining and
//! first-syncing at any point, over three phones and the server, checked
//! after every step against a simple model, and for convergence at the end.
//! `PROPTEST_CASES` sets the number of programs (default 12).

use std::collections::{BTreeMap, BTreeSet};

use fieldgrid_core::*;
use fieldgrid_tests::{Device, District, T0};
use proptest::prelude::*;

use crate::helpers::*;

#[derive(Clone, Debug)]
enum Step {
    /// Phone `p` creates a resident.
    Create(usize),
    /// Phone `p` changes the notes of the `n`-th resident it knows.
    Edit(usize, usize),
    /// Phone `p` deletes the `n`-th resident it knows.
    Delete(usize, usize),
    /// Phone `p` reports an incident with a photo.
    Report(usize),
    /// Phone `p` syncs.
    Sync(usize),
    /// Phone `p`'s app is closed and restarted (the store is closed and reopened).
    Restart(usize),
    /// Phone `p` is killed: it continues from its files as they lie on disk
    /// (a copy taken while the store is open, WAL not checkpointed, no clean close).
    Crash(usize),
    /// The district takes grid-a from phone 1's worker (wa2), or gives it
    /// back; the phone learns it when it signs in again, at once.
    Reassign,
    /// The centre acts on the `n`-th incident the server has: dispatches
    /// it, resolves it or returns it (refused when the transition is not
    /// allowed from where it stands).
    Centre(CentreAction, usize),
    /// A brand-new phone signs in to grid-a and pulls everything (page by
    /// page when `small_pages`): its copy must equal the server's.
    Join { small_pages: bool },
}

#[derive(Clone, Copy, Debug)]
enum CentreAction {
    Dispatch,
    Resolve,
    Return,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..3usize).prop_map(Step::Create),
        3 => (0..3usize, 0..8usize).prop_map(|(p, n)| Step::Edit(p, n)),
        1 => (0..3usize, 0..8usize).prop_map(|(p, n)| Step::Delete(p, n)),
        1 => (0..3usize).prop_map(Step::Report),
        4 => (0..3usize).prop_map(Step::Sync),
        1 => (0..3usize).prop_map(Step::Restart),
        1 => (0..3usize).prop_map(Step::Crash),
        1 => Just(Step::Reassign),
        2 => (prop_oneof![Just(CentreAction::Dispatch), Just(CentreAction::Resolve), Just(CentreAction::Return)], 0..8usize)
            .prop_map(|(a, n)| Step::Centre(a, n)),
        1 => any::<bool>().prop_map(|small_pages| Step::Join { small_pages }),
    ]
}

/// What must be true, kept by the test alongside the real system.
#[derive(Default)]
struct Model {
    /// Every record created, by id, with the phone that made it.
    created: BTreeMap<String, usize>,
    /// Residents deleted (by any phone).
    deleted: BTreeSet<String>,
    /// Operations made (each must reach the server exactly once).
    operations: u64,
    /// Where grid-a stands on phone 1 (wa2).
    phone1: GridA,
    /// Phone 1 lacks grid-a's records: evicted, and not pulled again since.
    phone1_lacks_data: bool,
}

/// Grid-a on phone 1, whose worker may lose it and get it back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum GridA {
    /// Assigned and held.
    #[default]
    Held,
    /// Taken away; the phone still holds the data until its next sync sends
    /// what waits (the server accepts it for 7 days) and evicts the grid.
    Revoked,
    /// Taken away and evicted: nothing of grid-a on the phone.
    Evicted,
    /// Given back; the next sync pulls the grid's history again.
    GivenBack,
}

/// Phone 1 is the one whose grid moves.
const MOVING: usize = 1;

/// Copies the store's files as they lie on disk (database, WAL, photos) to
/// `to`: the state a kill would leave between two calls.
fn copy_as_on_disk(from: &std::path::Path, to: &std::path::Path) {
    let with = |p: &std::path::Path, suffix: &str| std::path::PathBuf::from(format!("{}{suffix}", p.display()));
    std::fs::copy(from, to).unwrap();
    if with(from, "-wal").exists() {
        std::fs::copy(with(from, "-wal"), with(to, "-wal")).unwrap();
    }
    let photos = with(from, ".photos");
    if photos.exists() {
        std::fs::create_dir_all(with(to, ".photos")).unwrap();
        for f in std::fs::read_dir(&photos).unwrap() {
            let f = f.unwrap();
            std::fs::copy(f.path(), with(to, ".photos").join(f.file_name())).unwrap();
        }
    }
}

fn live_residents(d: &Device) -> Vec<Resident> {
    let q = ResidentQuery {
        grid_id: Some("grid-a".into()),
        ..Default::default()
    };
    d.store
        .search_residents(
            &q,
            &PageRequest {
                limit: 500,
                after: None,
            },
        )
        .unwrap()
        .items
}

/// The server's live residents of grid-a (id -> notes) and its incidents
/// (id -> status).
fn server_view(district: &District) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let residents = district
        .server
        .admin()
        .records_of("resident", Some("grid-a"))
        .unwrap()
        .into_iter()
        .filter(|r| !r.deleted)
        .map(|r| (r.id.clone(), r.fields["notes"].as_str().unwrap_or_default().to_owned()))
        .collect();
    let incidents = district
        .server
        .admin()
        .records_of("incident", Some("grid-a"))
        .unwrap()
        .into_iter()
        .filter(|r| r.fields["status"] != "draft")
        .map(|r| (r.id.clone(), r.fields["status"].as_str().unwrap_or_default().to_owned()))
        .collect();
    (residents, incidents)
}

/// A phone's incidents of the server's list (id -> status).
fn statuses(d: &Device, ids: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    ids.keys()
        .filter_map(|id| d.store.get_incident(id).ok())
        .map(|i| (i.id, i.status.as_str().to_owned()))
        .collect()
}

fn run(program: &[Step], case: u64) {
    let district = District::new();
    let centre = token(&district, "centre");
    let mut joined = 0;
    let users = ["wa1", "wa2", "wa1"];
    let mut phones: Vec<Device> = (0..3)
        .map(|i| district.device(&format!("m{case}-{i}"), users[i], &district.server.url()))
        .collect();
    let key = StoreKey::from_bytes(&[7; 32]).unwrap();
    let mut model = Model::default();
    let mut rng = datagen::Rng::new(case);
    for (n, step) in program.iter().enumerate() {
        match step {
            Step::Create(p) => {
                let mut r = datagen::resident(&mut rng, "grid-a", None);
                r.id_number = None; // no uniqueness race between phones
                if *p == MOVING && model.phone1 == GridA::Evicted {
                    let err = phones[*p].store.create_resident(&r).unwrap_err();
                    assert_eq!(
                        err.as_validation().map(|v| v.field.as_str()),
                        Some("grid_id"),
                        "step {n}"
                    );
                    continue;
                }
                let made = phones[*p].store.create_resident(&r).unwrap();
                assert_eq!(
                    made.meta.sync,
                    SyncStatus::OnlyOnDevice,
                    "step {n}: honest status of a new record"
                );
                model.created.insert(made.id, *p);
                model.operations += 1;
            }
            Step::Edit(p, k) => {
                let known = live_residents(&phones[*p]);
                if let Some(r) = known.get(k % known.len().max(1)) {
                    let edited = phones[*p]
                        .store
                        .update_resident(&r.id, &[ResidentChange::Notes(format!("step {n}"))])
                        .unwrap();
                    assert_eq!(edited.notes.as_str(), format!("step {n}"));
                    model.operations += 1;
                }
            }
            Step::Delete(p, k) => {
                let known = live_residents(&phones[*p]);
                if let Some(r) = known.get(k % known.len().max(1)) {
                    phones[*p].store.delete_resident(&r.id).unwrap();
                    model.deleted.insert(r.id.clone());
                    model.operations += 1;
                }
            }
            Step::Report(p) => {
                let photo = NewPhoto {
                    source: PhotoSource::Bytes(vec![0xFF, 0xD8, 0xFF, 0xE0, n as u8, case as u8]),
                    taken_at_ms: None,
                    location: None,
                };
                let reported = phones[*p]
                    .store
                    .report_incident(&incident("grid-a", "hornets_nest", T0 - 1000), &[photo]);
                if *p == MOVING && model.phone1 == GridA::Evicted {
                    assert!(reported.is_err(), "step {n}: reported into an evicted grid");
                    continue;
                }
                let i = reported.unwrap();
                model.created.insert(i.id, *p);
                model.operations += 3; // the incident, its photo, its "reported" event
            }
            Step::Sync(p) => {
                let report = phones[*p].sync().unwrap();
                if *p == MOVING {
                    model.phone1 = match model.phone1 {
                        GridA::Revoked => {
                            assert_eq!(report.evicted_grids, ["grid-a"], "step {n}: sent, then evicted");
                            model.phone1_lacks_data = true;
                            GridA::Evicted
                        }
                        GridA::GivenBack => {
                            model.phone1_lacks_data = false;
                            GridA::Held
                        }
                        other => other,
                    };
                }
                let counts = phones[*p].store.outbox_counts().unwrap();
                assert_eq!((counts.pending, counts.sending), (0, 0), "step {n}: all sent");
                // The one refusal a valid program can meet: a change to a
                // resident another phone deleted first (the delete wins).
                for op in phones[*p].store.rejected_operations().unwrap() {
                    let why = op.rejection.unwrap();
                    assert_eq!(
                        (why.code.as_str(), why.field.as_deref()),
                        ("not_allowed", Some("id")),
                        "step {n}: {}",
                        why.message
                    );
                    assert!(
                        model.deleted.contains(&op.entity_id),
                        "step {n}: refused a change to a live record"
                    );
                }
            }
            Step::Restart(p) => {
                let path = phones[*p].path.clone();
                let old = phones.remove(*p);
                let (transport, clock) = (old.transport, old.clock);
                drop(old.store);
                let store = Store::open_with(
                    &path,
                    Some(&key),
                    StoreOptions {
                        clock: std::sync::Arc::new(clock.clone()),
                    },
                )
                .unwrap();
                phones.insert(
                    *p,
                    Device {
                        store,
                        transport,
                        path,
                        clock,
                    },
                );
            }
            Step::Crash(p) => {
                let from = phones[*p].path.clone();
                let to = from.with_file_name(format!("m{case}-{p}-after-crash-{n}.db"));
                copy_as_on_disk(&from, &to);
                assert_eq!(integrity_check(&to, 7), "ok", "step {n}: the files a kill leaves");
                let old = phones.remove(*p);
                let (transport, clock) = (old.transport, old.clock);
                drop(old.store);
                let store = Store::open_with(
                    &to,
                    Some(&key),
                    StoreOptions {
                        clock: std::sync::Arc::new(clock.clone()),
                    },
                )
                .unwrap();
                phones.insert(
                    *p,
                    Device {
                        store,
                        transport,
                        path: to,
                        clock,
                    },
                );
            }
            Step::Reassign => {
                let (grids, next) = match model.phone1 {
                    GridA::Held | GridA::GivenBack => (["grid-b"], GridA::Revoked),
                    // Given back before the phone evicted anything: it still holds it all.
                    GridA::Revoked | GridA::Evicted if !model.phone1_lacks_data => (["grid-a"], GridA::Held),
                    GridA::Revoked | GridA::Evicted => (["grid-a"], GridA::GivenBack),
                };
                let admin = district.server.admin();
                let id = admin.account_id("wa2").unwrap().unwrap();
                let grids: Vec<String> = grids.iter().map(|g| (*g).to_owned()).collect();
                admin.assign_grids(&id, &grids, T0).unwrap();
                let phone = &phones[MOVING];
                phone
                    .store
                    .login(&phone.transport, "wa2", fieldgrid_tests::PASSWORD)
                    .unwrap();
                model.phone1 = next;
            }
            Step::Centre(action, k) => {
                let (_, incidents) = server_view(&district);
                let Some(id) = incidents.keys().nth(k % incidents.len().max(1)) else {
                    continue;
                };
                let body = match action {
                    CentreAction::Dispatch => serde_json::json!({"kind": "dispatched", "department": "dept-gas",
                        "deadline_at_ms": district.server_clock.now() + 3_600_000}),
                    CentreAction::Resolve => serde_json::json!({"kind": "resolved", "note": "已处理"}),
                    CentreAction::Return => serde_json::json!({"kind": "returned", "note": "非本部门职责"}),
                };
                let (status, answer) = call(
                    &district,
                    &centre,
                    "POST",
                    &format!("/v1/centre/incidents/{id}/events"),
                    Some(body),
                );
                assert!(matches!(status, 200 | 409), "step {n}: {status} {answer}");
            }
            Step::Join { small_pages } => {
                joined += 1;
                let fresh = district.device(&format!("m{case}-join-{joined}"), "wa1", &district.server.url());
                let options = if *small_pages {
                    fieldgrid_core::sync::SyncOptions {
                        page_limit: 3,
                        pull_commit_changes: 1,
                        ..fieldgrid_tests::quick()
                    }
                } else {
                    fieldgrid_tests::quick()
                };
                fresh
                    .sync_with(&options)
                    .unwrap_or_else(|e| panic!("step {n}: first sync failed: {e}"));
                let (residents, incidents) = server_view(&district);
                let mine: BTreeMap<String, String> = live_residents(&fresh)
                    .into_iter()
                    .map(|r| (r.id, r.notes.as_str().to_owned()))
                    .collect();
                assert_eq!(mine, residents, "step {n}: a new phone holds the server's residents");
                assert_eq!(
                    statuses(&fresh, &incidents),
                    incidents,
                    "step {n}: and its incidents' statuses"
                );
            }
        }
        // After every step: nothing a phone made is missing from it (unless
        // its grid left the phone, after its operations reached the server).
        for (id, p) in &model.created {
            // (A grid pulled again brings no tombstones of records deleted meanwhile.)
            if *p == MOVING && (model.phone1_lacks_data || model.deleted.contains(id)) {
                continue;
            }
            let here = phones[*p]
                .store
                .get_resident(id)
                .map(|_| ())
                .or_else(|_| phones[*p].store.get_incident(id).map(|_| ()));
            assert!(here.is_ok(), "step {n}: phone {p} lost a record it made");
        }
    }
    // Final: everyone syncs twice; the copies converge on the server's.
    for _ in 0..2 {
        for p in &phones {
            p.sync().unwrap();
        }
    }
    assert_eq!(
        server_receipts(&district) as u64,
        model.operations,
        "each operation exactly once"
    );
    let (server, server_incidents_status) = server_view(&district);
    for (i, p) in phones.iter().enumerate() {
        let mine: BTreeMap<String, String> = live_residents(p)
            .into_iter()
            .map(|r| (r.id, r.notes.as_str().to_owned()))
            .collect();
        // The final syncs evicted a grid taken away, and restored one given back.
        if i == MOVING && matches!(model.phone1, GridA::Revoked | GridA::Evicted) {
            assert!(mine.is_empty(), "an evicted grid left nothing on the phone");
            continue;
        }
        assert_eq!(mine, server, "a phone's residents equal the server's");
        assert_eq!(
            statuses(p, &server_incidents_status),
            server_incidents_status,
            "a phone's incident statuses equal the server's"
        );
        for r in live_residents(p) {
            assert!(
                matches!(r.meta.sync, SyncStatus::OnServer | SyncStatus::Conflict { .. }),
                "honest final status: {:?}",
                r.meta.sync
            );
        }
        assert_eq!(p.store.outbox_counts().unwrap().pending, 0);
    }
    for id in &model.deleted {
        assert!(!server.contains_key(id), "a deleted resident stays deleted");
    }
    let server_incidents = district.server.admin().records_of("incident", None).unwrap().len();
    let made_incidents = model
        .created
        .keys()
        .filter(|id| phones[0].store.get_incident(id).is_ok())
        .count();
    assert_eq!(
        server_incidents, made_incidents,
        "every incident reached the server once"
    );
    for (list, by) in [("grids", By::Grid), ("categories", By::Category)] {
        assert_eq!(
            stats_per(&district, &centre, list),
            recount_per(&district, by),
            "the statistics kept as writes happen equal a recount of the incidents ({list})"
        );
    }
}

/// (reported, open, finished with a deadline, finished by it) per grid or
/// category, as the centre's statistics give them.
fn stats_per(d: &District, centre: &str, list: &str) -> BTreeMap<String, (u64, u64, u64, u64)> {
    let (status, stats) = call(d, centre, "GET", "/v1/centre/stats", None);
    assert_eq!(status, 200, "{stats}");
    let n = |v: &serde_json::Value| v.as_u64().unwrap_or(u64::MAX);
    stats[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let counts = (
                n(&g["reported"]),
                n(&g["open"]),
                n(&g["finished_with_deadline"]),
                n(&g["finished_on_time"]),
            );
            (g["key"].as_str().unwrap().to_owned(), counts)
        })
        .collect()
}

enum By {
    Grid,
    Category,
}

/// The same, counted from the incidents the server holds.
fn recount_per(d: &District, by: By) -> BTreeMap<String, (u64, u64, u64, u64)> {
    let ms = |f: &serde_json::Map<String, serde_json::Value>, k: &str| f.get(k).and_then(|v| v.as_i64());
    let mut out: BTreeMap<String, (u64, u64, u64, u64)> = BTreeMap::new();
    for r in d.server.admin().records_of("incident", None).unwrap() {
        let status = r.fields["status"].as_str().unwrap_or_default();
        if r.deleted || status == "draft" {
            continue;
        }
        let key = match by {
            By::Grid => r.grid_id.clone(),
            By::Category => r.fields["category"].as_str().unwrap_or_default().to_owned(),
        };
        let e = out.entry(key).or_default();
        e.0 += 1;
        e.1 += u64::from(matches!(status, "reported" | "dispatched" | "accepted" | "returned"));
        if let (Some(deadline), Some(finished)) = (ms(&r.fields, "deadline_at_ms"), ms(&r.fields, "finished_at_ms")) {
            e.2 += 1;
            e.3 += u64::from(finished <= deadline);
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12), ..ProptestConfig::default() })]

    #[test]
    fn random_programs_keep_every_promise(program in prop::collection::vec(step(), 1..40), case in any::<u64>()) {
        run(&program, case);
    }
}
