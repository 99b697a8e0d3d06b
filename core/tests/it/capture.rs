//! The capture API: records and their outbox operations, written together.

use fieldgrid_core::outbox::{OpKind, OpState};
use fieldgrid_core::*;

use crate::common::*;

#[test]
fn resident_create_queues_one_operation_with_all_fields() {
    let f = Fixture::new();
    let before = f.store.outbox_counts().unwrap().pending;
    let id = id_for("19450315", "022"); // female
    let r = f
        .store
        .create_resident(&f.resident("王秀英", &id, Sex::Female))
        .unwrap();
    assert_eq!(r.meta.sync, SyncStatus::OnlyOnDevice);
    assert_eq!(
        r.birth_date.unwrap().to_string(),
        "1945-03-15",
        "filled from the ID number"
    );
    assert_eq!(r.id.len(), 36);
    assert_eq!(&r.id[14..15], "7", "UUIDv7");
    assert_eq!(f.store.outbox_counts().unwrap().pending, before + 1);
    let op = f.store.pending_operations(1000).unwrap().pop().unwrap();
    assert_eq!(
        (op.entity.as_str(), op.entity_id.as_str(), op.kind),
        ("resident", r.id.as_str(), OpKind::Create)
    );
    assert_eq!(op.base_version, None);
    assert!(op.patch.is_empty(), "a create's record is read when it is sent");
    let sent = f.store.payload(&op).unwrap();
    assert_eq!(sent["name"], "王秀英");
    assert_eq!(sent["id_number"], id.as_str());
    assert_eq!(sent["household_id"], f.household.id.as_str());
    assert!(!sent.contains_key("meta"));
    assert_eq!(f.store.get_resident(&r.id).unwrap(), r);
}

#[test]
fn update_queues_only_changed_fields_and_nothing_when_unchanged() {
    let f = Fixture::new();
    let r = f
        .store
        .create_resident(&f.resident("李强", &id_for("19800101", "011"), Sex::Male))
        .unwrap();
    let n = f.store.outbox_counts().unwrap().pending;
    let same = f
        .store
        .update_resident(&r.id, &[ResidentChange::Phone(Some("138 1234 5678".into()))])
        .unwrap();
    assert_eq!(same, r, "normalised to the same number: no change");
    assert_eq!(f.store.outbox_counts().unwrap().pending, n);

    let updated = f
        .store
        .update_resident(
            &r.id,
            &[
                ResidentChange::Phone(Some("0546-8123456".into())),
                ResidentChange::AddCareTag(CareTag::Disabled),
            ],
        )
        .unwrap();
    assert_eq!(updated.phone.as_ref().unwrap().as_str(), "0546-8123456");
    assert_eq!(updated.care_tags, vec![CareTag::Disabled]);
    let op = f.store.pending_operations(1000).unwrap().pop().unwrap();
    assert_eq!(op.kind, OpKind::Update);
    let mut keys: Vec<&str> = op.patch.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["care_tags", "phone"]);
    assert_eq!(op.base_version, None, "never on the server yet");
    // The create, still unsent, carries the record as it now stands.
    let ops = f.store.pending_operations(1000).unwrap();
    let create = ops
        .iter()
        .find(|o| o.entity_id == r.id && o.kind == OpKind::Create)
        .unwrap();
    assert_eq!(f.store.payload(create).unwrap()["phone"], "0546-8123456");
}

#[test]
fn changing_the_id_number_moves_the_birth_date_and_checks_the_sex() {
    let f = Fixture::new();
    let r = f
        .store
        .create_resident(&f.resident("张伟", &id_for("19800101", "011"), Sex::Male))
        .unwrap();
    let moved = f
        .store
        .update_resident(&r.id, &[ResidentChange::IdNumber(Some(id_for("19810202", "013")))])
        .unwrap();
    assert_eq!(moved.birth_date.unwrap().to_string(), "1981-02-02");
    let e = f
        .store
        .update_resident(&r.id, &[ResidentChange::IdNumber(Some(id_for("19810202", "014")))])
        .unwrap_err();
    assert_eq!(e.as_validation().unwrap().field, "sex");
}

