//! Five phones edit and sync for many rounds through a proxy that faults a
//! quarter of all requests (dropped requests, lost answers, 500s, 429s,
//! truncated answers, duplicated deliveries, answers past the phone's timeout). Afterwards every operation is on
//! the server exactly once, nothing is lost, and the phones of a grid agree
//! with the server. `FIELDGRID_FAULT_ROUNDS` (default 20; long mode 100) and
//! `FIELDGRID_SEED` replay a run.

use std::collections::{BTreeMap, HashSet};

use fieldgrid_core::datagen::{self, Rng};
use fieldgrid_core::sync::{HttpOptions, HttpTransport};
use fieldgrid_core::*;
use fieldgrid_tests::proxy::{Fault, Proxy};
use fieldgrid_tests::{Device, District};

use crate::helpers::*;

fn residents_of(device: &Device, grid: &str) -> BTreeMap<String, (String, Option<String>, String)> {
    let mut out = BTreeMap::new();
    let q = ResidentQuery {
        grid_id: Some(grid.into()),
        ..Default::default()
    };
    let mut page = PageRequest {
        limit: 500,
        after: None,
    };
    loop {
        let p = device.store.search_residents(&q, &page).unwrap();
        for r in p.items {
            out.insert(
                r.id,
                (
                    r.name.as_str().to_owned(),
                    r.phone.map(|p| p.as_str().to_owned()),
                    r.notes.as_str().to_owned(),
                ),
            );
        }
        match p.next {
            Some(n) => page.after = Some(n),
            None => return out,
        }
    }
}

#[test]
fn five_phones_converge_through_a_network_that_faults_a_quarter_of_requests() {
    let rounds: usize = std::env::var("FIELDGRID_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("FIELDGRID_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20261126);
    println!("fault proxy: 5 phones x {rounds} rounds, seed {seed}");
    let d = District::new();
    let proxy = Proxy::start(d.server.addr);
    // Phones give up on an answer after 400 ms: the proxy's slow answers come later.
    let timeout = std::time::Duration::from_millis(400);
    assert!(timeout < fieldgrid_tests::proxy::SLOW_ANSWER);
    let phones: Vec<(Device, &str)> = [
        ("p1", "wa1", "grid-a"),
        ("p2", "wa2", "grid-a"),
        ("p3", "wa1", "grid-a"),
        ("p4", "wb", "grid-b"),
        ("p5", "wb", "grid-b"),
    ]
    .into_iter()
    .map(|(name, user, grid)| {
        let mut phone = d.device(name, user, &proxy.url());
        phone.transport = HttpTransport::new(
            &proxy.url(),
            &HttpOptions {
                timeout,
                pinned_ca_pem: None,
            },
        )
        .unwrap();
        (phone, grid)
    })
    .collect();
    proxy.set(Fault::Random { rate: 0.25, seed });
    let mut rng = Rng::new(seed);
    let mut used_ids = HashSet::new();
    let mut operations = 0u64;
    for round in 0..rounds {
        for (k, (phone, grid)) in phones.iter().enumerate() {
            for _ in 0..1 + rng.below(3) {
                match rng.below(3) {
                    0 => {
                        let mut r = datagen::resident(&mut rng, grid, None);
                        if !used_ids.insert(r.id_number.clone()) {
                            r.id_number = None;
                        }
                        phone.store.create_resident(&r).unwrap();
                    }
                    1 => {
                        let q = ResidentQuery {
                            grid_id: Some((*grid).into()),
                            ..Default::default()
                        };
                        let known = phone
                            .store
                            .search_residents(&q, &PageRequest { limit: 50, after: None })
                            .unwrap()
                            .items;
                        if known.is_empty() {
                            continue;
                        }
                        let r = &known[rng.below(known.len() as u64) as usize];
                        let change = if rng.chance(0.5) {
                            ResidentChange::Notes(format!("round {round} phone {k}"))
                        } else {
                            ResidentChange::Phone(Some(datagen::mobile(&mut rng)))
                        };
                        let before = phone.store.pending_operations(100_000).unwrap().len();
                        phone.store.update_resident(&r.id, &[change]).unwrap();
                        if phone.store.pending_operations(100_000).unwrap().len() == before {
                            continue; // the same value: nothing to send
                        }
                    }
                    _ => {
                        phone
                            .store
                            .create_service_log(&NewServiceLog {
                                grid_id: (*grid).into(),
                                kind: ServiceKind::PhoneCheckIn,
                                resident_ids: vec![],
                                notes: format!("round {round}"),
                                occurred_at_ms: None,
                                photos: vec![],
                            })
                            .unwrap();
                    }
                }
                operations += 1;
            }
            let _ = phone.sync(); // through the faults: may fail, must not lose anything
        }
    }
    let faulted = proxy.faults_applied();
    let requests = proxy.requests();
    println!("fault proxy: {faulted} of {requests} requests faulted, {operations} operations made");
    assert!(
        faulted * 5 >= requests,
        "at least 20% of requests faulted ({faulted} of {requests})"
    );

    // The network heals; everyone syncs until nothing moves.
    proxy.set(Fault::None);
    for _ in 0..2 {
        for (phone, _) in &phones {
            phone.sync().unwrap();
        }
    }
    for (phone, _) in &phones {
        assert_eq!(
            phone.store.outbox_counts().unwrap(),
            outbox::OutboxCounts::default(),
            "nothing waiting, nothing refused"
        );
    }
    assert_eq!(
        server_receipts(&d) as u64,
        operations,
        "every operation applied exactly once"
    );
    for grid in ["grid-a", "grid-b"] {
        let copies: Vec<_> = phones
            .iter()
            .filter(|(_, g)| *g == grid)
            .map(|(p, _)| residents_of(p, grid))
            .collect();
        for c in &copies[1..] {
            assert_eq!(c, &copies[0], "the phones of {grid} agree");
        }
        let server: Vec<_> = d.server.admin().records_of("resident", Some(grid)).unwrap();
        assert_eq!(server.len(), copies[0].len(), "no resident lost on {grid}");
        for rec in server {
            let (_, phone, notes) = &copies[0][&rec.id];
            assert_eq!(rec.fields["notes"].as_str().unwrap_or_default(), notes);
            assert_eq!(rec.fields.get("phone").and_then(|p| p.as_str()), phone.as_deref());
        }
    }
}
