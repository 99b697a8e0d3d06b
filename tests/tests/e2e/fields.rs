//! The district's own fields end to end: published in the catalogue,
//! captured offline on one phone, checked by the server with the phone's
//! rule, received by the grid's other phone, and never lost: a phone keeps
//! what it does not know, and a published field is retired, not removed.

use fieldgrid_core::*;
use fieldgrid_tests::{District, T0};
use serde_json::{Value, json};

use crate::helpers::*;

fn with_fields(version: i64) -> Catalogue {
    let mut c = Catalogue::builtin();
    c.version = version;
    c.field_defs = catalogue::demo_field_defs();
    c
}

fn answer(item: &str, answer: Answer) -> ItemAnswer {
    ItemAnswer {
        item: item.into(),
        answer,
    }
}

fn new_household(unit: &str, room: &str, extra: Vec<ItemAnswer>) -> NewHousehold {
    NewHousehold {
        grid_id: "grid-a".into(),
        unit_id: Some(unit.into()),
        room: room.into(),
        address: None,
        notes: String::new(),
        extra,
    }
}

fn push(d: &District, token: &str, op: Value) -> Value {
    let (status, body) = call(
        d,
        token,
        "POST",
        "/v1/sync/push",
        Some(json!({"device_id": "hostile", "operations": [op]})),
    );
    assert_eq!(status, 200, "{body}");
    body["receipts"][0].clone()
}

fn create(entity: &str, patch: Value) -> Value {
    json!({"op_id": new_id(), "entity": entity, "entity_id": new_id(), "kind": "create",
           "patch": patch, "base_version": null, "created_at_ms": T0})
}

#[test]
fn a_districts_field_travels_between_phones_and_the_server_checks_it() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let b = d.device("b", "wa2", &d.server.url());
    let old = household(&a.store, "grid-a");
    d.server.admin().publish_catalogue(&with_fields(2), T0).unwrap();
    a.sync().unwrap();
    let unit = old.unit_id.clone().unwrap();
    let h = a
        .store
        .create_household(&new_household(
            &unit,
            "302",
            vec![answer("gas_supplier", Answer::Text("瓶装液化气".into()))],
        ))
        .unwrap();
    let mut r = resident(&h, "王秀英", "370502194001010422", Sex::Female);
    r.extra = vec![answer("disability_grade", Answer::Text("二级".into()))];
    let r = a.store.create_resident(&r).unwrap();
    a.sync().unwrap();
    assert_eq!(
        server_record(&d, &h.id).fields["extra"],
        json!({"gas_supplier": "瓶装液化气"})
    );
    assert_eq!(
        server_record(&d, &r.id).fields["extra"],
        json!({"disability_grade": "二级"})
    );

    // The grid's other phone receives them, and changes one of its fields.
    b.sync().unwrap();
    assert_eq!(b.store.get_resident(&r.id).unwrap().extra, r.extra);
    b.store
        .update_extra(
            Entity::Household,
            &h.id,
            &[answer("smoke_alarm", Answer::YesNo(true))],
            &[],
        )
        .unwrap();
    b.sync().unwrap();
    a.sync().unwrap();
    assert_eq!(
        serde_json::to_value(a.store.get_household(&h.id).unwrap().extra).unwrap(),
        json!({"gas_supplier": "瓶装液化气", "smoke_alarm": true})
    );

    // A hostile client: the server applies the phone's rule to every value.
    let worker = token(&d, "wa1");
    let household = |extra: Value| json!({"grid_id": "grid-a", "unit_id": unit, "room": "303", "address": "", "notes": "", "extra": extra});
    let cases = [
        (
            create("household", household(json!({"gas_supplier": "电"}))),
            "extra.gas_supplier",
        ),
        (
            create("household", household(json!({"smoke_alarm": "有"}))),
            "extra.smoke_alarm",
        ),
        (
            create("household", household(json!({"王秀英13812345678": true}))),
            "extra",
        ),
        (
            create("household", household(json!({"disability_grade": "一级"}))),
            "extra",
        ),
        (create("household", household(json!(["gas_supplier"]))), "extra"),
        (
            create(
                "resident",
                json!({"grid_id": "grid-a", "name": "李娜", "sex": "female", "residence": "registered",
                       "extra": {"monthly_allowance": 99999}}),
            ),
            "extra.monthly_allowance",
        ),
        (
            create(
                "service_log",
                json!({"grid_id": "grid-a", "kind": "visit", "occurred_at_ms": T0 - 1000,
                       "extra": {"smoke_alarm": true}}),
            ),
            "extra",
        ),
        (
            json!({"op_id": new_id(), "entity": "household", "entity_id": h.id, "kind": "update",
                   "patch": {"extra": {"gas_supplier": "13812345678"}}, "base_version": null, "created_at_ms": T0}),
            "extra.gas_supplier",
        ),
    ];
    for (op, field) in cases {
        let r = push(&d, &worker, op.clone());
        assert_eq!(
            (r["outcome"].as_str(), r["field"].as_str()),
            (Some("rejected"), Some(field)),
            "{op}: {r}"
        );
        assert!(
            !r.to_string().contains("13812345678"),
            "nothing the device sent is repeated: {r}"
        );
    }
    // A required field is the phone's to ask for: a phone still on the old
    // catalogue created this household offline, before the field existed.
    let r = push(&d, &worker, create("household", household(json!({}))));
    assert_eq!(r["outcome"], "applied", "{r}");
}

