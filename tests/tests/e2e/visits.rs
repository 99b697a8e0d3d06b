//! Visit plans end to end: phones log visits, the server counts coverage per
//! grid and sub-district in its database, by server time, and a backdated
//! visit cannot reach into a period that closed days ago.

use fieldgrid_core::*;
use fieldgrid_tests::{District, T0};
use serde_json::{Value, json};

use crate::helpers::*;

const DAY: i64 = 86_400_000;
const MONTHLY: &str = "elderly_alone_monthly_visit";

fn visit(store: &Store, grid: &str, who: &[&Resident], at: i64) -> ServiceLog {
    store
        .create_service_log(&NewServiceLog {
            grid_id: grid.into(),
            kind: ServiceKind::Visit,
            resident_ids: who.iter().map(|r| r.id.clone()).collect(),
            notes: String::new(),
            occurred_at_ms: Some(at),
            photos: vec![],
        })
        .unwrap()
}

/// (residents, on time, late, missed, pending) of one coverage entry.
fn counts(c: &Value) -> (u64, u64, u64, u64, u64) {
    let n = |k: &str| c[k].as_u64().unwrap();
    (n("residents"), n("on_time"), n("late"), n("missed"), n("pending"))
}

fn coverage(d: &District, token: &str, query: &str) -> Value {
    let (status, body) = call(d, token, "GET", &format!("/v1/centre/coverage?{query}"), None);
    assert_eq!(status, 200, "{body}");
    body
}

fn grid<'a>(c: &'a Value, id: &str) -> &'a Value {
    c["grids"].as_array().unwrap().iter().find(|g| g["key"] == id).unwrap()
}

#[test]
fn coverage_per_grid_and_sub_district_by_server_time() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let b = d.device("b", "wb", &d.server.url());
    let ha = household(&a.store, "grid-a");
    let hb = household(&b.store, "grid-b");
    let visited = a
        .store
        .create_resident(&resident(&ha, "王秀英", "37050219400101022X", Sex::Female))
        .unwrap();
    let waiting = a
        .store
        .create_resident(&resident(&ha, "李桂兰", "370502194001010246", Sex::Female))
        .unwrap();
    let backdated = b
        .store
        .create_resident(&resident(&hb, "张淑珍", "370502194001010262", Sex::Female))
        .unwrap();
    let mut not_alone = resident(&ha, "刘强", "370502194001010318", Sex::Male);
    not_alone.care_tags = vec![CareTag::Veteran];
    let not_alone = a.store.create_resident(&not_alone).unwrap();
    visit(&a.store, "grid-a", &[&visited, &not_alone], T0 - 3_600_000);
    // Logged today, dated in October: it counts from three days before the
    // server received it (23 November), so October's visit is late.
    visit(&b.store, "grid-b", &[&backdated], T0 - 37 * DAY);
    a.sync().unwrap();
    b.sync().unwrap();

    let centre = token(&d, "centre");
    let november = coverage(&d, &centre, &format!("rule={MONTHLY}&at=2026-11-26"));
    assert_eq!(november["every"], "month");
    assert_eq!(counts(grid(&november, "grid-a")), (2, 1, 0, 0, 1), "{november}");
    assert_eq!(grid(&november, "grid-a")["within"], "黄河路街道");
    assert_eq!(counts(grid(&november, "grid-b")), (1, 1, 0, 0, 0));
    assert_eq!(counts(&november["district"]), (3, 2, 0, 0, 1));
    let subs: Vec<_> = november["sub_districts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["key"].as_str().unwrap().to_owned(), counts(s)))
        .collect();
    assert_eq!(
        subs,
        [
            ("胜园街道".to_owned(), (1, 1, 0, 0, 0)),
            ("黄河路街道".to_owned(), (2, 1, 0, 0, 1))
        ]
    );
    assert_eq!(
        november,
        coverage(&d, &centre, &format!("rule={MONTHLY}")),
        "today by default"
    );

    // October is over: a visit in November is late, none is missed.
    let october = coverage(&d, &centre, &format!("rule={MONTHLY}&at=2026-10-15"));
    assert_eq!(counts(grid(&october, "grid-a")), (2, 0, 1, 1, 0), "{october}");
    assert_eq!(
        counts(grid(&october, "grid-b")),
        (1, 0, 1, 0, 0),
        "the backdated visit is late"
    );

    // The tag removed on the phone: the resident leaves the rule's scope.
    a.store
        .update_resident(
            &waiting.id,
            &[ResidentChange::RemoveCareTag(CareTag::ElderlyLivingAlone)],
        )
        .unwrap();
    a.sync().unwrap();
    let now = coverage(&d, &centre, &format!("rule={MONTHLY}"));
    assert_eq!(counts(grid(&now, "grid-a")), (1, 1, 0, 0, 0));

    // The weekly call: this week began on Monday 23 November.
    let weekly = coverage(&d, &centre, "rule=elderly_alone_weekly_call");
    assert_eq!(weekly["period_start_ms"], T0 - 3 * DAY - 12 * 3_600_000);
    assert_eq!(counts(&weekly["district"]), (2, 2, 0, 0, 0));

    // The migration that made these tables counts what the writes kept:
    // taken back and run again over the stored records, the same coverage.
    let before: Vec<Value> = ["2026-10-15", "2026-11-26"]
        .iter()
        .map(|at| coverage(&d, &centre, &format!("rule={MONTHLY}&at={at}")))
        .collect();
    let location = d.server.state.config.location();
    // (And back over the steps that came after coverage.)
    crate::storage::roll_back(
        &location,
        &format!(
            "{}; DROP TABLE care_residents; DROP TABLE visits",
            crate::storage::UNDO_SINCE_COVERAGE
        ),
        crate::storage::STEPS_SINCE_COVERAGE + 1,
    );
    let session = fieldgrid_server::admin::AdminSession::open(&location).unwrap();
    for (at, kept) in ["2026-10-15", "2026-11-26"].iter().zip(&before) {
        let day = chrono::NaiveDate::parse_from_str(at, "%Y-%m-%d").unwrap();
        let mut again = session
            .block_on(session.store().coverage(MONTHLY, Some(day), d.server_clock.now()))
            .unwrap();
        again.server_time_ms = kept["server_time_ms"].as_i64().unwrap();
        assert_eq!(&serde_json::to_value(again).unwrap(), kept, "{at}");
    }
    drop(session);

    // What the centre may ask, and what it may not.
    for (query, status_wanted, why) in [
        ("", 400, "no rule"),
        ("rule=", 400, "an empty rule"),
        ("rule=vip_daily", 404, "not a rule of the catalogue"),
        ("rule=elderly_alone_monthly_visit&at=2026-13-01", 400, "not a date"),
        ("rule=elderly_alone_monthly_visit&at=26-11-01", 400, "not a full date"),
    ] {
        let (status, body) = call(&d, &centre, "GET", &format!("/v1/centre/coverage?{query}"), None);
        assert_eq!(status, status_wanted, "{why}: {body}");
    }
    // A month not begun: everyone pending.
    let february = coverage(&d, &centre, &format!("rule={MONTHLY}&at=2027-02-01"));
    assert_eq!(counts(&february["district"]), (2, 0, 0, 0, 2));
    let worker = token(&d, "wa1");
    let (status, _) = call(&d, &worker, "GET", &format!("/v1/centre/coverage?rule={MONTHLY}"), None);
    assert_eq!(status, 403, "coverage is the centre's");
}

