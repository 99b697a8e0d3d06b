//! Search and lists, checked against a brute-force answer over generated data.

use std::collections::BTreeSet;

use fieldgrid_core::*;

use crate::common::*;

struct World {
    f: Fixture,
    all: Vec<Resident>,
    building_of: std::collections::HashMap<String, Option<String>>,
}

fn world() -> World {
    let f = Fixture::new();
    let mut rng = datagen::Rng::new(42);
    datagen::populate_grid(&f.store, &mut rng, &f.grid, 4, 1500).unwrap();
    for (name, id, sex) in [
        ("张伟", id_for("19800101", "011"), Sex::Male),
        ("王小明", id_for("19750303", "033"), Sex::Male),
        ("欧阳娜娜", id_for("19990909", "044"), Sex::Female),
    ] {
        f.store.create_resident(&f.resident(name, &id, sex)).unwrap();
    }
    let all = every_page(&f.store, &ResidentQuery::default(), 97);
    let mut building_of = std::collections::HashMap::new();
    for r in &all {
        let b = r
            .household_id
            .as_ref()
            .and_then(|h| f.store.get_household(h).unwrap().building_id);
        building_of.insert(r.id.clone(), b);
    }
    World { f, all, building_of }
}

fn every_page(store: &Store, q: &ResidentQuery, limit: u32) -> Vec<Resident> {
    let mut out = Vec::new();
    let mut page = PageRequest { limit, after: None };
    loop {
        let p = store.search_residents(q, &page).unwrap();
        assert!(p.items.len() <= limit as usize);
        out.extend(p.items);
        match p.next {
            Some(n) => page.after = Some(n),
            None => return out,
        }
    }
}

fn ids(rs: &[Resident]) -> Vec<String> {
    rs.iter().map(|r| r.id.clone()).collect()
}

/// The brute-force answer, in the search's order (name, id).
fn expected(w: &World, keep: impl Fn(&Resident) -> bool) -> Vec<String> {
    ids(&w.all.iter().filter(|r| keep(r)).cloned().collect::<Vec<_>>())
}

#[test]
fn paging_is_stable_complete_and_ordered() {
    let w = world();
    assert_eq!(w.all.len(), 1503);
    let unique: BTreeSet<&str> = w.all.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(unique.len(), w.all.len(), "no resident on two pages");
    assert!(
        w.all
            .windows(2)
            .all(|p| (p[0].name.as_str(), &p[0].id) < (p[1].name.as_str(), &p[1].id))
    );
    // a resident added while paging does not shift or repeat earlier pages
    let q = ResidentQuery::default();
    let first =
        w.f.store
            .search_residents(
                &q,
                &PageRequest {
                    limit: 100,
                    after: None,
                },
            )
            .unwrap();
    w.f.store
        .create_resident(&w.f.resident("阿丽", &id_for("20000101", "022"), Sex::Female))
        .unwrap();
    let second =
        w.f.store
            .search_residents(
                &q,
                &PageRequest {
                    limit: 100,
                    after: first.next.clone(),
                },
            )
            .unwrap();
    assert_eq!(ids(&second.items), ids(&w.all[100..200]));
    assert!(matches!(
        w.f.store.search_residents(&q, &PageRequest { limit: 0, after: None }),
        Err(Error::Validation(ValidationError {
            code: Code::OutOfRange,
            ..
        }))
    ));
}

#[test]
fn name_search_matches_brute_force_for_one_two_and_three_characters() {
    let w = world();
    let mut queries: Vec<String> = vec![
        "张伟".into(),
        "王小明".into(),
        "欧阳".into(),
        "娜娜".into(),
        "王".into(),
        "伟".into(),
        "小".into(),
    ];
    // substrings of real generated names
    for r in w.all.iter().step_by(97) {
        let chars: Vec<char> = r.name.as_str().chars().collect();
        queries.push(chars[..2].iter().collect());
        queries.push(chars[chars.len() - 2..].iter().collect());
        queries.push(r.name.as_str().to_owned());
    }
    for q in &queries {
        let got = every_page(
            &w.f.store,
            &ResidentQuery {
                name: Some(q.clone()),
                ..Default::default()
            },
            50,
        );
        let want = expected(&w, |r| r.name.as_str().contains(q.as_str()));
        assert!(!want.is_empty(), "{q}");
        assert_eq!(ids(&got), want, "name {q}");
    }
    let none =
        w.f.store
            .search_residents(
                &ResidentQuery {
                    name: Some("龘龘".into()),
                    ..Default::default()
                },
                &PageRequest::default(),
            )
            .unwrap();
    assert!(none.items.is_empty());
}