#[test]
fn delete_is_a_tombstone_that_syncs_and_leaves_search() {
    let f = Fixture::new();
    let r = f
        .store
        .create_resident(&f.resident("赵敏", &id_for("19900101", "022"), Sex::Female))
        .unwrap();
    f.store.delete_resident(&r.id).unwrap();
    let gone = f.store.get_resident(&r.id).unwrap();
    assert!(gone.meta.deleted);
    let op = f.store.pending_operations(1000).unwrap().pop().unwrap();
    assert_eq!((op.kind, op.entity_id.as_str()), (OpKind::Delete, r.id.as_str()));
    let found = f
        .store
        .search_residents(
            &ResidentQuery {
                name: Some("赵敏".into()),
                ..Default::default()
            },
            &PageRequest::default(),
        )
        .unwrap();
    assert!(found.items.is_empty());
    assert!(f.store.residents_of_household(&f.household.id).unwrap().is_empty());
    // the household can go now that nobody lives in it
    f.store.delete_household(&f.household.id).unwrap();
}

#[test]
fn places_and_households_compose_addresses_and_refuse_deleting_what_is_in_use() {
    let f = Fixture::new();
    assert_eq!(f.household.address.as_str(), "格林盛景小区3号楼2单元301");
    assert_eq!(f.household.building_id.as_deref(), Some(f.building.id.as_str()));
    assert_eq!(f.building.parent_id.as_deref(), Some(f.compound.id.as_str()));
    let e = f.store.delete_place(&f.unit.id).unwrap_err();
    assert_eq!(e.as_validation().unwrap().code, Code::NotAllowed);
    let renamed = f
        .store
        .update_place(&f.building.id, &[PlaceChange::Name("3号楼A座".into())])
        .unwrap();
    assert_eq!(renamed.name, "3号楼A座");
    let h = f
        .store
        .update_household(&f.household.id, &[HouseholdChange::Room("302".into())])
        .unwrap();
    assert_eq!(h.room, "302");
    assert_eq!(f.store.households_in(&f.building.id).unwrap().len(), 1);
    assert_eq!(
        f.store
            .places(&f.grid.id, Some(PlaceKind::Unit), Some(&f.building.id))
            .unwrap()
            .len(),
        1
    );
    // every create and update above is queued, in order
    let ops = f.store.pending_operations(1000).unwrap();
    let kinds: Vec<(&str, OpKind)> = ops.iter().map(|o| (o.entity.as_str(), o.kind)).collect();
    assert_eq!(
        kinds,
        [
            ("place", OpKind::Create),
            ("place", OpKind::Create),
            ("place", OpKind::Create),
            ("household", OpKind::Create),
            ("place", OpKind::Update),
            ("household", OpKind::Update),
        ]
    );
    assert!(ops.windows(2).all(|w| w[0].seq < w[1].seq));
}

