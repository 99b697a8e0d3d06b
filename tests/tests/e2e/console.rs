//! The console over HTTP, as a browser and as an attacker would use it:
//! sessions in a protected cookie, CSRF and origin checks on every change,
//! each role's pages, photos only to those who may see them. (The browser
//! test, `tests/console/`, drives the same pages in Chromium.)

use fieldgrid_core::*;
use fieldgrid_protocol::Role;
use fieldgrid_tests::{District, PASSWORD, T0};
use serde_json::json;

use crate::helpers::*;

/// A browser-like client: keeps nothing between calls but what we pass.
fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

/// An answer: status, headers we look at, body.
struct Page {
    status: u16,
    location: String,
    set_cookie: String,
    headers: ureq::http::HeaderMap,
    body: String,
}

fn answer(mut r: ureq::http::Response<ureq::Body>) -> Page {
    let header = |name: &str| {
        r.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let (location, set_cookie) = (header("location"), header("set-cookie"));
    let headers = r.headers().clone();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    Page {
        status: r.status().as_u16(),
        location,
        set_cookie,
        headers,
        body,
    }
}

fn get(d: &District, cookie: &str, path: &str) -> Page {
    let mut req = agent().get(format!("{}{path}", d.server.url()));
    if !cookie.is_empty() {
        req = req.header("cookie", cookie);
    }
    answer(req.call().unwrap())
}

/// A form POST; `origin` as a browser would send it (`None`: not a browser).
fn post(d: &District, cookie: &str, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> Page {
    let mut req = agent().post(format!("{}{path}", d.server.url()));
    if !cookie.is_empty() {
        req = req.header("cookie", cookie);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    answer(req.send_form(form.iter().copied()).unwrap())
}

/// A multipart form POST (the incident actions, which may carry photos).
fn post_multipart(
    d: &District,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
    photos: &[&[u8]],
    origin: Option<&str>,
) -> Page {
    let boundary = "fieldgrid-test-boundary-7c1f";
    let mut body: Vec<u8> = Vec::new();
    for (name, value) in form {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").bytes(),
        );
    }
    for (i, bytes) in photos.iter().enumerate() {
        body.extend(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p{i}.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n"
            )
            .bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").bytes());
    let mut req = agent()
        .post(format!("{}{path}", d.server.url()))
        .header("content-type", format!("multipart/form-data; boundary={boundary}"));
    if !cookie.is_empty() {
        req = req.header("cookie", cookie);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    answer(req.send(&body[..]).unwrap())
}

/// Signs in through the form: the cookie to send back.
fn sign_in(d: &District, user: &str) -> String {
    let page = post(
        d,
        "",
        "/console/login",
        &[("username", user), ("password", PASSWORD), ("next", "")],
        Some(&d.server.url()),
    );
    assert_eq!(page.status, 303, "{user}: {}", page.body);
    page.set_cookie.split(';').next().unwrap().to_owned()
}

/// The CSRF token a page's forms carry.
fn csrf_of(page: &Page) -> String {
    let at = page
        .body
        .find("name=\"csrf\" value=\"")
        .expect("a form with a CSRF token")
        + 19;
    page.body[at..at + 64].to_owned()
}

/// A reported incident of grid-a with one photo, synced with its photo.
fn reported_with_photo(d: &District) -> (Incident, String, Vec<u8>) {
    let a = d.device("a", "wa1", &d.server.url());
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.extend((0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8));
    let photo = NewPhoto {
        source: PhotoSource::Bytes(bytes.clone()),
        taken_at_ms: Some(T0 - 5000),
        location: None,
    };
    let i = a
        .store
        .report_incident(&incident("grid-a", "gas_pipe_objects", T0 - 60_000), &[photo])
        .unwrap();
    a.sync().unwrap();
    let sha = i.photos[0].sha256.clone();
    (i, sha, bytes)
}

#[test]
fn signing_in_gives_a_protected_cookie_and_every_page_asks_for_it() {
    let d = District::new();
    // Not signed in: the sign-in page, then back to where one was going.
    let page = get(&d, "", "/console/incidents?status=reported");
    assert_eq!(page.status, 303);
    assert_eq!(
        page.location,
        "/console/login?next=%2Fconsole%2Fincidents%3Fstatus%3Dreported"
    );
    let login = get(&d, "", "/console/login?next=//evil.example/");
    assert!(
        !login.body.contains("evil.example"),
        "an outside address is not followed"
    );

    let wrong = post(
        &d,
        "",
        "/console/login",
        &[("username", "centre"), ("password", "not the password")],
        None,
    );
    assert_eq!(wrong.status, 401);
    assert!(wrong.body.contains("用户名或密码错误") && wrong.set_cookie.is_empty());
    assert!(!wrong.body.contains("not the password"), "the password is never echoed");
    let worker = post(
        &d,
        "",
        "/console/login",
        &[("username", "wa1"), ("password", PASSWORD)],
        None,
    );
    assert_eq!(worker.status, 403);
    assert!(worker.body.contains("手机应用") && worker.set_cookie.is_empty());

    let ok = post(
        &d,
        "",
        "/console/login",
        &[
            ("username", "centre"),
            ("password", PASSWORD),
            ("next", "/console/stats"),
        ],
        None,
    );
    assert_eq!((ok.status, ok.location.as_str()), (303, "/console/stats"));
    for part in ["HttpOnly", "SameSite=Strict", "Path=/console", "Max-Age="] {
        assert!(ok.set_cookie.contains(part), "{part} in {}", ok.set_cookie);
    }
    let cookie = ok.set_cookie.split(';').next().unwrap().to_owned();
    let queue = get(&d, &cookie, "/console/incidents");
    assert_eq!(queue.status, 200);
    assert!(queue.body.contains("事件队列"));
    let csp = queue.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(queue.headers["x-frame-options"], "DENY");
    assert_eq!(queue.headers["cache-control"], "no-store");
    let missing = get(&d, &cookie, "/console/no-such-page");
    assert_eq!(missing.status, 404);
    assert!(missing.body.contains("未找到"), "an HTML page in the console");

    // Signing out ends the session on the server, not only in the browser.
    let out = post(&d, &cookie, "/console/logout", &[("csrf", &csrf_of(&queue))], None);
    assert_eq!(out.status, 303);
    assert!(out.set_cookie.contains("Max-Age=0"));
    assert_eq!(get(&d, &cookie, "/console/incidents").status, 303);
}

#[test]
fn a_change_needs_the_sessions_csrf_token_and_the_consoles_own_origin() {
    let d = District::new();
    let (i, _, _) = reported_with_photo(&d);
    let cookie = sign_in(&d, "centre");
    let page = get(&d, &cookie, &format!("/console/incidents/{}", i.id));
    assert_eq!(page.status, 200);
    assert!(page.body.contains("交办"), "the dispatch form is offered");
    let csrf = csrf_of(&page);
    let path = format!("/console/incidents/{}/events", i.id);
    let dispatch = |csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("kind", "dispatched".to_owned()),
            ("department", "dept-gas".to_owned()),
            ("deadline", "2026-11-27T12:00".to_owned()),
            ("note", "请燃气公司上门".to_owned()),
        ]
    };
    let form = |v: &Vec<(&'static str, String)>| v.iter().map(|(k, v)| (*k, v.clone())).collect::<Vec<_>>();
    let send = |fields: Vec<(&'static str, String)>, origin: Option<&str>| {
        let f = form(&fields);
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (*k, v.as_str())).collect();
        post_multipart(&d, &cookie, &path, &pairs, &[], origin)
    };
    let status = || server_record(&d, &i.id).fields["status"].as_str().unwrap().to_owned();

    let mut without = dispatch("");
    without.retain(|(k, _)| *k != "csrf");
    assert_eq!(send(without, None).status, 403, "a form without its token");
    assert_eq!(send(dispatch(&"0".repeat(64)), None).status, 403);
    assert_eq!(send(dispatch(&csrf), Some("http://evil.example")).status, 403);
    let other = sign_in(&d, "centre");
    let other_csrf = csrf_of(&get(&d, &other, "/console/incidents"));
    assert_eq!(send(dispatch(&other_csrf), None).status, 403, "another session's token");
    assert_eq!(status(), "reported", "no refused request changed anything");

    let done = send(dispatch(&csrf), Some(&d.server.url()));
    assert_eq!(
        (done.status, done.location.as_str()),
        (303, format!("/console/incidents/{}", i.id).as_str())
    );
    assert_eq!(status(), "dispatched");
    let record = server_record(&d, &i.id);
    assert_eq!(record.fields["department"], "dept-gas");
    // 2026-11-27 12:00 China time is T0 + 24 h.
    assert_eq!(record.fields["deadline_at_ms"], T0 + 24 * 3_600_000);
    // The same transitions as the API: a second "accepted" by the centre
    // after closing is refused with the page, not a change.
    let page = get(&d, &cookie, &format!("/console/incidents/{}", i.id));
    assert!(page.body.contains("改派"), "a dispatched incident can be reassigned");
    let bad = send(vec![("csrf", csrf.clone()), ("kind", "reported".to_owned())], None);
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("输入有误"));
}

#[test]
fn each_role_sees_its_own_pages_and_a_department_only_its_incidents() {
    let d = District::new();
    let (dispatched, sha, _) = reported_with_photo(&d);
    let a = d.device("a2", "wa2", &d.server.url());
    let other = a
        .store
        .report_incident(&incident("grid-a", "resident_request", T0 - 60_000), &[])
        .unwrap();
    a.sync().unwrap();
    let centre = token(&d, "centre");
    let body = json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 3_600_000});
    let (s, _) = call(
        &d,
        &centre,
        "POST",
        &format!("/v1/centre/incidents/{}/events", dispatched.id),
        Some(body),
    );
    assert_eq!(s, 200);
    let admin = d.server.admin();
    admin.add_department_account("gas", PASSWORD, "dept-gas").unwrap();
    admin
        .add_account_with("it", PASSWORD, Role::Admin, &fieldgrid_server::auth::cheap_hasher())
        .unwrap();

    let gas = sign_in(&d, "gas");
    let queue = get(&d, &gas, "/console/incidents");
    assert_eq!(queue.status, 200);
    assert!(
        queue.body.contains(&dispatched.id) && !queue.body.contains(&other.id),
        "its own incidents only"
    );
    // Asking for another department's incidents by the filter changes nothing.
    let forced = get(&d, &gas, "/console/incidents?department=dept-water");
    assert!(forced.body.contains(&dispatched.id));
    assert_eq!(
        get(&d, &gas, &format!("/console/incidents/{}", dispatched.id)).status,
        200
    );
    assert_eq!(get(&d, &gas, &format!("/console/incidents/{}", other.id)).status, 404);
    assert_eq!(get(&d, &gas, &format!("/console/photos/{sha}")).status, 200);
    for denied in [
        "/console/stats",
        "/console/stats.csv",
        "/console/map",
        "/console/conflicts",
        "/console/audit",
        "/console/accounts",
    ] {
        let page = get(&d, &gas, denied);
        assert_eq!(page.status, 403, "{denied}");
        assert!(page.body.contains("无权访问"), "{denied}: the denied page");
    }
    // A department resolves; the centre may not be acted for.
    let page = get(&d, &gas, &format!("/console/incidents/{}", dispatched.id));
    assert!(
        page.body.contains("办结") && !page.body.contains("结案</button>"),
        "a department's actions only"
    );
    let csrf = csrf_of(&page);
    let close = post_multipart(
        &d,
        &gas,
        &format!("/console/incidents/{}/events", dispatched.id),
        &[("csrf", &csrf), ("kind", "closed")],
        &[],
        None,
    );
    assert_eq!(close.status, 400, "closing is the centre's");

    let it = sign_in(&d, "it");
    for (path, status) in [
        ("/console/accounts", 200),
        ("/console/audit", 200),
        ("/console/incidents", 403),
        ("/console/stats", 403),
    ] {
        assert_eq!(get(&d, &it, path).status, status, "district IT: {path}");
    }
    assert_eq!(get(&d, &it, &format!("/console/photos/{sha}")).status, 403);
    let centre_cookie = sign_in(&d, "centre");
    assert_eq!(get(&d, &centre_cookie, "/console/audit").status, 403);
    for path in [
        "/console/incidents",
        "/console/map",
        "/console/stats",
        "/console/conflicts",
        "/console/accounts",
    ] {
        assert_eq!(get(&d, &centre_cookie, path).status, 200, "centre: {path}");
    }
}

