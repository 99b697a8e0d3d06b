//! Inspections: every item checked by the rules the server applies; a failed
//! item raises its incident, with the item's photos, in the same transaction.

use fieldgrid_core::*;

use crate::common::{Fixture, NOW_MS, location, photo};

fn yes_no(item: &str, value: bool) -> ItemAnswer {
    ItemAnswer {
        item: item.into(),
        answer: Answer::YesNo(value),
    }
}

pub(crate) fn gas(f: &Fixture, detector: bool) -> NewInspection {
    NewInspection {
        grid_id: f.grid.id.clone(),
        place_id: Some(f.unit.id.clone()),
        checklist: "gas_safety".into(),
        answers: vec![
            yes_no("detector_installed", detector),
            yes_no("nothing_on_pipes", true),
            yes_no("ventilation_ok", true),
            ItemAnswer {
                item: "hose_years".into(),
                answer: Answer::Number(4.0),
            },
        ],
        photos: vec![ItemPhoto {
            item: "meter_photo".into(),
            photo: photo(1),
        }],
        location: Some(location()),
        notes: "住户配合检查".into(),
        occurred_at_ms: Some(NOW_MS - 60_000),
    }
}

/// The table rows (photo files a refused capture staged are collected at
/// the next open, as after a crash).
fn rows(f: &Fixture) -> Vec<String> {
    f.snapshot()
        .into_iter()
        .filter(|l| !l.starts_with("photo file"))
        .collect()
}

#[test]
fn a_failed_item_raises_its_incident_with_the_item_s_photos_in_one_step() {
    let f = Fixture::new();
    let mut input = gas(&f, false);
    input.photos.push(ItemPhoto {
        item: "detector_installed".into(),
        photo: photo(2),
    });
    let report = f.store.record_inspection(&input).unwrap();
    let inspection = &report.inspection;
    assert_eq!(report.raised.len(), 1);
    let incident = &report.raised[0];
    assert_eq!(
        (incident.category.as_str(), incident.status, incident.photos.len()),
        ("gas_no_alarm", IncidentStatus::Reported, 1)
    );
    assert!(incident.description.as_str().contains("已安装可燃气体报警器"));
    assert_eq!(incident.location, Some(location()));
    assert_eq!(inspection.raised_incidents, std::slice::from_ref(&incident.id));
    assert_eq!(inspection.answers["detector_installed"], Answer::YesNo(false));
    assert_eq!(inspection.photos.len(), 2);
    assert_eq!(inspection.item_photos["meter_photo"].len(), 1);
    assert_eq!(inspection.meta.sync, SyncStatus::OnlyOnDevice);
    assert_eq!(f.store.get_inspection(&inspection.id).unwrap(), *inspection);
    assert_eq!(
        f.store.inspections_of(&f.grid.id, 10).unwrap(),
        std::slice::from_ref(inspection)
    );
    // The server reads them in this order: the incident before the
    // inspection that names it, the inspection before its photos.
    let ops = f.store.pending_operations(100).unwrap();
    let at = |entity: Entity, id: &str| {
        ops.iter()
            .position(|o| o.entity == entity && o.entity_id == id)
            .unwrap()
    };
    assert!(at(Entity::Incident, &incident.id) < at(Entity::Inspection, &inspection.id));
    for p in &inspection.photos {
        assert!(at(Entity::Inspection, &inspection.id) < at(Entity::Photo, &p.id));
    }
}

#[test]
fn an_inspection_that_passes_raises_nothing() {
    let f = Fixture::new();
    let report = f.store.record_inspection(&gas(&f, true)).unwrap();
    assert!(report.raised.is_empty() && report.inspection.raised_incidents.is_empty());
    assert_eq!(
        f.store
            .list_incidents(&IncidentQuery::default(), &PageRequest::default())
            .unwrap()
            .items
            .len(),
        0
    );
}

#[test]
fn bad_answers_are_refused_by_item_and_write_nothing() {
    let f = Fixture::new();
    let before = rows(&f);
    type Change = Box<dyn Fn(&mut NewInspection)>;
    let cases: Vec<(Change, &str)> = vec![
        // The category raised needs a photo, and the failed item has none.
        (Box::new(|_| {}), "item_photos.detector_installed"),
        (Box::new(|i| i.checklist = "fire_drill".into()), "checklist"),
        (Box::new(|i| i.answers.push(yes_no("张三13812345678", true))), "answers"),
        (
            Box::new(|i| i.answers.push(yes_no("nothing_on_pipes", false))),
            "answers.nothing_on_pipes",
        ),
        (
            Box::new(|i| {
                i.answers[3].answer = Answer::Number(80.0);
            }),
            "answers.hose_years",
        ),
        (
            Box::new(|i| {
                i.answers[1].answer = Answer::Text("是".into());
            }),
            "answers.nothing_on_pipes",
        ),
        (Box::new(|i| drop(i.answers.remove(2))), "answers.ventilation_ok"),
        (Box::new(|i| i.location = None), "location"),
        (Box::new(|i| i.photos[0].item = "nowhere".into()), "photos[0]"),
        (
            Box::new(|i| i.occurred_at_ms = Some(NOW_MS + 86_400_000)),
            "occurred_at_ms",
        ),
    ];
    for (change, field) in cases {
        let mut input = gas(&f, false);
        change(&mut input);
        let e = f.store.record_inspection(&input).unwrap_err();
        assert_eq!(e.as_validation().map(|v| v.field.as_str()), Some(field), "{e:?}");
        assert_eq!(rows(&f), before, "{field}: nothing written");
    }
    // A place of another grid.
    let other = f.store.put_grid(&datagen::grid(2)).unwrap();
    let mut input = gas(&f, true);
    input.grid_id = other.id;
    let e = f.store.record_inspection(&input).unwrap_err();
    assert_eq!(e.as_validation().unwrap().field, "place_id");
    // A choice must be one the item offers; a required photo item needs one.
    let fire = |extinguisher: &str, photos: Vec<ItemPhoto>| NewInspection {
        grid_id: f.grid.id.clone(),
        place_id: None,
        checklist: "fire_exits".into(),
        answers: vec![
            yes_no("exit_clear", true),
            ItemAnswer {
                item: "extinguisher".into(),
                answer: Answer::Text(extinguisher.into()),
            },
        ],
        photos,
        location: Some(location()),
        notes: String::new(),
        occurred_at_ms: None,
    };
    let exit = || {
        vec![ItemPhoto {
            item: "exit_photo".into(),
            photo: photo(3),
        }]
    };
    let field = |r: Result<InspectionReport>| r.unwrap_err().as_validation().unwrap().field.clone();
    assert_eq!(
        field(f.store.record_inspection(&fire("坏了", exit()))),
        "answers.extinguisher"
    );
    assert_eq!(
        field(f.store.record_inspection(&fire("完好", vec![]))),
        "item_photos.exit_photo"
    );
    // An expired extinguisher raises "other safety hazard", which needs a
    // photo (the item's) and a description (the inspection writes it).
    assert_eq!(
        field(f.store.record_inspection(&fire("过期", exit()))),
        "item_photos.extinguisher"
    );
    let mut photos = exit();
    photos.push(ItemPhoto {
        item: "extinguisher".into(),
        photo: photo(4),
    });
    let report = f.store.record_inspection(&fire("过期", photos)).unwrap();
    assert_eq!(report.raised[0].category, "other_safety_hazard");
    assert_eq!(
        report.raised[0].photos.len(),
        1,
        "the extinguisher's photo, not the exit's"
    );
}