#[test]
fn id_number_and_phone_search_by_full_value_or_suffix() {
    let w = world();
    for r in w.all.iter().step_by(211) {
        let id = r.id_number.as_ref().unwrap().as_str().to_owned();
        for q in [
            id.clone(),
            id[12..].to_owned(),
            id[14..].to_owned(),
            id[14..].to_lowercase(),
        ] {
            let got = every_page(
                &w.f.store,
                &ResidentQuery {
                    id_number: Some(q.clone()),
                    ..Default::default()
                },
                50,
            );
            let suffix = q.to_uppercase();
            assert_eq!(
                ids(&got),
                expected(&w, |x| x
                    .id_number
                    .as_ref()
                    .is_some_and(|n| n.as_str().ends_with(&suffix)))
            );
            assert!(got.iter().any(|x| x.id == r.id));
        }
        if let Some(p) = &r.phone {
            let digits = p.digits();
            for q in [
                digits.clone(),
                digits[7..].to_owned(),
                format!("{} {}", &digits[..3], &digits[3..]),
            ] {
                let got = every_page(
                    &w.f.store,
                    &ResidentQuery {
                        phone: Some(q.clone()),
                        ..Default::default()
                    },
                    50,
                );
                let compact: String = q.chars().filter(|c| c.is_ascii_digit()).collect();
                assert_eq!(
                    ids(&got),
                    expected(&w, |x| x.phone.as_ref().is_some_and(|n| n.digits().ends_with(&compact)))
                );
            }
        }
    }
    for bad in ["12", "12a4", "1234567890123456789"] {
        let e =
            w.f.store
                .search_residents(
                    &ResidentQuery {
                        id_number: Some(bad.into()),
                        ..Default::default()
                    },
                    &PageRequest::default(),
                )
                .unwrap_err();
        assert_eq!(e.as_validation().unwrap().field, "id_number");
    }
}

#[test]
fn care_tag_filters_by_building_and_address() {
    let w = world();
    let buildings: BTreeSet<String> = w.building_of.values().flatten().cloned().collect();
    assert_eq!(buildings.len(), 5, "four generated buildings and the fixture's");
    for b in &buildings {
        for tag in [CareTag::ElderlyLivingAlone, CareTag::Disabled] {
            let q = ResidentQuery {
                care_tag: Some(tag.clone()),
                building_id: Some(b.clone()),
                ..Default::default()
            };
            let got = every_page(&w.f.store, &q, 50);
            let want = expected(&w, |r| {
                r.care_tags.contains(&tag) && w.building_of[&r.id].as_deref() == Some(b.as_str())
            });
            assert_eq!(ids(&got), want);
        }
    }
    let alone = every_page(
        &w.f.store,
        &ResidentQuery {
            care_tag: Some(CareTag::ElderlyLivingAlone),
            ..Default::default()
        },
        50,
    );
    assert!(
        alone.len() > 20,
        "generated data has elderly living alone: {}",
        alone.len()
    );
    // combined with a name
    let q = ResidentQuery {
        care_tag: Some(CareTag::ElderlyLivingAlone),
        name: Some("王".into()),
        ..Default::default()
    };
    assert_eq!(
        ids(&every_page(&w.f.store, &q, 50)),
        expected(&w, |r| r.care_tags.contains(&CareTag::ElderlyLivingAlone)
            && r.name.as_str().contains('王'))
    );
    // by address
    for address in ["3号楼2单元301", "2号楼1单元"] {
        let got = every_page(
            &w.f.store,
            &ResidentQuery {
                address: Some(address.into()),
                ..Default::default()
            },
            50,
        );
        let want = expected(&w, |r| {
            r.household_id
                .as_ref()
                .is_some_and(|h| w.f.store.get_household(h).unwrap().address.as_str().contains(address))
        });
        assert!(!want.is_empty());
        assert_eq!(ids(&got), want, "address {address}");
    }
    // household listing
    assert_eq!(w.f.store.residents_of_household(&w.f.household.id).unwrap().len(), 3);
}