#[test]
fn photos_reach_only_those_who_may_see_them_and_only_as_images() {
    let d = District::new();
    let (i, sha, bytes) = reported_with_photo(&d);
    let centre = token(&d, "centre");
    let fetch = |token: &str| {
        let mut r = agent()
            .get(format!("{}/v1/photos/{sha}", d.server.url()))
            .header("authorization", format!("Bearer {token}"))
            .call()
            .unwrap();
        let status = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .unwrap_or_default();
        let nosniff = r.headers().get("x-content-type-options").is_some()
            && r.headers().get("cache-control").is_some_and(|v| v == "no-store");
        (status, kind, nosniff, r.body_mut().read_to_vec().unwrap_or_default())
    };
    let (status, kind, nosniff, got) = fetch(&centre);
    assert_eq!((status, kind.as_str(), nosniff), (200, "image/jpeg", true));
    assert_eq!(got, bytes);
    assert_eq!(fetch(&token(&d, "wa2")).0, 200, "a worker of the grid");
    assert_eq!(fetch(&token(&d, "wb")).0, 404, "a worker of another grid");
    d.server
        .admin()
        .add_department_account("gas", PASSWORD, "dept-gas")
        .unwrap();
    let gas = token(&d, "gas");
    assert_eq!(fetch(&gas).0, 404, "a department before dispatch");
    let body = json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 3_600_000});
    call(
        &d,
        &centre,
        "POST",
        &format!("/v1/centre/incidents/{}/events", i.id),
        Some(body),
    );
    assert_eq!(fetch(&gas).0, 200, "the department it was dispatched to");
    let (status, _) = call(&d, &centre, "GET", "/v1/photos/not-a-hash", None);
    assert_eq!(status, 400);
}