#[test]
fn drafts_survive_a_restart_and_are_queued_only_when_submitted() {
    let f = Fixture::new();
    let draft = f.store.create_incident_draft(&f.incident("hornets_nest")).unwrap();
    assert_eq!(draft.meta.sync, SyncStatus::Draft);
    let p = f.store.attach_incident_photo(&draft.id, &photo(1)).unwrap();
    assert_eq!(p.size, 2052);
    let queued = f.store.outbox_counts().unwrap().pending;

    let path = f.path();
    let clock = f.clock.clone();
    drop(f.store);
    let store = Fixture::reopen(&path, &clock);
    let again = store.get_incident(&draft.id).unwrap();
    assert_eq!(again.status, IncidentStatus::Draft);
    assert_eq!(again.photos.len(), 1);
    assert_eq!(store.photo_bytes(&again.photos[0]).unwrap(), jpeg(1, 2048));
    assert_eq!(store.outbox_counts().unwrap().pending, queued, "drafts are not queued");

    store.set_account_id(Some("worker-0001")).unwrap();
    let submitted = store.submit_incident(&draft.id).unwrap();
    assert_eq!(submitted.status, IncidentStatus::Reported);
    assert_eq!(submitted.title, "马蜂窝", "blank title takes the category name");
    assert_eq!(submitted.reporter.as_deref(), Some("worker-0001"));
    assert_eq!(submitted.meta.sync, SyncStatus::OnlyOnDevice);
    let ops = store.pending_operations(1000).unwrap();
    let tail: Vec<&str> = ops[ops.len() - 3..].iter().map(|o| o.entity.as_str()).collect();
    assert_eq!(
        tail,
        ["incident", "photo", "incident_event"],
        "owner before photo, then the reported event"
    );
    assert!(ops.iter().all(|o| o.state == OpState::Pending));
    let timeline = store.incident_timeline(&draft.id).unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].kind, EventKind::Reported);
    // submitted incidents are no longer drafts
    let e = store
        .update_incident_draft(&draft.id, &[IncidentChange::Title("x".into())])
        .unwrap_err();
    assert_eq!(e.as_validation().unwrap().field, "status");
}

#[test]
fn resolved_on_the_spot_with_a_note_and_photos() {
    let f = Fixture::new();
    let d = f.store.create_incident_draft(&f.incident("hornets_nest")).unwrap();
    f.store.attach_incident_photo(&d.id, &photo(2)).unwrap();
    f.store.submit_incident(&d.id).unwrap();
    let event = f
        .store
        .add_incident_event(
            &d.id,
            &NewIncidentEvent {
                kind: EventKind::ResolvedOnSite,
                note: "已联系物业摘除".into(),
                photos: vec![photo(3), photo(4)],
            },
        )
        .unwrap();
    assert_eq!(event.photos.len(), 2);
    assert_eq!(
        f.store.get_incident(&d.id).unwrap().status,
        IncidentStatus::ResolvedOnSite
    );
    // resolving twice is not a valid transition
    let e = f
        .store
        .add_incident_event(
            &d.id,
            &NewIncidentEvent {
                kind: EventKind::ResolvedOnSite,
                note: "again".into(),
                photos: vec![],
            },
        )
        .unwrap_err();
    assert_eq!(e.as_validation().unwrap().field, "kind");
    let tail: Vec<String> = f
        .store
        .pending_operations(1000)
        .unwrap()
        .iter()
        .rev()
        .take(3)
        .map(|o| o.entity.as_str().to_owned())
        .collect();
    assert_eq!(tail, ["photo", "photo", "incident_event"]);
}

#[test]
fn photos_are_content_addressed_and_durable_files() {
    let f = Fixture::new();
    let d1 = f.store.create_incident_draft(&f.incident("gas_no_alarm")).unwrap();
    let d2 = f.store.create_incident_draft(&f.incident("gas_no_alarm")).unwrap();
    let a = f.store.attach_incident_photo(&d1.id, &photo(9)).unwrap();
    let b = f.store.attach_incident_photo(&d2.id, &photo(9)).unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!(a.sha256, b.sha256);
    let files: Vec<_> = std::fs::read_dir(f.store.photo_dir()).unwrap().collect();
    assert_eq!(files.len(), 1, "the same bytes are stored once");
    use sha2::Digest;
    assert_eq!(a.sha256, hex::encode(sha2::Sha256::digest(jpeg(9, 2048))));
    // from a file
    let src = f.dir.path().join("camera.jpg");
    std::fs::write(&src, jpeg(10, 4096)).unwrap();
    let c = f
        .store
        .attach_incident_photo(
            &d1.id,
            &NewPhoto {
                source: PhotoSource::File(src.clone()),
                taken_at_ms: None,
                location: None,
            },
        )
        .unwrap();
    assert_eq!(c.mime, "image/jpeg");
    assert!(src.exists(), "the camera's file is copied, not moved");
    // discarding a draft removes it and its photo records
    f.store.discard_incident_draft(&d2.id).unwrap();
    assert!(matches!(f.store.get_incident(&d2.id), Err(Error::NotFound { .. })));
}