#[test]
fn a_published_field_is_retired_never_removed_and_its_values_stay() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let old = household(&a.store, "grid-a");
    d.server.admin().publish_catalogue(&with_fields(2), T0).unwrap();
    a.sync().unwrap();
    let set = [answer("smoke_alarm", Answer::YesNo(false))];
    a.store.update_extra(Entity::Household, &old.id, &set, &[]).unwrap();
    a.sync().unwrap();

    let mut next = with_fields(3);
    next.field_defs.retain(|f| f.item.code != "smoke_alarm");
    let err = d.server.admin().publish_catalogue(&next, T0).unwrap_err();
    assert!(err.contains("household.smoke_alarm") && err.contains("retire"), "{err}");
    let mut next = with_fields(3);
    next.field_defs[1].item.max = Some(500.0);
    let err = d.server.admin().publish_catalogue(&next, T0).unwrap_err();
    assert!(err.contains("resident.monthly_allowance"), "{err}");

    let mut next = with_fields(3);
    for f in &mut next.field_defs {
        f.retired = f.item.code == "smoke_alarm";
    }
    d.server.admin().publish_catalogue(&next, T0).unwrap();
    a.sync().unwrap();
    assert!(a.store.catalogue().fields_of(Entity::Household).any(|f| f.retired));
    // The value stays, and another field's edit carries it to the server.
    a.store
        .update_extra(
            Entity::Household,
            &old.id,
            &[answer("gas_supplier", Answer::Text("管道天然气".into()))],
            &[],
        )
        .unwrap();
    a.sync().unwrap();
    assert_eq!(
        server_record(&d, &old.id).fields["extra"],
        json!({"gas_supplier": "管道天然气", "smoke_alarm": false})
    );
}

/// Runs a district IT command on the district's storage: (success, stdout).
fn district_it(d: &District, args: &[&str]) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_serve"));
    cmd.arg("--data").arg(&d.server.state.config.data_dir);
    if let Some(url) = &d.database {
        cmd.arg("--database").arg(url);
    }
    let out = cmd.args(args).output().unwrap();
    (out.status.success(), String::from_utf8(out.stdout).unwrap())
}

#[test]
fn district_it_adds_changes_and_retires_a_field_from_the_command_line() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let field = [
        "set-field",
        "--entity",
        "household",
        "--code",
        "gas_supplier",
        "--label",
        "燃气供应",
        "--answer",
        "choice",
        "--options",
        "管道天然气,瓶装液化气",
    ];
    assert!(district_it(&d, &field).0);
    // Changed: required now, one more option.
    let more = [
        &field[..9],
        &["--options", "管道天然气,瓶装液化气,未通燃气", "--required"],
    ]
    .concat();
    assert!(district_it(&d, &more).0);
    let (ok, printed) = district_it(&d, &["catalogue"]);
    assert!(ok);
    let printed: Catalogue = serde_json::from_str(&printed).unwrap();
    assert_eq!(printed.version, 3);
    assert_eq!(printed.field_defs.len(), 1);
    assert!(printed.field_defs[0].item.required && printed.field_defs[0].item.options.len() == 3);
    // Refused, nothing published: a type that is no type, an option taken
    // away, a field the catalogue lacks.
    let mut bad_type = more.clone();
    bad_type[8] = "photo";
    assert!(!district_it(&d, &bad_type).0);
    assert!(!district_it(&d, &field).0, "an option taken away");
    assert!(!district_it(&d, &["retire-field", "--entity", "household", "--code", "heating"]).0);
    assert_eq!(d.server.admin().catalogue().unwrap().version, 3);

    assert!(district_it(&d, &["retire-field", "--entity", "household", "--code", "gas_supplier"]).0);
    // Relabelled: only the label changes, and it stays retired.
    let relabel = [
        "set-field",
        "--entity",
        "household",
        "--code",
        "gas_supplier",
        "--label",
        "燃气类型",
    ];
    assert!(district_it(&d, &relabel).0);
    let now = d.server.admin().catalogue().unwrap();
    assert_eq!(now.version, 5);
    let f = &now.field_defs[0];
    assert!(f.retired && f.item.required && f.item.options.len() == 3 && f.item.label_zh == "燃气类型");
    // A new field needs its label and type.
    assert!(!district_it(&d, &["set-field", "--entity", "resident", "--code", "blood_type"]).0);
    a.sync().unwrap();
    let on_phone = a.store.catalogue();
    assert_eq!(on_phone.version, 5);
    assert!(on_phone.fields_of(Entity::Household).all(|f| f.retired));
}