#[test]
fn a_district_rule_reaches_the_phones_due_list_and_the_centre() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let h = household(&a.store, "grid-a");
    let mut listed = resident(&h, "赵敏", "370502194001010422", Sex::Female);
    listed.care_tags = vec![];
    let listed = a.store.create_resident(&listed).unwrap();
    a.sync().unwrap();
    let rule = |every: &str, tags: &[&str], ids: &[&str]| {
        json!({"code": "watch_list_monthly", "name_zh": "重点人员每月走访", "every": every,
               "care_tags": tags, "resident_ids": ids, "kinds": ["visit"]})
    };
    let catalogue = |rules: Value| -> Catalogue {
        let mut c = serde_json::to_value(Catalogue::builtin()).unwrap();
        c["version"] = json!(2);
        c["visit_rules"] = rules;
        serde_json::from_value(c).unwrap()
    };
    // A rule this server cannot apply is refused when published.
    for bad in [
        rule("month", &["vip"], &[]),
        rule("month", &[], &["not-an-id"]),
        rule("month", &[], &[]),
        rule("fortnight", &["disabled"], &[]),
    ] {
        let err = d
            .server
            .admin()
            .publish_catalogue(&catalogue(json!([bad])), T0)
            .unwrap_err();
        assert!(err.contains("visit rule"), "{err}");
    }
    d.server
        .admin()
        .publish_catalogue(&catalogue(json!([rule("month", &[], &[&listed.id])])), T0)
        .unwrap();
    a.sync().unwrap();
    assert_eq!(a.store.catalogue().version, 2);
    let due = a.store.due_visits("grid-a").unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(
        (due[0].rule.as_str(), due[0].resident.id.as_str()),
        ("watch_list_monthly", listed.id.as_str())
    );
    assert_eq!(a.store.dashboard("grid-a").unwrap().visits.overdue, 1);

    visit(&a.store, "grid-a", &[&listed], T0 - 60_000);
    assert!(
        a.store.due_visits("grid-a").unwrap().is_empty(),
        "done offline, at once"
    );
    a.sync().unwrap();
    let centre = token(&d, "centre");
    let c = coverage(&d, &centre, "rule=watch_list_monthly");
    assert_eq!(counts(&c["district"]), (1, 1, 0, 0, 0));
    let (status, _) = call(&d, &centre, "GET", &format!("/v1/centre/coverage?rule={MONTHLY}"), None);
    assert_eq!(status, 404, "the district's catalogue replaced the built-in rules");
}