#[test]
fn service_logs_record_help_given() {
    let f = Fixture::new();
    let a = f
        .store
        .create_resident(&f.resident("周桂英", &id_for("19380505", "024"), Sex::Female))
        .unwrap();
    let b = f
        .store
        .create_resident(&f.resident("周德胜", &id_for("19360606", "015"), Sex::Male))
        .unwrap();
    let log = f
        .store
        .create_service_log(&NewServiceLog {
            grid_id: f.grid.id.clone(),
            kind: ServiceKind::MedicineDelivery,
            resident_ids: vec![a.id.clone(), b.id.clone(), a.id.clone()],
            notes: "送降压药两盒".into(),
            occurred_at_ms: None,
            photos: vec![photo(5)],
        })
        .unwrap();
    assert_eq!(log.resident_ids, vec![a.id.clone(), b.id.clone()], "repeats dropped");
    assert_eq!(log.occurred_at_ms, NOW_MS);
    assert_eq!(log.photos.len(), 1);
    assert_eq!(f.store.get_service_log(&log.id).unwrap(), log);
    let tail: Vec<String> = f
        .store
        .pending_operations(1000)
        .unwrap()
        .iter()
        .rev()
        .take(2)
        .map(|o| o.entity.as_str().to_owned())
        .collect();
    assert_eq!(tail, ["photo", "service_log"]);
}

#[test]
fn bulk_import_reports_bad_rows_and_writes_the_good_ones() {
    let f = Fixture::new();
    let mut rng = datagen::Rng::new(3);
    let mut rows: Vec<NewResident> = (0..30)
        .map(|_| datagen::resident(&mut rng, &f.grid.id, Some(&f.household.id)))
        .collect();
    rows[4].id_number = Some("110105194912310021".into());
    rows[17].phone = Some("12345".into());
    rows[29].id_number = rows[0].id_number.clone(); // a duplicate of an earlier row
    rows[29].sex = rows[0].sex;
    let report = f.store.import_residents(&rows).unwrap();
    assert_eq!(report.created.len(), 27);
    let bad: Vec<(usize, String)> = report.rejected.iter().map(|(i, e)| (*i, e.field.clone())).collect();
    assert_eq!(
        bad,
        [
            (4, "id_number".to_owned()),
            (17, "phone".to_owned()),
            (29, "id_number".to_owned())
        ]
    );
    assert_eq!(f.store.dashboard(&f.grid.id).unwrap().residents, 27);
}

#[test]
fn catalogue_is_versioned() {
    let f = Fixture::new();
    assert_eq!(f.store.catalogue().version, 1);
    let mut newer = Catalogue::builtin();
    newer.version = 2;
    newer.categories.retain(|c| c.code != "illegal_parking");
    assert!(f.store.replace_catalogue(newer.clone()).unwrap());
    assert!(
        !f.store.replace_catalogue(Catalogue::builtin()).unwrap(),
        "older ones are ignored"
    );
    let e = f
        .store
        .create_incident_draft(&f.incident("illegal_parking"))
        .unwrap_err();
    assert_eq!(e.as_validation().unwrap().code, Code::UnknownCategory);
    // kept across a restart
    let (path, clock) = (f.path(), f.clock.clone());
    drop(f.store);
    assert_eq!(Fixture::reopen(&path, &clock).catalogue().version, 2);
}