/// A grid taken away leaves nothing of its records on the phone: their
/// district fields included (they may be personal data).
#[test]
fn a_grid_taken_away_takes_its_records_fields_with_it() {
    let d = District::new();
    d.server.admin().publish_catalogue(&with_fields(2), T0).unwrap();
    let a = d.device("a", "wa1", &d.server.url());
    let unit = household(&a.store, "grid-a").unit_id.unwrap_or_default();
    a.sync().unwrap();
    let gas = vec![answer("gas_supplier", Answer::Text("瓶装液化气".into()))];
    a.store.create_household(&new_household(&unit, "302", gas)).unwrap();
    a.sync().unwrap();
    let rows = |a: &fieldgrid_tests::Device| -> i64 {
        raw_store(&a.path, 7)
            .query_row("SELECT count(*) FROM record_extra", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(rows(&a), 1);
    let admin = d.server.admin();
    let id = admin.account_id("wa1").unwrap().unwrap();
    admin.assign_grids(&id, &["grid-b".to_owned()], T0).unwrap();
    a.store.login(&a.transport, "wa1", fieldgrid_tests::PASSWORD).unwrap();
    assert_eq!(a.sync().unwrap().evicted_grids, ["grid-a"]);
    assert_eq!(rows(&a), 0, "the evicted grid's fields left the phone too");
}

/// Two phones change different fields of the district's on one household
/// at the same time: both values stay, no conflict. The same field: the
/// later wins and the other is kept in a conflict on that field.
#[test]
fn the_districts_fields_merge_field_by_field_between_phones() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let b = d.device("b", "wa2", &d.server.url());
    let h = household(&a.store, "grid-a");
    d.server.admin().publish_catalogue(&with_fields(2), T0).unwrap();
    a.sync().unwrap();
    b.sync().unwrap();
    let set = |store: &Store, item: &str, value: Answer| {
        store
            .update_extra(Entity::Household, &h.id, &[answer(item, value)], &[])
            .unwrap();
    };
    set(&a.store, "gas_supplier", Answer::Text("管道天然气".into()));
    set(&b.store, "smoke_alarm", Answer::YesNo(true));
    a.sync().unwrap();
    b.sync().unwrap();
    a.sync().unwrap();
    assert!(
        b.store.conflicts_of(&h.id).unwrap().is_empty(),
        "different fields: no conflict"
    );
    let both = json!({"gas_supplier": "管道天然气", "smoke_alarm": true});
    assert_eq!(server_record(&d, &h.id).fields["extra"], both);
    for phone in [&a, &b] {
        assert_eq!(
            serde_json::to_value(phone.store.get_household(&h.id).unwrap().extra).unwrap(),
            both
        );
    }

    set(&a.store, "gas_supplier", Answer::Text("瓶装液化气".into()));
    set(&b.store, "gas_supplier", Answer::Text("未通燃气".into()));
    a.sync().unwrap();
    b.sync().unwrap();
    assert_eq!(server_record(&d, &h.id).fields["extra"]["gas_supplier"], "未通燃气");
    let conflicts = b.store.conflicts_of(&h.id).unwrap();
    assert_eq!(conflicts.len(), 1, "{conflicts:?}");
    assert_eq!(conflicts[0].0, "extra.gas_supplier");
    assert_eq!(conflicts[0].2, json!("瓶装液化气"), "the replaced value is kept");
}