/// A district adds a care tag and a service kind, and a rule naming both:
/// a phone captures them, the centre's coverage counts them, and the server
/// refuses tags and kinds the catalogue does not have.
#[test]
fn a_districts_own_care_tag_and_service_kind_reach_the_centre_s_coverage() {
    let d = District::new();
    let term = |code: &str, name: &str| catalogue::Term {
        code: code.into(),
        name_zh: name.into(),
        retired: false,
    };
    let mut c = Catalogue::builtin();
    c.version = 2;
    c.care_tags.push(term("key_watch", "重点关注人员"));
    c.service_kinds.push(term("haircut_at_home", "上门理发"));
    c.visit_rules.push(VisitRule {
        code: "key_watch_monthly".into(),
        name_zh: "重点关注人员每月服务".into(),
        name_en: String::new(),
        care_tags: vec!["key_watch".into()],
        resident_ids: vec![],
        every: Every::Month,
        kinds: vec!["haircut_at_home".into()],
        soon_days: 0,
    });
    d.server.admin().publish_catalogue(&c, T0).unwrap();
    let a = d.device("a", "wa1", &d.server.url());
    a.sync().unwrap();
    let h = household(&a.store, "grid-a");
    let mut r = resident(&h, "赵敏", "370502194001010422", Sex::Female);
    r.care_tags = vec![CareTag::new("key_watch")];
    let r = a.store.create_resident(&r).unwrap();
    a.store
        .create_service_log(&NewServiceLog {
            grid_id: "grid-a".into(),
            kind: ServiceKind::new("haircut_at_home"),
            resident_ids: vec![r.id.clone()],
            notes: String::new(),
            occurred_at_ms: Some(T0 - 60_000),
            photos: vec![],
        })
        .unwrap();
    a.sync().unwrap();
    let centre = token(&d, "centre");
    let covered = coverage(&d, &centre, "rule=key_watch_monthly");
    assert_eq!(counts(&covered["district"]), (1, 1, 0, 0, 0));

    let worker = token(&d, "wa1");
    for (entity, patch, field) in [
        (
            "resident",
            json!({"grid_id": "grid-a", "name": "李娜", "sex": "female", "residence": "registered",
                   "care_tags": ["vip"]}),
            "care_tags",
        ),
        (
            "service_log",
            json!({"grid_id": "grid-a", "kind": "massage", "occurred_at_ms": T0 - 1000}),
            "kind",
        ),
    ] {
        let (status, body) = call(
            &d,
            &worker,
            "POST",
            "/v1/sync/push",
            Some(
                json!({"device_id": "hostile", "operations": [{"op_id": new_id(), "entity": entity,
                "entity_id": new_id(), "kind": "create", "patch": patch, "base_version": null, "created_at_ms": T0}]}),
            ),
        );
        assert_eq!(status, 200);
        let r = &body["receipts"][0];
        assert_eq!(
            (r["outcome"].as_str(), r["field"].as_str()),
            (Some("rejected"), Some(field)),
            "{r}"
        );
    }
    // Once published, a tag stays (retired at most): its residents keep it.
    let mut next = c.clone();
    next.version = 3;
    next.care_tags.clear();
    next.visit_rules.pop();
    let err = d.server.admin().publish_catalogue(&next, T0).unwrap_err();
    assert!(err.contains("key_watch") && err.contains("retire"), "{err}");
}

/// A resident stored before tags were kept sorted: a patch naming the same
/// tags in another order changes nothing (no write that could undo another
/// phone's change of them, no conflict).
#[test]
fn care_tags_in_another_order_are_no_change() {
    let d = District::new();
    let id = new_id();
    let fields = json!({"grid_id": "grid-a", "name": "王秀英", "sex": "female", "residence": "registered",
                        "care_tags": ["veteran", "disabled"], "notes": ""});
    d.server
        .admin()
        .save_records(
            vec![fieldgrid_server::records::Record {
                id: id.clone(),
                entity: "resident".into(),
                grid_id: "grid-a".into(),
                version: 1,
                deleted: false,
                fields: fields.as_object().cloned().unwrap(),
                field_versions: serde_json::Map::new(),
            }],
            T0,
        )
        .unwrap();
    let worker = token(&d, "wa1");
    let (status, body) = call(
        &d,
        &worker,
        "POST",
        "/v1/sync/push",
        Some(
            json!({"device_id": "old-build", "operations": [{"op_id": new_id(), "entity": "resident",
            "entity_id": id, "kind": "update", "patch": {"care_tags": ["disabled", "veteran"], "notes": "走访"},
            "base_version": 1, "created_at_ms": T0}]}),
        ),
    );
    assert_eq!(status, 200);
    assert_eq!(body["receipts"][0]["outcome"], "applied", "{body}");
    let stored = server_record(&d, &id);
    assert_eq!(stored.fields["notes"], "走访");
    assert!(
        !stored.field_versions.contains_key("care_tags"),
        "the tags were not written: {:?}",
        stored.field_versions
    );
}
