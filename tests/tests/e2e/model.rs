//! Model-based test: random programs of edits, deletes, reports with photos,
//! syncs and restarts over three phones and the server, checked after every
//! step against a simple model, and for convergence at the end.
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
    /// Phone `p`'s app is killed and restarted (the store is closed and reopened).
    Restart(usize),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..3usize).prop_map(Step::Create),
        3 => (0..3usize, 0..8usize).prop_map(|(p, n)| Step::Edit(p, n)),
        1 => (0..3usize, 0..8usize).prop_map(|(p, n)| Step::Delete(p, n)),
        1 => (0..3usize).prop_map(Step::Report),
        4 => (0..3usize).prop_map(Step::Sync),
        1 => (0..3usize).prop_map(Step::Restart),
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

fn run(program: &[Step], case: u64) {
    let district = District::new();
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
                let i = phones[*p]
                    .store
                    .report_incident(&incident("grid-a", "hornets_nest", T0 - 1000), &[photo])
                    .unwrap();
                model.created.insert(i.id, *p);
                model.operations += 3; // the incident, its photo, its "reported" event
            }
            Step::Sync(p) => {
                phones[*p].sync().unwrap();
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
        }
        // After every step: nothing a phone made is missing from it.
        for (id, p) in &model.created {
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
    let server: BTreeMap<String, String> = district
        .server
        .admin(|c| fieldgrid_server::records::of_entity(c, "resident", Some("grid-a")))
        .unwrap()
        .into_iter()
        .filter(|r| !r.deleted)
        .map(|r| (r.id.clone(), r.fields["notes"].as_str().unwrap_or_default().to_owned()))
        .collect();
    for p in &phones {
        let mine: BTreeMap<String, String> = live_residents(p)
            .into_iter()
            .map(|r| (r.id, r.notes.as_str().to_owned()))
            .collect();
        assert_eq!(mine, server, "a phone's residents equal the server's");
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
    let server_incidents = district
        .server
        .admin(|c| fieldgrid_server::records::of_entity(c, "incident", None))
        .unwrap()
        .len();
    let made_incidents = model
        .created
        .keys()
        .filter(|id| phones[0].store.get_incident(id).is_ok())
        .count();
    assert_eq!(
        server_incidents, made_incidents,
        "every incident reached the server once"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12), ..ProptestConfig::default() })]

    #[test]
    fn random_programs_keep_every_promise(program in prop::collection::vec(step(), 1..40), case in any::<u64>()) {
        run(&program, case);
    }
}