#[test]
fn report_in_one_step_and_orphan_photos_are_collected_at_open() {
    let f = Fixture::new();
    let i = f
        .store
        .report_incident(&f.incident("ebike_indoor_charging"), &[photo(11)])
        .unwrap();
    assert_eq!((i.status, i.photos.len()), (IncidentStatus::Reported, 1));
    let tail: Vec<String> = f
        .store
        .pending_operations(1000)
        .unwrap()
        .iter()
        .rev()
        .take(3)
        .map(|o| o.entity.as_str().to_owned())
        .collect();
    assert_eq!(tail, ["incident_event", "photo", "incident"]);

    // Refused at submission (broken_facility needs a description): nothing
    // is recorded, and the copied photo file goes at the next open.
    let before = f.store.outbox_counts().unwrap();
    let bad = NewIncident {
        extra: Vec::new(),
        description: String::new(),
        ..f.incident("broken_facility")
    };
    let e = f.store.report_incident(&bad, &[photo(12)]).unwrap_err();
    assert_eq!(e.as_validation().unwrap().field, "description");
    assert_eq!(f.store.outbox_counts().unwrap(), before);
    assert_eq!(std::fs::read_dir(f.store.photo_dir()).unwrap().count(), 2);
    let (path, clock) = (f.path(), f.clock.clone());
    drop(f.store);
    let store = Fixture::reopen(&path, &clock);
    let files: Vec<String> = std::fs::read_dir(store.photo_dir())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(files, [i.photos[0].sha256.clone()]);
}

/// A district spreadsheet: Chinese labels read, each bad line refused on its
/// own with the field and the rule (by line number, header = 1), and the
/// store's own rules applied to the rest.
#[test]
fn a_residents_csv_with_chinese_labels_imports_and_refuses_by_line() {
    let f = Fixture::new();
    let csv = format!(
        "name,sex,id_number,phone,residence,care_tags,notes\n\
         张伟,男,{},13812345678,户籍,elderly_living_alone；disabled,\n\
         李娜,女,,14012345678,流动,,二楼\n\
         王五,未知,,,,,\n\
         赵六,男,,,临时,,\n\
         孙七,女,,,,pets,\n\
         周八,男,110101199003070000,19412345678,,,\n\
         \"吴九,男\n",
        id_for("19500101", "011")
    );
    let report = f.store.import_residents_csv(csv.as_bytes(), &f.grid.id).unwrap();
    assert_eq!(report.created.len(), 2);
    let refused: Vec<(u64, &str, Code)> = report
        .refused
        .iter()
        .map(|(line, v)| (*line, v.field.as_str(), v.code))
        .collect();
    assert_eq!(
        refused,
        vec![
            (4, "sex", Code::BadFormat),
            (5, "residence", Code::BadFormat),
            (6, "care_tags", Code::BadFormat),
            (7, "id_number", Code::BadCheckCharacter),
            (8, "row", Code::Unreadable),
        ]
    );
    let first = f.store.get_resident(&report.created[0]).unwrap();
    assert_eq!((first.sex, first.residence), (Sex::Male, ResidenceStatus::Registered));
    assert_eq!(
        first.care_tags,
        vec![CareTag::Disabled, CareTag::ElderlyLivingAlone],
        "sorted by code"
    );
    let second = f.store.get_resident(&report.created[1]).unwrap();
    assert_eq!((second.sex, second.residence), (Sex::Female, ResidenceStatus::Floating));
    // 140 is no operator's segment: saved, with a warning. Line 7's (194)
    // was refused for its ID number, so it warns of nothing.
    assert_eq!(second.phone.as_ref().map(|p| p.as_str()), Some("14012345678"));
    assert_eq!(report.warnings, vec![(3, "phone", "unallocated_segment")]);

    // A file that is not a residents table is an error, and writes nothing.
    let before = f.snapshot();
    let e = f
        .store
        .import_residents_csv("姓名,性别\n张伟,男\n".as_bytes(), &f.grid.id)
        .unwrap_err();
    assert_eq!(e.as_validation().unwrap().field, "name");
    assert_eq!(f.snapshot(), before);
}
