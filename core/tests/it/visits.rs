//! Visit plans: the due list and its counts, by the catalogue's visit rules
//! and server time.

use fieldgrid_core::*;

use crate::common::{Fixture, NOW_MS};

const DAY: i64 = 86_400_000;

/// China time, as a worker reads a clock.
fn at(s: &str) -> i64 {
    chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M")
        .unwrap()
        .and_utc()
        .timestamp_millis()
        - fieldgrid_domain::china_time::OFFSET_MS
}

fn resident(f: &Fixture, name: &str, id_number: &str, tags: &[CareTag]) -> Resident {
    let mut r = f.resident(name, id_number, Sex::Female);
    r.care_tags = tags.to_vec();
    f.store.create_resident(&r).unwrap()
}

fn log(f: &Fixture, kind: ServiceKind, who: &[&Resident], at_ms: i64) -> ServiceLog {
    f.store
        .create_service_log(&NewServiceLog {
            grid_id: f.grid.id.clone(),
            kind,
            resident_ids: who.iter().map(|r| r.id.clone()).collect(),
            notes: "代办事项".into(),
            occurred_at_ms: Some(at_ms),
            photos: vec![],
        })
        .unwrap()
}

fn due(f: &Fixture) -> Vec<(String, String, VisitState, i64)> {
    f.store
        .due_visits(&f.grid.id)
        .unwrap()
        .into_iter()
        .map(|d| (d.resident.name.as_str().to_owned(), d.rule, d.state, d.due_by_ms))
        .collect()
}

#[test]
fn the_due_list_follows_the_rules_and_the_service_logs() {
    let f = Fixture::new();
    assert_eq!(at("2026-11-26 12:00"), NOW_MS, "the fixture's clock");
    let visited = resident(&f, "王秀英", "11010519491231002X", &[CareTag::ElderlyLivingAlone]);
    let never = resident(&f, "李桂兰", "110105194912310046", &[CareTag::ElderlyLivingAlone]);
    let called = resident(&f, "张淑珍", "110105194912310062", &[CareTag::ElderlyLivingAlone]);
    let disabled = resident(&f, "刘芳", "110105194912310089", &[CareTag::Disabled]);
    let untagged = resident(&f, "陈静", "11010519491231010X", &[]);
    log(&f, ServiceKind::Visit, &[&visited], at("2026-11-10 10:00"));
    log(&f, ServiceKind::PhoneCheckIn, &[&called], at("2026-11-20 10:00"));
    log(&f, ServiceKind::Visit, &[&disabled], at("2026-10-15 10:00"));
    // Help of a kind no rule counts, and a visit deleted on the server,
    // complete nothing.
    log(&f, ServiceKind::OtherAssistance, &[&called], at("2026-11-25 10:00"));
    let deleted = log(&f, ServiceKind::Visit, &[&never, &untagged], at("2026-11-25 11:00"));
    f.raw()
        .execute("UPDATE service_logs SET deleted_at = 1 WHERE id = ?1", [&deleted.id])
        .unwrap();

    let weekly = "elderly_alone_weekly_call".to_owned();
    let monthly = "elderly_alone_monthly_visit".to_owned();
    let (week, last_week) = (at("2026-11-30 00:00"), at("2026-11-23 00:00"));
    use VisitState::*;
    assert_eq!(
        due(&f),
        [
            // Overdue first, by when they were due, then by name.
            ("张淑珍".into(), monthly.clone(), Overdue, at("2026-11-01 00:00")),
            ("李桂兰".into(), monthly.clone(), Overdue, at("2026-11-01 00:00")),
            ("李桂兰".into(), weekly.clone(), Overdue, last_week),
            ("王秀英".into(), weekly.clone(), Overdue, last_week),
            // Called last week: this week's call is due on Sunday.
            ("张淑珍".into(), weekly.clone(), Due, week),
        ]
    );
    let counts = f.store.visit_counts(&f.grid.id).unwrap();
    assert_eq!(
        counts,
        VisitCounts {
            overdue: 4,
            due_soon: 0,
            due: 1,
            done: 2 // 王秀英 this month, 刘芳 this quarter
        }
    );
    assert_eq!(f.store.dashboard(&f.grid.id).unwrap().visits, counts);

    // A visit today completes both of 李桂兰's, and the list says so at once.
    log(&f, ServiceKind::Visit, &[&never], NOW_MS - 60_000);
    assert!(due(&f).iter().all(|d| d.0 != "李桂兰"));
    assert_eq!(f.store.visit_counts(&f.grid.id).unwrap().done, 4);

    // Two days before Sunday ends the week, this week's call is due soon.
    f.clock
        .0
        .store(at("2026-11-28 00:00"), std::sync::atomic::Ordering::SeqCst);
    assert!(due(&f).contains(&("张淑珍".into(), weekly.clone(), DueSoon, week)));
    // A new week: last week's calls made; 张淑珍's, last made the week before, is overdue.
    f.clock
        .0
        .store(at("2026-12-01 09:00"), std::sync::atomic::Ordering::SeqCst);
    let list = due(&f);
    assert!(
        list.contains(&("李桂兰".into(), weekly.clone(), Due, at("2026-12-07 00:00"))),
        "{list:?}"
    );
    assert!(list.contains(&("张淑珍".into(), weekly, Overdue, week)), "{list:?}");
    assert!(
        list.iter().all(|d| d.0 != "陈静"),
        "no rule covers an untagged resident"
    );
}

