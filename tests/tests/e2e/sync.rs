//! Convergence, conflicts and quarantine across two devices and the server.

use fieldgrid_core::*;
use fieldgrid_tests::District;

use crate::helpers::*;

#[test]
fn two_devices_converge_and_a_same_field_conflict_is_kept_on_both_sides() {
    let d = District::new();
    let a1 = d.device("a1", "wa1", &d.server.url());
    let a2 = d.device("a2", "wa2", &d.server.url());
    let h = household(&a1.store, "grid-a");
    let r = a1
        .store
        .create_resident(&resident(&h, "王秀英", &id_for("19450315", "022"), Sex::Female))
        .unwrap();
    assert_eq!(r.meta.sync, SyncStatus::OnlyOnDevice);
    let report = a1.sync().unwrap();
    assert_eq!((report.confirmed, report.rejected), (5, 0));
    assert_eq!(a1.store.get_resident(&r.id).unwrap().meta.sync, SyncStatus::OnServer);
    a2.sync().unwrap();
    let seen = a2.store.get_resident(&r.id).unwrap();
    assert_eq!(seen.name.as_str(), "王秀英");
    assert_eq!(seen.meta.sync, SyncStatus::OnServer);
    assert_eq!(
        a2.store.residents_of_household(&h.id).unwrap().len(),
        1,
        "search index built from pulled data"
    );

    // Offline, both edit: the same field (phone) and one field each.
    a1.store
        .update_resident(
            &r.id,
            &[
                ResidentChange::Phone(Some("13911112222".into())),
                ResidentChange::Notes("独居，女儿在外地".into()),
            ],
        )
        .unwrap();
    a2.store
        .update_resident(
            &r.id,
            &[
                ResidentChange::Phone(Some("13733334444".into())),
                ResidentChange::Residence(ResidenceStatus::Actual),
            ],
        )
        .unwrap();
    a1.sync().unwrap();
    a2.sync().unwrap();
    a1.sync().unwrap();

    let server = server_record(&d, &r.id);
    let on_a1 = a1.store.get_resident(&r.id).unwrap();
    let on_a2 = a2.store.get_resident(&r.id).unwrap();
    for copy in [&on_a1, &on_a2] {
        assert_eq!(
            copy.phone.as_ref().unwrap().as_str(),
            "13733334444",
            "the later edit wins, everywhere"
        );
        assert_eq!(copy.notes.as_str(), "独居，女儿在外地");
        assert_eq!(copy.residence, ResidenceStatus::Actual);
        assert_eq!(copy.meta.server_version, Some(server.version));
    }
    assert_eq!(server.fields["phone"], "13733334444");
    assert_eq!(server.fields["notes"], "独居，女儿在外地");
    assert_eq!(server.fields["residence"], "actual");

    // The losing value is kept, and both devices and the centre see it.
    let conflicts = d.server.admin().records_of("conflict", None).unwrap();
    assert_eq!(conflicts.len(), 1);
    assert_eq!(conflicts[0].fields["field"], "phone");
    assert_eq!(conflicts[0].fields["losing_value"], "13911112222");
    for device in [&a1, &a2] {
        let c = device.store.conflicts_of(&r.id).unwrap();
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].0, "phone");
        assert_eq!(
            (c[0].1.as_str(), c[0].2.as_str()),
            (Some("13733334444"), Some("13911112222"))
        );
        assert_eq!(
            device.store.get_resident(&r.id).unwrap().meta.sync,
            SyncStatus::Conflict {
                fields: vec!["phone".into()]
            }
        );
    }
    a1.store.acknowledge_conflicts(&r.id).unwrap();
    assert_eq!(a1.store.get_resident(&r.id).unwrap().meta.sync, SyncStatus::OnServer);
    let centre = token(&d, "centre");
    let (status, list) = call(&d, &centre, "GET", "/v1/conflicts", None);
    assert_eq!((status, list.as_array().unwrap().len()), (200, 1));
    // Issue 21 item 4: the centre sees the phone numbers masked, as
    // everywhere else; the grid's worker, who holds the resident whole on
    // the phone, whole.
    assert_eq!(
        (list[0]["winning_value"].as_str(), list[0]["losing_value"].as_str()),
        (Some("137****4444"), Some("139****2222"))
    );
    let (_, mine) = call(&d, &token(&d, "wa1"), "GET", "/v1/conflicts", None);
    assert_eq!(mine[0]["losing_value"], "13911112222");
}

