//! The district's own fields (`extra`): checked at capture by the rules the
//! server applies, stored with the record, changed by `update_extra`.

use fieldgrid_core::*;
use serde_json::{Value, json};

use crate::common::*;

/// The fixture's store with the demo district's fields published.
fn with_fields() -> Fixture {
    let f = Fixture::new();
    let mut catalogue = Catalogue::builtin();
    catalogue.version = 2;
    catalogue.field_defs = catalogue::demo_field_defs();
    assert!(f.store.replace_catalogue(catalogue).unwrap());
    f
}

fn answer(item: &str, answer: Answer) -> ItemAnswer {
    ItemAnswer {
        item: item.into(),
        answer,
    }
}

fn household(f: &Fixture, room: &str, extra: Vec<ItemAnswer>) -> NewHousehold {
    NewHousehold {
        grid_id: f.grid.id.clone(),
        unit_id: Some(f.unit.id.clone()),
        room: room.into(),
        address: None,
        notes: String::new(),
        extra,
    }
}

fn error_of(r: Result<impl std::fmt::Debug>) -> (String, Code) {
    match r {
        Err(Error::Validation(v)) => (v.field, v.code),
        other => panic!("expected a validation error, got {other:?}"),
    }
}

/// The outbox's operations as `(kind, patch)`.
fn outbox(f: &Fixture, id: &str) -> Vec<(String, Option<Value>)> {
    let raw = f.raw();
    let mut stmt = raw
        .prepare("SELECT kind, patch FROM outbox WHERE entity_id = ?1 ORDER BY rowid")
        .unwrap();
    stmt.query_map([id], |r| {
        let patch: Option<String> = r.get(1)?;
        Ok((r.get(0)?, patch.map(|p| serde_json::from_str(&p).unwrap())))
    })
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

#[test]
fn a_new_record_gives_the_required_fields_and_values_that_fit() {
    let f = with_fields();
    let before = f.snapshot();
    let smoke = answer("smoke_alarm", Answer::YesNo(true));
    for (extra, field, code) in [
        (vec![smoke.clone()], "extra.gas_supplier", Code::Required),
        (
            vec![answer("gas_supplier", Answer::Text("煤气罐".into()))],
            "extra.gas_supplier",
            Code::BadFormat,
        ),
        (
            vec![
                answer("gas_supplier", Answer::Text("管道天然气".into())),
                answer("smoke_alarm", Answer::Number(1.0)),
            ],
            "extra.smoke_alarm",
            Code::BadFormat,
        ),
        (
            vec![
                answer("gas_supplier", Answer::Text("管道天然气".into())),
                smoke.clone(),
                smoke.clone(),
            ],
            "extra.smoke_alarm",
            Code::Duplicate,
        ),
        // Not a household's field (a resident's), and a code no one
        // published: named as `extra`, what was typed never repeated.
        (
            vec![answer("disability_grade", Answer::Text("一级".into()))],
            "extra",
            Code::UnknownReference,
        ),
        (
            vec![answer("张伟的电话13812345678", Answer::YesNo(true))],
            "extra",
            Code::UnknownReference,
        ),
    ] {
        let got = error_of(f.store.create_household(&household(&f, "302", extra.clone())));
        assert_eq!(got, (field.to_owned(), code), "{extra:?}");
    }
    assert_eq!(f.snapshot(), before, "nothing written");

    let h = f
        .store
        .create_household(&household(
            &f,
            "302",
            vec![answer("gas_supplier", Answer::Text("管道天然气".into())), smoke],
        ))
        .unwrap();
    assert_eq!(h.extra.get("gas_supplier"), Some(Answer::Text("管道天然气".into())));
    assert_eq!(f.store.get_household(&h.id).unwrap(), h);
    // A resident's number is checked against its range.
    let mut r = f.resident("张伟", &id_for("19491231", "001"), Sex::Male);
    r.extra = vec![answer("monthly_allowance", Answer::Number(20_000.0))];
    assert_eq!(
        error_of(f.store.create_resident(&r)),
        ("extra.monthly_allowance".to_owned(), Code::OutOfRange)
    );
    r.extra = vec![answer("monthly_allowance", Answer::Number(1_200.0))];
    let resident = f.store.create_resident(&r).unwrap();
    assert_eq!(
        resident.extra.0["monthly_allowance"],
        json!(1200),
        "one spelling per number"
    );
    assert_eq!(f.store.get_resident(&resident.id).unwrap().extra, resident.extra);
}

#[test]
fn changing_fields_queues_the_values_changed_and_keeps_the_others() {
    let f = with_fields();
    let h = f
        .store
        .create_household(&household(
            &f,
            "302",
            vec![answer("gas_supplier", Answer::Text("管道天然气".into()))],
        ))
        .unwrap();
    let set = [answer("smoke_alarm", Answer::YesNo(false))];
    let extra = f.store.update_extra(Entity::Household, &h.id, &set, &[]).unwrap();
    assert_eq!(
        serde_json::to_value(&extra).unwrap(),
        json!({"gas_supplier": "管道天然气", "smoke_alarm": false})
    );
    let ops = outbox(&f, &h.id);
    assert_eq!(ops.len(), 2, "{ops:?}");
    assert_eq!(
        ops[1],
        ("update".to_owned(), Some(json!({"extra": {"smoke_alarm": false}}))),
        "only what changed: the server merges it field by field"
    );
    // The same values again change nothing; a cleared optional field goes.
    f.store.update_extra(Entity::Household, &h.id, &set, &[]).unwrap();
    assert_eq!(outbox(&f, &h.id).len(), 2);
    let extra = f
        .store
        .update_extra(Entity::Household, &h.id, &[], &["smoke_alarm".into()])
        .unwrap();
    assert_eq!(extra.0.len(), 1);
    assert_eq!(f.store.get_household(&h.id).unwrap().extra, extra);
    assert_eq!(
        outbox(&f, &h.id).last().unwrap().1,
        Some(json!({"extra": {"smoke_alarm": null}})),
        "a cleared value is a null"
    );

    let before = f.snapshot();
    for (set, clear, field, code) in [
        (
            vec![],
            vec!["gas_supplier".to_owned()],
            "extra.gas_supplier",
            Code::Required,
        ),
        (
            vec![],
            vec!["no_such_field".to_owned()],
            "extra",
            Code::UnknownReference,
        ),
        (
            vec![answer("gas_supplier", Answer::Text("电".into()))],
            vec![],
            "extra.gas_supplier",
            Code::BadFormat,
        ),
        (
            vec![answer("gas_supplier", Answer::Text(String::new()))],
            vec![],
            "extra.gas_supplier",
            Code::BadFormat,
        ),
        (
            vec![answer("smoke_alarm", Answer::Number(f64::NAN))],
            vec![],
            "extra.smoke_alarm",
            Code::BadFormat,
        ),
    ] {
        let got = error_of(f.store.update_extra(Entity::Household, &h.id, &set, &clear));
        assert_eq!(got, (field.to_owned(), code));
    }
    // Kinds without the district's fields, and records that are not there.
    assert_eq!(
        error_of(f.store.update_extra(Entity::ServiceLog, &h.id, &set, &[])),
        ("extra".to_owned(), Code::NotAllowed)
    );
    assert!(matches!(
        f.store.update_extra(Entity::Household, &new_id(), &set, &[]),
        Err(Error::NotFound { .. })
    ));
    assert_eq!(f.snapshot(), before, "nothing written");

    // A required text field is not emptied by blank text either.
    let mut c = (*f.store.catalogue()).clone();
    c.version += 1;
    c.field_defs
        .iter_mut()
        .for_each(|d| d.item.required |= d.item.code == "property_company");
    f.store.replace_catalogue(c).unwrap();
    let company = |name: &str| [answer("property_company", Answer::Text(name.into()))];
    f.store
        .update_extra(Entity::Place, &f.unit.id, &company("万科物业"), &[])
        .unwrap();
    assert_eq!(
        error_of(f.store.update_extra(Entity::Place, &f.unit.id, &company(" "), &[])),
        ("extra.property_company".to_owned(), Code::Required)
    );
}

#[test]
fn an_incident_draft_is_checked_for_shape_and_submitted_with_its_required_fields() {
    let f = Fixture::new();
    let mut catalogue = Catalogue::builtin();
    catalogue.version = 2;
    catalogue.field_defs = catalogue::demo_field_defs();
    let affected = catalogue
        .field_defs
        .iter_mut()
        .find(|d| d.item.code == "people_affected")
        .unwrap();
    affected.item.required = true;
    f.store.replace_catalogue(catalogue).unwrap();

    let mut input = f.incident("hornets_nest");
    input.extra = vec![answer("people_affected", Answer::Number(-1.0))];
    assert_eq!(
        error_of(f.store.create_incident_draft(&input)),
        ("extra.people_affected".to_owned(), Code::OutOfRange)
    );
    input.extra.clear();
    let draft = f.store.create_incident_draft(&input).unwrap();
    f.store.attach_incident_photo(&draft.id, &photo(1)).unwrap();
    assert_eq!(
        error_of(f.store.submit_incident(&draft.id)),
        ("extra.people_affected".to_owned(), Code::Required)
    );
    let set = [answer("people_affected", Answer::Number(12.0))];
    f.store.update_extra(Entity::Incident, &draft.id, &set, &[]).unwrap();
    assert!(outbox(&f, &draft.id).is_empty(), "a draft is not queued");
    let reported = f.store.submit_incident(&draft.id).unwrap();
    assert_eq!(reported.extra.get("people_affected"), Some(Answer::Number(12.0)));
    // Reported: changed by the centre's timeline, not by the phone.
    assert_eq!(
        error_of(f.store.update_extra(Entity::Incident, &draft.id, &set, &[])),
        ("status".to_owned(), Code::NotAllowed)
    );
}

#[test]
fn a_field_required_later_never_blocks_editing_an_older_record() {
    let f = Fixture::new();
    let h = f.store.create_household(&household(&f, "302", vec![])).unwrap();
    let mut catalogue = Catalogue::builtin();
    catalogue.version = 2;
    catalogue.field_defs = catalogue::demo_field_defs();
    f.store.replace_catalogue(catalogue).unwrap();
    let set = [answer("smoke_alarm", Answer::YesNo(true))];
    f.store.update_extra(Entity::Household, &h.id, &set, &[]).unwrap();
    f.store
        .update_household(&h.id, &[HouseholdChange::Notes("新装烟感".into())])
        .unwrap();
}

/// A district's own care tag and service kind: refused until its catalogue
/// has them; then captured, counted on the dashboard, and a log of the kind
/// completes the visits of a rule that names both.
#[test]
fn a_districts_care_tag_and_service_kind_are_captured_counted_and_complete_its_visits() {
    let f = Fixture::new();
    let mut input = f.resident("张伟", &id_for("19491231", "001"), Sex::Male);
    input.care_tags = vec![CareTag::Disabled, CareTag::new("key_watch")];
    assert_eq!(
        error_of(f.store.create_resident(&input)),
        ("care_tags".to_owned(), Code::BadFormat)
    );
    let term = |code: &str, name: &str| catalogue::Term {
        code: code.into(),
        name_zh: name.into(),
        retired: false,
    };
    let mut c = Catalogue::builtin();
    c.version = 2;
    c.care_tags.push(term("key_watch", "重点关注人员"));
    c.service_kinds.push(term("haircut_at_home", "上门理发"));
    c.visit_rules = vec![VisitRule {
        code: "key_watch_monthly".into(),
        name_zh: "重点关注人员每月服务".into(),
        name_en: String::new(),
        care_tags: vec!["key_watch".into()],
        resident_ids: vec![],
        every: Every::Month,
        kinds: vec!["haircut_at_home".into()],
        soon_days: 0,
    }];
    assert_eq!(c.problem(), None);
    f.store.replace_catalogue(c).unwrap();
    let resident = f.store.create_resident(&input).unwrap();
    assert!(resident.care_tags.contains(&CareTag::new("key_watch")));
    let counts = f.store.dashboard(&f.grid.id).unwrap().care_tags;
    assert!(counts.contains(&(CareTag::new("key_watch"), 1)), "{counts:?}");
    assert_eq!(f.store.due_visits(&f.grid.id).unwrap().len(), 1);

    let log = |kind: &str| NewServiceLog {
        grid_id: f.grid.id.clone(),
        kind: ServiceKind::new(kind),
        resident_ids: vec![resident.id.clone()],
        notes: String::new(),
        occurred_at_ms: None,
        photos: vec![],
    };
    assert_eq!(
        error_of(f.store.create_service_log(&log("massage"))),
        ("kind".to_owned(), Code::BadFormat)
    );
    f.store.create_service_log(&log("haircut_at_home")).unwrap();
    assert!(f.store.due_visits(&f.grid.id).unwrap().is_empty(), "done");
}

/// What the worker does not type into a form never waits on a required
/// field: an incident an inspection raises, and a district spreadsheet's
/// residents (their values can be added later, one by one).
#[test]
fn raised_incidents_and_imports_are_not_held_up_by_required_fields() {
    let f = Fixture::new();
    let mut c = Catalogue::builtin();
    c.version = 2;
    c.field_defs = catalogue::demo_field_defs();
    for d in &mut c.field_defs {
        d.item.required = true;
    }
    f.store.replace_catalogue(c).unwrap();
    let mut input = crate::inspections::gas(&f, false);
    input.photos.push(ItemPhoto {
        item: "detector_installed".into(),
        photo: photo(2),
    });
    let report = f.store.record_inspection(&input).unwrap();
    assert_eq!(report.raised.len(), 1);
    assert!(report.raised[0].extra.is_empty());

    let csv = format!("name,sex,id_number\n张伟,男,{}\n", id_for("19500101", "011"));
    let imported = f.store.import_residents_csv(csv.as_bytes(), &f.grid.id).unwrap();
    assert_eq!(imported.created.len(), 1, "{:?}", imported.refused);
    let row = f.resident("李强", &id_for("19800101", "011"), Sex::Male);
    assert_eq!(
        f.store
            .import_residents(std::slice::from_ref(&row))
            .unwrap()
            .created
            .len(),
        1
    );
    // A form still asks for them.
    let mut one = row;
    one.id_number = None;
    assert_eq!(
        error_of(f.store.create_resident(&one)).1,
        Code::Required,
        "a resident typed in gives the required fields"
    );
}

/// Tags the phone does not add itself stay as they are: one added must be
/// the catalogue's, a newer catalogue's tag survives an edit, an edit that
/// leaves the tags alone (stored in another order before) does not send
/// them, and a resident holds at most 20.
#[test]
fn care_tags_a_phone_did_not_add_survive_its_edits_and_are_sent_only_when_changed() {
    let f = Fixture::new();
    let r = f
        .store
        .create_resident(&f.resident("张伟", &id_for("19491231", "001"), Sex::Male))
        .unwrap();
    assert_eq!(
        error_of(
            f.store
                .update_resident(&r.id, &[ResidentChange::AddCareTag(CareTag::new("key_watch"))])
        ),
        ("care_tags".to_owned(), Code::BadFormat)
    );
    // As a pull from a newer catalogue (or an older build's order) left it.
    f.raw()
        .execute(
            "UPDATE residents SET care_tags = '[\"veteran\", \"key_watch\", \"disabled\"]' WHERE id = ?1",
            [&r.id],
        )
        .unwrap();
    let edited = f
        .store
        .update_resident(&r.id, &[ResidentChange::Notes("按时走访".into())])
        .unwrap();
    assert_eq!(
        edited.care_tags,
        [CareTag::Disabled, CareTag::new("key_watch"), CareTag::Veteran],
        "kept, sorted"
    );
    let ops = outbox(&f, &r.id);
    assert_eq!(ops.last().unwrap().1, Some(json!({"notes": "按时走访"})), "{ops:?}");

    let mut c = Catalogue::builtin();
    c.version = 2;
    c.care_tags = (0..13)
        .map(|i| catalogue::Term {
            code: format!("district_tag_{i}"),
            name_zh: format!("标签{i}"),
            retired: false,
        })
        .collect();
    f.store.replace_catalogue(c.clone()).unwrap();
    let mut many = f.resident("李强", &id_for("19800101", "011"), Sex::Male);
    many.care_tags = CareTag::ALL.to_vec();
    many.care_tags
        .extend(c.care_tags.iter().map(|t| CareTag::new(t.code.as_str())));
    assert_eq!(
        error_of(f.store.create_resident(&many)),
        ("care_tags".to_owned(), Code::TooMany { max: 20 })
    );
}

/// A district spreadsheet's own columns (`extra.<code>`) import into the
/// residents' fields, each cell read by its field's type.
#[test]
fn a_spreadsheet_s_extra_columns_import_by_their_fields_types() {
    let f = with_fields();
    let csv = format!(
        "name,sex,id_number,extra.monthly_allowance,extra.disability_grade\n\
         张伟,男,{},1200,二级\n\
         李娜,女,,很多,\n\
         王芳,女,,,五级\n",
        id_for("19500101", "011")
    );
    let report = f.store.import_residents_csv(csv.as_bytes(), &f.grid.id).unwrap();
    assert_eq!(report.created.len(), 1);
    let refused: Vec<(u64, String)> = report.refused.iter().map(|(l, v)| (*l, v.field.clone())).collect();
    assert_eq!(
        refused,
        [
            (3, "extra.monthly_allowance".to_owned()),
            (4, "extra.disability_grade".to_owned())
        ]
    );
    let r = f.store.get_resident(&report.created[0]).unwrap();
    assert_eq!(
        serde_json::to_value(&r.extra).unwrap(),
        json!({"monthly_allowance": 1200, "disability_grade": "二级"})
    );
}