#[test]
fn the_due_list_goes_by_server_time_and_the_district_s_rules() {
    let f = Fixture::new();
    let listed = resident(&f, "赵敏", "11010519491231002X", &[]);
    let mut catalogue = f.store.catalogue().as_ref().clone();
    catalogue.version = 2;
    catalogue.visit_rules = vec![VisitRule {
        code: "listed_monthly".into(),
        name_zh: "重点关注人员每月走访".into(),
        name_en: String::new(),
        care_tags: vec![],
        resident_ids: vec![listed.id.clone()],
        every: Every::Month,
        kinds: vec!["visit".into()],
        soon_days: 10,
    }];
    assert!(f.store.replace_catalogue(catalogue).unwrap());
    log(&f, ServiceKind::Visit, &[&listed], at("2026-10-20 10:00"));
    let list = f.store.due_visits(&f.grid.id).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(
        (list[0].state, list[0].last_visit_ms, list[0].rule_name.as_str()),
        (
            VisitState::DueSoon,
            Some(at("2026-10-20 10:00")),
            "重点关注人员每月走访"
        ),
        "ten days before the month ends"
    );
    // The phone's clock is a month fast; the server's time (learned at the
    // last sync) decides.
    f.clock.0.store(NOW_MS + 31 * DAY, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(f.store.due_visits(&f.grid.id).unwrap()[0].state, VisitState::Overdue);
    f.raw()
        .execute(
            "INSERT OR REPLACE INTO meta (key, value) VALUES ('clock_offset_ms', ?1)",
            [(-31 * DAY).to_string()],
        )
        .unwrap();
    assert_eq!(f.store.due_visits(&f.grid.id).unwrap()[0].state, VisitState::DueSoon);
}

/// A phone that stored the built-in catalogue of an earlier build (the same
/// version, without visit rules) reads this build's at the next open.
#[test]
fn the_built_in_catalogue_of_this_build_replaces_an_earlier_build_s_at_the_same_version() {
    let f = Fixture::new();
    let mut earlier = serde_json::to_value(Catalogue::builtin()).unwrap();
    earlier.as_object_mut().unwrap().remove("visit_rules");
    f.raw()
        .execute("UPDATE catalogue SET body = ?1 WHERE id = 1", [earlier.to_string()])
        .unwrap();
    let (path, clock) = (f.path(), f.clock.clone());
    drop(f.store);
    let store = Fixture::reopen(&path, &clock);
    assert_eq!(*store.catalogue(), Catalogue::builtin());
    assert!(!store.catalogue().visit_rules.is_empty());
}