#[test]
fn one_refused_operation_is_quarantined_and_every_other_lands() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let h = household(&a.store, "grid-a");
    let mut rng = datagen::Rng::new(9);
    let rows = datagen::residents(&mut rng, "grid-a", std::slice::from_ref(&h.id), 40);
    a.store.import_residents(&rows).unwrap();
    // The phone's clock runs a day fast for one capture: the server, going
    // by its own clock, refuses a visit logged "tomorrow".
    a.clock.advance(86_400_000);
    let bad = a
        .store
        .create_service_log(&NewServiceLog {
            grid_id: "grid-a".into(),
            kind: ServiceKind::Visit,
            resident_ids: vec![],
            notes: "入户走访".into(),
            occurred_at_ms: None,
            photos: vec![],
        })
        .unwrap();
    a.clock.advance(-86_400_000);
    let i = a
        .store
        .report_incident(&incident("grid-a", "resident_request", fieldgrid_tests::T0 - 1000), &[])
        .unwrap();

    let report = a.sync().unwrap();
    assert_eq!(report.rejected, 1);
    assert_eq!(report.confirmed, 4 + 40 + 2);
    let rejected = a.store.rejected_operations().unwrap();
    assert_eq!(rejected.len(), 1);
    let why = rejected[0].rejection.clone().unwrap();
    assert_eq!(
        (why.code.as_str(), why.field.as_deref()),
        ("in_future", Some("occurred_at_ms"))
    );
    match a.store.get_service_log(&bad.id).unwrap().meta.sync {
        SyncStatus::Rejected { code, field, .. } => {
            assert_eq!((code.as_str(), field.as_deref()), ("in_future", Some("occurred_at_ms")))
        }
        other => panic!("expected rejected, got {other:?}"),
    }
    assert_eq!(a.store.get_incident(&i.id).unwrap().meta.sync, SyncStatus::OnServer);
    assert_eq!(server_count(&d, "resident"), 40);
    assert_eq!(server_count(&d, "service_log"), 0);
    assert_eq!(a.store.outbox_counts().unwrap().pending, 0);
    let counts = a.store.status_counts().unwrap();
    assert_eq!((counts.records, counts.on_server, counts.rejected), (47, 46, 1));
    // A later sync does not resend the quarantined operation.
    let again = a.sync().unwrap();
    assert_eq!((again.confirmed, again.rejected), (0, 0));
}

#[test]
fn progress_is_reported_and_a_cancelled_sync_keeps_what_it_did() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let mut rng = datagen::Rng::new(11);
    a.store
        .import_residents(&datagen::residents(&mut rng, "grid-a", &[], 300))
        .unwrap();
    let options = fieldgrid_core::sync::SyncOptions {
        batch_operations: 100,
        ..fieldgrid_tests::quick()
    };
    let cancel = std::sync::atomic::AtomicBool::new(false);
    let seen = std::sync::Mutex::new(Vec::new());
    // Cancel after the first batch was confirmed.
    let err = a
        .store
        .sync(
            &a.transport,
            &options,
            &|p| {
                seen.lock().unwrap().push(p);
                cancel.store(true, std::sync::atomic::Ordering::SeqCst);
            },
            &cancel,
        )
        .unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    let first = seen.lock().unwrap().clone();
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].phase, first[0].done, first[0].total),
        (fieldgrid_core::sync::Phase::Push, 100, 300)
    );
    assert_eq!(
        a.store.outbox_counts().unwrap().pending,
        200,
        "the confirmed batch stays confirmed"
    );
    assert_eq!(server_count(&d, "resident"), 100);

    let seen = std::sync::Mutex::new(Vec::new());
    let report = a
        .store
        .sync(
            &a.transport,
            &options,
            &|p| seen.lock().unwrap().push(p),
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!(report.confirmed, 200);
    let seen = seen.lock().unwrap();
    let pushes: Vec<u64> = seen
        .iter()
        .filter(|p| p.phase == fieldgrid_core::sync::Phase::Push)
        .map(|p| p.done)
        .collect();
    assert_eq!(pushes, [100, 200]);
    assert!(seen.iter().any(|p| p.phase == fieldgrid_core::sync::Phase::Pull));
    assert!(
        seen.iter()
            .all(|p| p.bytes > 0 || p.phase == fieldgrid_core::sync::Phase::Pull)
    );
}

#[test]
fn an_overloaded_server_is_retried_honouring_retry_after_then_reported_offline() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    household(&a.store, "grid-a"); // four operations waiting
    // A second server on the same data, admitting nobody: every call is 429.
    let mut config = fieldgrid_server::Config::new(d.dir.path().join("server"));
    config.max_in_flight = 0;
    // The same clock and database: the phone's token is a session there
    // (a token is verified before a request waits for a slot).
    config.clock = d.server.state.config.clock.clone();
    config.database_url = d.database.clone();
    let busy = fieldgrid_server::RunningServer::start(config, "127.0.0.1:0".parse().unwrap()).unwrap();
    let transport = fieldgrid_core::sync::HttpTransport::new(&busy.url(), &Default::default()).unwrap();
    let waiting = a.store.outbox_counts().unwrap();
    let started = std::time::Instant::now();
    let err = a
        .store
        .sync(
            &transport,
            &fieldgrid_tests::quick(),
            &|_| {},
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap_err();
    assert!(matches!(err, Error::Offline), "{err:?}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(2),
        "two pauses of Retry-After: 1 s"
    );
    assert_eq!(
        a.store.outbox_counts().unwrap().pending + a.store.outbox_counts().unwrap().sending,
        waiting.pending
    );
    // The real server then takes everything.
    assert_eq!(a.sync().unwrap().confirmed, waiting.pending);
}