#[test]
fn statistics_page_and_csv_agree_with_the_api() {
    let d = District::new();
    reported_with_photo(&d);
    let cookie = sign_in(&d, "centre");
    let page = get(&d, &cookie, "/console/stats?from=2026-01&to=2026-12&by=category");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("燃气"), "categories by their Chinese names");
    let csv = get(
        &d,
        &cookie,
        "/console/stats.csv?from=2026-01&to=2026-12&by=sub_district",
    );
    assert_eq!(csv.status, 200);
    assert!(
        csv.headers["content-disposition"]
            .to_str()
            .unwrap()
            .contains("attachment")
    );
    let mut lines = csv.body.lines();
    assert_eq!(
        lines.next(),
        Some("\u{feff}街道,所属,上报,在办,超期,有期限办结,按期办结,按期办结率")
    );
    assert_eq!(lines.next(), Some("黄河路街道,,1,1,0,0,0,—"));
    assert_eq!(lines.next(), Some("合计,,1,1,0,0,0,—"));
    let bad = get(&d, &cookie, "/console/stats?from=2026-13");
    assert_eq!(bad.status, 400);
}

#[test]
fn the_coverage_page_shows_the_report_by_sub_district_and_grid() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let h = household(&a.store, "grid-a");
    let seen = a
        .store
        .create_resident(&resident(&h, "王秀英", &id_for("19400101", "022"), Sex::Female))
        .unwrap();
    a.store
        .create_resident(&resident(&h, "李桂兰", &id_for("19400101", "024"), Sex::Female))
        .unwrap();
    a.store
        .create_service_log(&NewServiceLog {
            grid_id: "grid-a".into(),
            kind: ServiceKind::Visit,
            resident_ids: vec![seen.id],
            notes: String::new(),
            occurred_at_ms: Some(T0 - 60_000),
            photos: vec![],
        })
        .unwrap();
    a.sync().unwrap();
    let cookie = sign_in(&d, "centre");
    let page = get(
        &d,
        &cookie,
        "/console/coverage?rule=elderly_alone_monthly_visit&at=2026-11-26",
    );
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("2026-11-01 至 2026-11-30"), "the period, China time");
    assert!(
        page.body.contains(r#"<strong id="coverage-rate">50.0%</strong>"#),
        "one of two"
    );
    assert!(page.body.contains("黄河路街道") && page.body.contains("grid-a 网格"));
    assert!(!page.body.contains("王秀英"), "counts, never names");
    let csv = get(
        &d,
        &cookie,
        "/console/coverage.csv?rule=elderly_alone_monthly_visit&at=2026-11-26",
    );
    assert_eq!(csv.status, 200);
    let lines: Vec<&str> = csv.body.lines().collect();
    assert_eq!(
        lines,
        [
            "\u{feff}网格,所属街道,应走访,按期,逾期补访,未走访,待走访,按期走访率",
            "grid-a 网格（370502-grid-a）,黄河路街道,2,1,0,0,1,50.0%",
            "全区,,2,1,0,0,1,50.0%"
        ]
    );
    assert!(
        page.body
            .contains("/console/coverage.csv?rule=elderly_alone_monthly_visit")
    );
    assert!(
        get(&d, &cookie, "/console/stats")
            .body
            .contains(r#"href="/console/coverage""#)
    );
    assert_eq!(
        get(&d, &cookie, "/console/coverage").status,
        200,
        "the first rule, today"
    );
    assert_eq!(get(&d, &cookie, "/console/coverage?rule=vip").status, 404);
    assert_eq!(get(&d, &cookie, "/console/coverage?at=2026-13-01").status, 400);
    d.server
        .admin()
        .add_department_account("gas", PASSWORD, "dept-gas")
        .unwrap();
    let gas = sign_in(&d, "gas");
    assert_eq!(get(&d, &gas, "/console/coverage").status, 403);
    assert_eq!(get(&d, &gas, "/console/coverage.csv").status, 403);
}

#[test]
fn the_map_draws_incidents_in_gcj02_and_lays_configured_tiles_under_them() {
    let d = District::with_config(|c| c.map_tiles = Some("https://tiles.district.lan/{z}/{x}/{y}.png".into()));
    let (i, _, _) = reported_with_photo(&d);
    let cookie = sign_in(&d, "centre");
    let map = get(&d, &cookie, "/console/map");
    assert_eq!(map.status, 200);
    assert!(
        map.body.contains(&format!("/console/incidents/{}", i.id)),
        "the incident is a point"
    );
    assert!(map.body.contains("汇泉社区"), "its community is named on the map");
    assert!(
        map.body.contains("<image href=\"https://tiles.district.lan/18/"),
        "tiles at the zoom that fits"
    );
    let csp = map.headers["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("img-src 'self' data: https://tiles.district.lan;"),
        "{csp}"
    );
    // Without tiles: nothing from outside the server.
    let plain = District::new();
    reported_with_photo(&plain);
    let cookie = sign_in(&plain, "centre");
    let map = get(&plain, &cookie, "/console/map");
    assert!(!map.body.contains("<image") && !map.body.contains("https://"));
    // The incident page gives the GCJ-02 position of the WGS-84 report.
    let page = get(&d, &sign_in(&d, "centre"), &format!("/console/incidents/{}", i.id));
    let (lat, lon) = fieldgrid_server::console::map::to_gcj02(37.4563, 118.5031, validate::CoordinateSystem::Wgs84);
    assert!(
        page.body.contains(&format!("{lat:.6}, {lon:.6}（GCJ-02）")),
        "{lat} {lon}"
    );
}

#[test]
fn a_department_resolves_with_photos_of_its_work_that_only_images_pass() {
    let d = District::new();
    let (i, _, _) = reported_with_photo(&d);
    let centre = token(&d, "centre");
    let body = json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 3_600_000});
    call(
        &d,
        &centre,
        "POST",
        &format!("/v1/centre/incidents/{}/events", i.id),
        Some(body),
    );
    d.server
        .admin()
        .add_department_account("gas", PASSWORD, "dept-gas")
        .unwrap();
    let gas = sign_in(&d, "gas");
    let path = format!("/console/incidents/{}/events", i.id);
    let page = get(&d, &gas, &format!("/console/incidents/{}", i.id));
    let csrf = csrf_of(&page);
    let events = || server_count(&d, "incident_event");
    let before = events();

    // Not an image: refused, nothing written.
    let html = b"<html><script>alert(1)</script></html>";
    let refused = post_multipart(&d, &gas, &path, &[("csrf", &csrf), ("kind", "resolved")], &[html], None);
    assert_eq!(refused.status, 400);
    assert_eq!(events(), before);
    // Too many photos: refused.
    let jpeg: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain((0..2048u32).map(|i| (i * 7) as u8))
        .collect();
    let four = [&jpeg[..], &jpeg[..], &jpeg[..], &jpeg[..]];
    let refused = post_multipart(&d, &gas, &path, &[("csrf", &csrf), ("kind", "resolved")], &four, None);
    assert_eq!(refused.status, 400);
    assert_eq!(events(), before);

    let done = post_multipart(
        &d,
        &gas,
        &path,
        &[("csrf", &csrf), ("kind", "resolved"), ("note", "已上门拆除")],
        &[&jpeg[..]],
        None,
    );
    assert_eq!(done.status, 303, "{}", done.body);
    assert_eq!(server_record(&d, &i.id).fields["status"], "resolved");
    // The photo is a record of the event, its bytes are kept, the incident
    // is complete, and the centre sees it on the incident's page.
    let sha = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(&jpeg))
    };
    let (_, list) = call(&d, &centre, "GET", "/v1/centre/incidents", None);
    assert_eq!(list["incidents"][0]["complete"], true);
    let centre_cookie = sign_in(&d, "centre");
    let page = get(&d, &centre_cookie, &format!("/console/incidents/{}", i.id));
    assert!(page.body.contains(&format!("/console/photos/{sha}")) && page.body.contains("办理照片"));
    let mut r = agent()
        .get(format!("{}/v1/photos/{sha}", d.server.url()))
        .header("authorization", format!("Bearer {centre}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.body_mut().read_to_vec().unwrap(), jpeg);
    // The worker's phone pulls the event with its photo record.
    let a = d.device("a3", "wa1", &d.server.url());
    a.sync().unwrap();
    let timeline = a.store.incident_timeline(&i.id).unwrap();
    assert!(timeline.iter().any(|e| e.kind == EventKind::Resolved));
}

#[test]
fn a_device_id_cannot_point_the_account_forms_at_another_device() {
    let d = District::new();
    let sign_in_from = |device: &str| {
        let mut r = agent()
            .post(format!("{}/v1/session", d.server.url()))
            .send_json(json!({"username": "wa1", "password": PASSWORD, "device_id": device}))
            .unwrap();
        let status = r.status().as_u16();
        (status, r.body_mut().read_to_string().unwrap_or_default())
    };
    let long = "x".repeat(101);
    for device in ["../../acct-x/devices/phone-y", "a/b", "..", "", "手机", long.as_str()] {
        let (status, text) = sign_in_from(device);
        assert_eq!(status, 400, "{device:?}");
        assert!(device.len() < 3 || !text.contains(device), "not echoed: {text}");
    }
    // An ordinary id with a dot and a colon: its forms reach it.
    assert_eq!(sign_in_from("phone.1:a").0, 200);
    d.server
        .admin()
        .add_account_with("it", PASSWORD, Role::Admin, &fieldgrid_server::auth::cheap_hasher())
        .unwrap();
    let it = sign_in(&d, "it");
    let worker = d.server.admin().account_id("wa1").unwrap().unwrap();
    let page = get(&d, &it, &format!("/console/accounts/{worker}"));
    assert!(
        page.body.contains("/devices/phone.1%3Aa/revoke"),
        "each segment encoded"
    );
    let revoked = post(
        &d,
        &it,
        &format!("/console/accounts/{worker}/devices/phone.1%3Aa/revoke"),
        &[("csrf", &csrf_of(&page))],
        None,
    );
    assert_eq!(revoked.status, 303);
    let devices = d.server.admin().devices(&worker).unwrap();
    assert!(
        devices
            .iter()
            .any(|x| x.device_id == "phone.1:a" && x.revoked_at_ms.is_some())
    );
}

#[test]
fn notes_are_bounded_and_the_csrf_token_comes_before_anything_else() {
    let d = District::new();
    let (i, _, _) = reported_with_photo(&d);
    let centre = token(&d, "centre");
    let path = format!("/v1/centre/incidents/{}/events", i.id);
    let long = "字".repeat(2_001);
    let (status, body) = call(
        &d,
        &centre,
        "POST",
        &path,
        Some(json!({"kind": "resolved", "note": long})),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(server_record(&d, &i.id).fields["status"], "reported");
    let cookie = sign_in(&d, "centre");
    let csrf = csrf_of(&get(&d, &cookie, &format!("/console/incidents/{}", i.id)));
    let console = format!("/console/incidents/{}/events", i.id);
    let huge = "x".repeat(64 * 1024);
    let form = [("csrf", csrf.as_str()), ("kind", "resolved"), ("note", huge.as_str())];
    assert_eq!(post_multipart(&d, &cookie, &console, &form, &[], None).status, 400);
    // A photo sent before the token is not read: refused as a forgery.
    let boundary = "b";
    let mut body =
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.jpg\"\r\n\r\n")
            .into_bytes();
    body.extend([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]);
    body.extend(
        format!(
            "\r\n--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n--{boundary}--\r\n"
        )
        .bytes(),
    );
    let r = agent()
        .post(format!("{}{console}", d.server.url()))
        .header("cookie", &cookie)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .send(&body[..])
        .unwrap();
    assert_eq!(r.status().as_u16(), 403);
    assert_eq!(server_record(&d, &i.id).fields["status"], "reported");
}

/// The incident page names the inspection that raised an incident and shows
/// the district's own fields by their labels.
#[test]
fn an_incident_shows_its_inspection_and_the_districts_own_fields() {
    let d = District::new();
    let mut catalogue = Catalogue::builtin();
    catalogue.version = 2;
    catalogue.field_defs = catalogue::demo_field_defs();
    d.server.admin().publish_catalogue(&catalogue, T0).unwrap();
    let a = d.device("a", "wa1", &d.server.url());
    let h = household(&a.store, "grid-a"); // before the field the district requires
    a.sync().unwrap();
    let raised = a
        .store
        .record_inspection(&crate::inspections::gas(&h.unit_id.clone().unwrap(), false))
        .unwrap()
        .raised
        .remove(0);
    let mut input = incident("grid-a", "neighbour_dispute", T0 - 60_000);
    input.extra = vec![ItemAnswer {
        item: "people_affected".into(),
        answer: Answer::Number(12.0),
    }];
    let reported = a.store.report_incident(&input, &[]).unwrap();
    a.sync().unwrap();
    let cookie = sign_in(&d, "centre");
    let page = get(&d, &cookie, &format!("/console/incidents/{}", raised.id));
    assert!(
        page.body.contains("来自巡查") && page.body.contains("燃气安全检查"),
        "{}",
        page.body
    );
    let page = get(&d, &cookie, &format!("/console/incidents/{}", reported.id));
    assert!(
        page.body.contains("影响人数") && page.body.contains(">12<"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("来自巡查"));
}

/// Issue 21 item 4: the console's conflicts show residents' values masked,
/// as every other display does (an ID number, a phone, a name, free text).
#[test]
fn conflicts_show_residents_values_masked() {
    let d = District::new();
    let (id_number, phone) = (id_for("19800101", "158"), "13911112222");
    fieldgrid_tests::personal([id_number.as_str(), phone, "欧阳娜娜"]);
    let conflict = |field: &str, winning: &str, losing: &str| fieldgrid_server::records::Record {
        id: new_id(),
        entity: "conflict".into(),
        grid_id: "grid-a".into(),
        version: 1,
        deleted: false,
        fields: json!({"entity": "resident", "entity_id": new_id(), "grid_id": "grid-a", "field": field,
                       "winning_value": winning, "losing_value": losing, "winning_op": new_id(),
                       "losing_op": new_id(), "at_ms": T0})
        .as_object()
        .cloned()
        .unwrap(),
        field_versions: serde_json::Map::new(),
    };
    d.server
        .admin()
        .save_records(
            vec![
                conflict("id_number", &id_number, "370502198001011111"),
                conflict("phone", "13733334444", phone),
                conflict("name", "欧阳娜娜", "欧阳娜"),
            ],
            T0,
        )
        .unwrap();
    let page = get(&d, &sign_in(&d, "centre"), "/console/conflicts");
    assert_eq!(page.status, 200);
    for whole in [id_number.as_str(), phone, "欧阳娜娜"] {
        assert!(!page.body.contains(whole), "shown whole: {whole}");
    }
    assert!(
        page.body.contains("139****2222") && page.body.contains("欧**娜"),
        "shown masked"
    );
}

/// Issue 21 item 5: an action's photos are kept only once the action is
/// allowed: actions on made-up incidents (404), and steps the incident's
/// state does not allow (409), leave no bytes on disk.
#[test]
fn a_refused_action_keeps_none_of_its_photos() {
    let d = District::new();
    let (i, _, _) = reported_with_photo(&d);
    let cookie = sign_in(&d, "centre");
    let csrf = csrf_of(&get(&d, &cookie, &format!("/console/incidents/{}", i.id)));
    let photo_dir = d.server.state.photo_dir.clone();
    let files = || {
        std::fs::read_dir(&photo_dir)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().file_type().unwrap().is_file())
            .count()
    };
    let before = files();
    let big: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain((0..300_000u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8))
        .collect();
    for n in 0..3u8 {
        let mut photo = big.clone();
        photo.push(n);
        let path = format!("/console/incidents/{}/events", new_id());
        let refused = post_multipart(
            &d,
            &cookie,
            &path,
            &[("csrf", &csrf), ("kind", "closed")],
            &[&photo],
            None,
        );
        assert_eq!(refused.status, 404, "{}", refused.body);
    }
    // Accepting is a department's step, and resolving needs a dispatch.
    let path = format!("/console/incidents/{}/events", i.id);
    let refused = post_multipart(
        &d,
        &cookie,
        &path,
        &[("csrf", &csrf), ("kind", "progress")],
        &[&big],
        None,
    );
    assert!(refused.status >= 400, "{}", refused.status);
    assert_eq!(files(), before, "no bytes kept for refused actions");
    assert_eq!(server_record(&d, &i.id).fields["status"], "reported");
}
