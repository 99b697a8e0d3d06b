//! The centre dispatches and resolves; the worker's phone sees the timeline;
//! statistics use server time.

use fieldgrid_core::*;
use fieldgrid_tests::{District, T0};
use serde_json::json;

use crate::helpers::*;

#[test]
fn dispatch_resolve_timeline_and_on_time_rate_by_server_time() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    // The phone's clock is two hours slow: deadlines must not follow it.
    a.clock.advance(-2 * 3_600_000);
    let on_time = a
        .store
        .report_incident(&incident("grid-a", "resident_request", T0 - 3 * 3_600_000), &[])
        .unwrap();
    let late = a
        .store
        .report_incident(&incident("grid-a", "neighbour_dispute", T0 - 3 * 3_600_000), &[])
        .unwrap();
    a.sync().unwrap();

    let centre = token(&d, "centre");
    let (status, list) = call(&d, &centre, "GET", "/v1/centre/incidents?status=reported", None);
    assert_eq!((status, list["incidents"].as_array().unwrap().len()), (200, 2));
    let dispatch = |id: &str, hours: i64| {
        let body = json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + hours * 3_600_000, "note": "请燃气公司上门"});
        let (status, i) = call(
            &d,
            &centre,
            "POST",
            &format!("/v1/centre/incidents/{id}/events"),
            Some(body),
        );
        assert_eq!(status, 200, "{i}");
        i
    };
    dispatch(&on_time.id, 2);
    dispatch(&late.id, 1);
    let (status, body) = call(
        &d,
        &centre,
        "POST",
        &format!("/v1/centre/incidents/{}/events", on_time.id),
        Some(json!({"kind": "closed"})),
    );
    assert_eq!(status, 200, "closing straight from dispatched is allowed: {body}");
    // An impossible transition is refused.
    let (status, _) = call(
        &d,
        &centre,
        "POST",
        &format!("/v1/centre/incidents/{}/events", on_time.id),
        Some(json!({"kind": "accepted"})),
    );
    assert_eq!(status, 409);

    // Server time passes the second deadline: overdue, by the server's clock.
    d.server_clock.advance(90 * 60_000);
    let (_, stats) = call(&d, &centre, "GET", "/v1/centre/stats", None);
    let grid = &stats["grids"][0];
    assert_eq!(
        (
            grid["reported"].as_u64(),
            grid["open"].as_u64(),
            grid["overdue"].as_u64()
        ),
        (Some(2), Some(1), Some(1))
    );
    call(
        &d,
        &centre,
        "POST",
        &format!("/v1/centre/incidents/{}/events", late.id),
        Some(json!({"kind": "resolved", "note": "已整改"})),
    );
    let (_, stats) = call(&d, &centre, "GET", "/v1/centre/stats", None);
    assert_eq!(stats["grids"][0]["on_time_rate"].as_f64(), Some(0.5));
    assert_eq!(stats["sub_districts"][0]["key"], "黄河路街道");
    assert_eq!(stats["sub_districts"][0]["finished_on_time"].as_u64(), Some(1));
    assert_eq!(stats["communities"][0]["key"], "汇泉社区");
    assert_eq!(stats["communities"][0]["within"], "黄河路街道");
    assert_eq!(stats["grids"][0]["within"], "汇泉社区");
    let categories: Vec<(&str, u64)> = stats["categories"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["key"].as_str().unwrap(), c["finished_on_time"].as_u64().unwrap()))
        .collect();
    assert_eq!(categories, [("neighbour_dispute", 0), ("resident_request", 1)]);

    // Over a period: the month they were reported in counts them, the next
    // month (open ones included) does not.
    let (_, november) = call(&d, &centre, "GET", "/v1/centre/stats?from=2026-11&to=2026-11", None);
    assert_eq!(november["grids"], stats["grids"]);
    assert_eq!(november["from"], "2026-11");
    let (_, december) = call(&d, &centre, "GET", "/v1/centre/stats?from=2026-12", None);
    assert_eq!(december["grids"], json!([]));
    for bad in ["from=2026-13", "from=26-11", "to=2026-1", "from=2026-11&to=2026-10"] {
        let (status, body) = call(&d, &centre, "GET", &format!("/v1/centre/stats?{bad}"), None);
        assert_eq!(
            (status, body["code"].as_str()),
            (400, Some("bad_request")),
            "{bad}: {body}"
        );
    }

    // The worker's phone sees the progress after its next sync.
    a.sync().unwrap();
    let seen = a.store.get_incident(&late.id).unwrap();
    assert_eq!(seen.status, IncidentStatus::Resolved);
    assert_eq!(seen.department.as_deref(), Some("dept-gas"));
    assert_eq!(
        seen.deadline_at_ms,
        Some(T0 + 3_600_000),
        "the deadline is the server's"
    );
    let timeline: Vec<EventKind> = a
        .store
        .incident_timeline(&late.id)
        .unwrap()
        .iter()
        .map(|e| e.kind)
        .collect();
    assert_eq!(
        timeline,
        [EventKind::Reported, EventKind::Dispatched, EventKind::Resolved]
    );
    assert_eq!(
        a.store.get_incident(&on_time.id).unwrap().status,
        IncidentStatus::Closed
    );
    // The phone learned the server's clock: its dashboard counts by it.
    assert!((a.store.server_now_ms().unwrap() - d.server_clock.now()).abs() < 60_000);
}

#[test]
fn a_published_catalogue_reaches_the_phones_and_both_sides_enforce_it() {
    let d = District::new();
    let mut catalogue = Catalogue::builtin();
    catalogue.version = 2;
    catalogue.categories.retain(|c| c.code != "illegal_parking");
    catalogue.categories.push(Category {
        code: "flood_risk".into(),
        group: CategoryGroup::SafetyHazard,
        name_zh: "内涝隐患".into(),
        name_en: "Flood risk".into(),
        requires_photo: false,
        requires_location: true,
        requires_description: true,
        default_deadline_hours: 24,
    });
    d.server.admin().publish_catalogue(&catalogue, T0).unwrap();
    assert!(
        d.server.admin().publish_catalogue(&Catalogue::builtin(), T0).is_err(),
        "never backwards"
    );

    let a = d.device("a", "wa1", &d.server.url());
    let unknown = a
        .store
        .create_incident_draft(&incident("grid-a", "flood_risk", T0 - 1000))
        .unwrap_err();
    assert_eq!(unknown.as_validation().unwrap().code, Code::UnknownCategory);
    a.sync().unwrap();
    assert_eq!(a.store.catalogue().version, 2);
    let i = a
        .store
        .report_incident(&incident("grid-a", "flood_risk", T0 - 1000), &[])
        .unwrap();
    let report = a.sync().unwrap();
    assert_eq!((report.confirmed, report.rejected), (2, 0));
    assert_eq!(server_record(&d, &i.id).fields["category"], "flood_risk");
    let retired = a
        .store
        .create_incident_draft(&incident("grid-a", "illegal_parking", T0 - 1000))
        .unwrap_err();
    assert_eq!(retired.as_validation().unwrap().code, Code::UnknownCategory);
    // A phone that restarts keeps the catalogue it received.
    let path = a.path.clone();
    drop(a);
    let key = StoreKey::from_bytes(&[7; 32]).unwrap();
    assert_eq!(Store::open(&path, Some(&key)).unwrap().catalogue().version, 2);
}
