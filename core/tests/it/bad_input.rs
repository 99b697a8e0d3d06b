//! Bad input across the capture API: a typed error naming the field, no
//! personal data in the message, and nothing written.

use fieldgrid_core::*;

use crate::common::*;

type Case<'a> = (&'a str, &'a str, Box<dyn Fn() -> Result<()> + 'a>);

#[test]
fn every_bad_input_is_refused_by_field_and_changes_nothing() {
    let f = Fixture::new();
    let s = &f.store;
    let good_id = id_for("19700101", "031");
    let existing = s.create_resident(&f.resident("王芳", &good_id, Sex::Male)).unwrap();
    let deleted = s
        .create_resident(&f.resident("李娜", &id_for("19710101", "042"), Sex::Female))
        .unwrap();
    s.delete_resident(&deleted.id).unwrap();
    let draft = s.create_incident_draft(&f.incident("hornets_nest")).unwrap();
    let needs_description = s
        .create_incident_draft(&NewIncident {
            extra: Vec::new(),
            description: String::new(),
            ..f.incident("broken_facility")
        })
        .unwrap();
    let submitted = s.create_incident_draft(&f.incident("neighbour_dispute")).unwrap();
    s.submit_incident(&submitted.id).unwrap();
    let missing_file = f.dir.path().join("no-such-photo.jpg");

    let resident = |edit: &dyn Fn(&mut NewResident)| {
        let mut r = f.resident("陈静", &id_for("19850707", "062"), Sex::Female);
        edit(&mut r);
        s.create_resident(&r).map(drop)
    };
    let incident = |edit: &dyn Fn(&mut NewIncident)| {
        let mut i = f.incident("hornets_nest");
        edit(&mut i);
        s.create_incident_draft(&i).map(drop)
    };
    let attach = |source: PhotoSource| {
        s.attach_incident_photo(
            &draft.id,
            &NewPhoto {
                source,
                taken_at_ms: None,
                location: None,
            },
        )
        .map(drop)
    };
    let future_id = id_for("20270101", "011");
    let cases: Vec<Case> = vec![
        (
            "ID with a wrong check character",
            "id_number",
            Box::new(|| resident(&|r| r.id_number = Some("370502198507070621".into()))),
        ),
        (
            "legacy 15-digit ID",
            "id_number",
            Box::new(|| resident(&|r| r.id_number = Some("370502850707062".into()))),
        ),
        (
            "ID born in the future",
            "id_number",
            Box::new(|| {
                resident(&|r| {
                    r.id_number = Some(future_id.clone());
                    r.sex = Sex::Male;
                })
            }),
        ),
        (
            "ID with an unknown province",
            "id_number",
            Box::new(|| resident(&|r| r.id_number = Some("990502198507070620".into()))),
        ),
        (
            "ID with letters",
            "id_number",
            Box::new(|| resident(&|r| r.id_number = Some("37050219850707A62X".into()))),
        ),
        (
            "sex contradicts the ID",
            "sex",
            Box::new(|| resident(&|r| r.sex = Sex::Male)),
        ),
        (
            "birth date contradicts the ID",
            "birth_date",
            Box::new(|| resident(&|r| r.birth_date = chrono::NaiveDate::from_ymd_opt(1985, 7, 8))),
        ),
        (
            "birth date in the future, no ID",
            "birth_date",
            Box::new(|| {
                resident(&|r| {
                    r.id_number = None;
                    r.birth_date = chrono::NaiveDate::from_ymd_opt(2030, 1, 1);
                })
            }),
        ),
        (
            "mobile with 10 digits",
            "phone",
            Box::new(|| resident(&|r| r.phone = Some("1381234567".into()))),
        ),
        (
            "landline too short",
            "phone",
            Box::new(|| resident(&|r| r.phone = Some("0546-12345".into()))),
        ),
        ("blank name", "name", Box::new(|| resident(&|r| r.name = "   ".into()))),
        (
            "name of 51 characters",
            "name",
            Box::new(|| resident(&|r| r.name = "欧".repeat(51))),
        ),
        (
            "control character in a name",
            "name",
            Box::new(|| resident(&|r| r.name = "陈\u{7}静".into())),
        ),
        (
            "notes over 2000 characters",
            "notes",
            Box::new(|| resident(&|r| r.notes = "记".repeat(2001))),
        ),
        (
            "unknown grid",
            "grid_id",
            Box::new(|| resident(&|r| r.grid_id = "grid-9999".into())),
        ),
        (
            "unknown household",
            "household_id",
            Box::new(|| resident(&|r| r.household_id = Some("no-such-household".into()))),
        ),
        (
            "duplicate ID number",
            "id_number",
            Box::new(|| {
                resident(&|r| {
                    r.id_number = Some(good_id.clone());
                    r.sex = Sex::Male;
                })
            }),
        ),
        (
            "update of a deleted resident",
            "id",
            Box::new(|| {
                s.update_resident(&deleted.id, &[ResidentChange::Name("李娜娜".into())])
                    .map(drop)
            }),
        ),
        (
            "update with a bad phone",
            "phone",
            Box::new(|| {
                s.update_resident(&existing.id, &[ResidentChange::Phone(Some("abc".into()))])
                    .map(drop)
            }),
        ),
        (
            "household in an unknown unit",
            "unit_id",
            Box::new(|| {
                s.create_household(&NewHousehold {
                    extra: Vec::new(),
                    grid_id: f.grid.id.clone(),
                    unit_id: Some("nowhere".into()),
                    room: "101".into(),
                    address: None,
                    notes: String::new(),
                })
                .map(drop)
            }),
        ),
        (
            "household with a blank room",
            "room",
            Box::new(|| {
                s.create_household(&NewHousehold {
                    extra: Vec::new(),
                    grid_id: f.grid.id.clone(),
                    unit_id: Some(f.unit.id.clone()),
                    room: " ".into(),
                    address: None,
                    notes: String::new(),
                })
                .map(drop)
            }),
        ),
        (
            "unit without a building",
            "parent_id",
            Box::new(|| {
                s.create_place(&NewPlace {
                    extra: Vec::new(),
                    grid_id: f.grid.id.clone(),
                    kind: PlaceKind::Unit,
                    parent_id: None,
                    name: "1单元".into(),
                })
                .map(drop)
            }),
        ),
        (
            "building inside a unit",
            "parent_id",
            Box::new(|| {
                s.create_place(&NewPlace {
                    extra: Vec::new(),
                    grid_id: f.grid.id.clone(),
                    kind: PlaceKind::Building,
                    parent_id: Some(f.unit.id.clone()),
                    name: "9号楼".into(),
                })
                .map(drop)
            }),
        ),
        (
            "unknown incident category",
            "category",
            Box::new(|| incident(&|i| i.category = "alien_landing".into())),
        ),
        (
            "latitude 91",
            "location.latitude",
            Box::new(|| {
                incident(&|i| {
                    i.location = Some(validate::Location {
                        latitude: 91.0,
                        ..location()
                    })
                })
            }),
        ),
        (
            "longitude NaN",
            "location.longitude",
            Box::new(|| {
                incident(&|i| {
                    i.location = Some(validate::Location {
                        longitude: f64::NAN,
                        ..location()
                    })
                })
            }),
        ),
        (
            "negative accuracy",
            "location.accuracy_m",
            Box::new(|| {
                incident(&|i| {
                    i.location = Some(validate::Location {
                        accuracy_m: Some(-3.0),
                        ..location()
                    })
                })
            }),
        ),
        (
            "title over 100 characters",
            "title",
            Box::new(|| incident(&|i| i.title = "马".repeat(101))),
        ),
        (
            "incident tomorrow",
            "occurred_at_ms",
            Box::new(|| incident(&|i| i.occurred_at_ms = Some(NOW_MS + 86_400_000))),
        ),
        (
            "unknown involved resident",
            "involved_residents",
            Box::new(|| incident(&|i| i.involved_residents = vec!["nobody".into()])),
        ),
        (
            "submit without the required photo",
            "photos",
            Box::new(|| s.submit_incident(&draft.id).map(drop)),
        ),
        (
            "submit without the required description",
            "description",
            Box::new(|| s.submit_incident(&needs_description.id).map(drop)),
        ),
        (
            "edit a submitted incident as a draft",
            "status",
            Box::new(|| {
                s.update_incident_draft(&submitted.id, &[IncidentChange::Title("改".into())])
                    .map(drop)
            }),
        ),
        (
            "missing photo file",
            "photo",
            Box::new(|| attach(PhotoSource::File(missing_file.clone()))),
        ),
        ("empty photo", "photo", Box::new(|| attach(PhotoSource::Bytes(vec![])))),
        (
            "oversized photo",
            "photo",
            Box::new(|| attach(PhotoSource::Bytes(jpeg(1, 10 * 1024 * 1024)))),
        ),
        (
            "a PDF instead of a photo",
            "photo",
            Box::new(|| attach(PhotoSource::Bytes(b"%PDF-1.7 not a photo".to_vec()))),
        ),
        (
            "centre-only event from the phone",
            "kind",
            Box::new(|| {
                s.add_incident_event(
                    &submitted.id,
                    &NewIncidentEvent {
                        kind: EventKind::Closed,
                        note: "x".into(),
                        photos: vec![],
                    },
                )
                .map(drop)
            }),
        ),
        (
            "resolved on the spot without a note",
            "note",
            Box::new(|| {
                s.add_incident_event(
                    &submitted.id,
                    &NewIncidentEvent {
                        kind: EventKind::ResolvedOnSite,
                        note: " ".into(),
                        photos: vec![],
                    },
                )
                .map(drop)
            }),
        ),
        (
            "service log for a deleted resident",
            "resident_ids",
            Box::new(|| {
                s.create_service_log(&NewServiceLog {
                    grid_id: f.grid.id.clone(),
                    kind: ServiceKind::Visit,
                    resident_ids: vec![deleted.id.clone()],
                    notes: "探访".into(),
                    occurred_at_ms: None,
                    photos: vec![],
                })
                .map(drop)
            }),
        ),
        (
            "other assistance without notes",
            "notes",
            Box::new(|| {
                s.create_service_log(&NewServiceLog {
                    grid_id: f.grid.id.clone(),
                    kind: ServiceKind::OtherAssistance,
                    resident_ids: vec![],
                    notes: String::new(),
                    occurred_at_ms: None,
                    photos: vec![],
                })
                .map(drop)
            }),
        ),
        (
            "service log photo list too long",
            "photos",
            Box::new(|| {
                s.create_service_log(&NewServiceLog {
                    grid_id: f.grid.id.clone(),
                    kind: ServiceKind::Visit,
                    resident_ids: vec![],
                    notes: "探访".into(),
                    occurred_at_ms: None,
                    photos: (0..10).map(photo).collect(),
                })
                .map(drop)
            }),
        ),
    ];
    assert!(cases.len() >= 25);

    let before = f.snapshot();
    let pii = ["陈静", "王芳", "370502", "1381234567", "0546-12345"];
    for (what, field, call) in &cases {
        let err = call().expect_err(what);
        let v = err
            .as_validation()
            .unwrap_or_else(|| panic!("{what}: not a validation error: {err:?}"));
        assert_eq!(v.field, *field, "{what}");
        let message = err.to_string();
        assert!(message.contains(field), "{what}: message names the field: {message}");
        for p in pii {
            assert!(!message.contains(p), "{what}: message leaks personal data: {message}");
        }
        assert_eq!(f.snapshot(), before, "{what}: the store changed");
    }
}

#[test]
fn unknown_ids_are_not_found() {
    let f = Fixture::new();
    assert!(matches!(
        f.store.get_resident("nope"),
        Err(Error::NotFound { entity: "resident", .. })
    ));
    assert!(matches!(
        f.store.update_resident("nope", &[]),
        Err(Error::NotFound { .. })
    ));
    assert!(matches!(f.store.delete_household("nope"), Err(Error::NotFound { .. })));
    assert!(matches!(f.store.submit_incident("nope"), Err(Error::NotFound { .. })));
}