#[test]
fn incidents_by_status_category_and_date_with_paging() {
    let f = Fixture::new();
    let mut made = Vec::new();
    for i in 0..30i64 {
        let category = if i % 3 == 0 {
            "neighbour_dispute"
        } else {
            "resident_request"
        };
        let mut input = f.incident(category);
        input.occurred_at_ms = Some(NOW_MS - (i + 1) * 3_600_000);
        let d = f.store.create_incident_draft(&input).unwrap();
        if i % 2 == 0 {
            f.store.submit_incident(&d.id).unwrap();
        }
        made.push(d.id);
    }
    let reported = f
        .store
        .list_incidents(
            &IncidentQuery {
                statuses: vec![IncidentStatus::Reported],
                ..Default::default()
            },
            &PageRequest { limit: 7, after: None },
        )
        .unwrap();
    assert_eq!(reported.items.len(), 7);
    let mut all = Vec::new();
    let mut page = PageRequest { limit: 7, after: None };
    loop {
        let p = f
            .store
            .list_incidents(
                &IncidentQuery {
                    statuses: vec![IncidentStatus::Reported],
                    ..Default::default()
                },
                &page,
            )
            .unwrap();
        all.extend(p.items);
        match p.next {
            Some(n) => page.after = Some(n),
            None => break,
        }
    }
    assert_eq!(all.len(), 15);
    assert!(
        all.windows(2).all(|w| w[0].occurred_at_ms > w[1].occurred_at_ms),
        "newest first"
    );
    let disputes = f
        .store
        .list_incidents(
            &IncidentQuery {
                category: Some("neighbour_dispute".into()),
                ..Default::default()
            },
            &PageRequest {
                limit: 100,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(disputes.items.len(), 10);
    let window = IncidentQuery {
        from_ms: Some(NOW_MS - 10 * 3_600_000),
        to_ms: Some(NOW_MS - 5 * 3_600_000),
        ..Default::default()
    };
    let got = f
        .store
        .list_incidents(
            &window,
            &PageRequest {
                limit: 100,
                after: None,
            },
        )
        .unwrap();
    assert_eq!(
        got.items.iter().map(|i| i.id.clone()).collect::<Vec<_>>(),
        made[5..10].to_vec()
    );
    let drafts = f
        .store
        .list_incidents(
            &IncidentQuery {
                statuses: vec![IncidentStatus::Draft],
                ..Default::default()
            },
            &PageRequest {
                limit: 100,
                after: None,
            },
        )
        .unwrap();
    assert!(drafts.items.iter().all(|i| i.meta.sync == SyncStatus::Draft));
    assert_eq!(drafts.items.len(), 15);
}

#[test]
fn dashboard_counts_a_grid() {
    let f = Fixture::new();
    let mut rng = datagen::Rng::new(5);
    let populated = datagen::populate_grid(&f.store, &mut rng, &f.grid, 2, 300).unwrap();
    let d1 = f.store.create_incident_draft(&f.incident("neighbour_dispute")).unwrap();
    let d2 = f.store.create_incident_draft(&f.incident("resident_request")).unwrap();
    f.store.create_incident_draft(&f.incident("resident_request")).unwrap();
    f.store.submit_incident(&d1.id).unwrap();
    f.store.submit_incident(&d2.id).unwrap();
    // The centre's deadlines arrive by sync; written here as sync will write them.
    let raw = f.raw();
    raw.execute(
        "UPDATE incidents SET status = 'dispatched', deadline_at = ?2 WHERE id = ?1",
        rusqlite::params![d1.id, NOW_MS - 1],
    )
    .unwrap();
    raw.execute(
        "UPDATE incidents SET status = 'dispatched', deadline_at = ?2 WHERE id = ?1",
        rusqlite::params![d2.id, NOW_MS + 3_600_000],
    )
    .unwrap();

    let d = f.store.dashboard(&f.grid.id).unwrap();
    assert_eq!(d.residents, 300);
    assert_eq!(d.households as usize, populated.households.len() + 1);
    assert_eq!((d.open_incidents, d.overdue_incidents, d.drafts), (2, 1, 1));
    let q = ResidentQuery {
        care_tag: Some(CareTag::ElderlyLivingAlone),
        grid_id: Some(f.grid.id.clone()),
        ..Default::default()
    };
    let alone = every_page(&f.store, &q, 100).len() as u64;
    assert_eq!(
        d.care_tags
            .iter()
            .find(|(t, _)| *t == CareTag::ElderlyLivingAlone)
            .unwrap()
            .1,
        alone
    );

    // Overdue is by server time: a phone clock two hours slow still sees it.
    raw.execute(
        "INSERT INTO meta (key, value) VALUES ('clock_offset_ms', '7200000')",
        [],
    )
    .unwrap();
    f.clock
        .0
        .store(NOW_MS - 7_200_000 + 3_600_000 + 1, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(f.store.dashboard(&f.grid.id).unwrap().overdue_incidents, 2);
}
