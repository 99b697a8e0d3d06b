//! Accounts, sessions and devices (issue 13), through the real server on
//! either engine: sign-out, disable, password reset, devices and revocation,
//! remote wipe, sign-in lockouts, departments, the audit log, slow clients.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

use fieldgrid_protocol::Role;
use fieldgrid_tests::{District, PASSWORD, T0};
use serde_json::{Value, json};

use crate::helpers::*;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// (status, body, the wipe header) of a request.
fn request(
    d: &District,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value, Option<String>) {
    let url = format!("{}{path}", d.server.url());
    let auth = token.map(|t| format!("Bearer {t}")).unwrap_or_default();
    let a = agent();
    let resp = match (method, body) {
        ("GET", _) => a.get(&url).header("authorization", &auth).call(),
        ("DELETE", _) => a.delete(&url).header("authorization", &auth).call(),
        ("POST", Some(b)) => a.post(&url).header("authorization", &auth).send_json(&b),
        ("POST", None) => a.post(&url).header("authorization", &auth).send_empty(),
        _ => panic!("{method}"),
    };
    let mut resp = resp.unwrap();
    let wipe = resp
        .headers()
        .get("fieldgrid-wipe")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_json().unwrap_or(Value::Null), wipe)
}

/// Signs in from a named device: (status, body).
fn sign_in(d: &District, user: &str, password: &str, device: &str) -> (u16, Value) {
    let mut resp = agent()
        .post(format!("{}/v1/session", d.server.url()))
        .send_json(json!({"username": user, "password": password, "device_id": device}))
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.body_mut().read_json().unwrap_or(Value::Null))
}

fn token_of(d: &District, user: &str, device: &str) -> String {
    let (status, body) = sign_in(d, user, PASSWORD, device);
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().unwrap().to_owned()
}

fn admin_account(d: &District) -> String {
    d.server
        .admin()
        .add_account_with("it", PASSWORD, Role::Admin, &fieldgrid_server::auth::cheap_hasher())
        .unwrap()
}

#[test]
fn signing_out_ends_the_token() {
    let d = District::new();
    let t = token_of(&d, "wa1", "phone-1");
    assert_eq!(request(&d, Some(&t), "GET", "/v1/sync/changes", None).0, 200);
    assert_eq!(request(&d, Some(&t), "DELETE", "/v1/session", None).0, 204);
    let (status, body, _) = request(&d, Some(&t), "GET", "/v1/sync/changes", None);
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthenticated")));
}

#[test]
fn disabling_an_account_ends_every_session_and_sign_in() {
    let d = District::new();
    let phone_a = token_of(&d, "wa1", "phone-1");
    let phone_b = token_of(&d, "wa1", "phone-2");
    let centre = token_of(&d, "centre", "desk");
    let wa1 = d.server.admin().account_id("wa1").unwrap().unwrap();
    let (status, account, _) = request(&d, Some(&centre), "POST", &format!("/v1/accounts/{wa1}/disable"), None);
    assert_eq!(status, 200, "{account}");
    assert!(account["disabled_at_ms"].is_i64());
    for t in [&phone_a, &phone_b] {
        assert_eq!(request(&d, Some(t), "GET", "/v1/sync/changes", None).0, 401);
    }
    let (status, body) = sign_in(&d, "wa1", PASSWORD, "phone-1");
    assert_eq!((status, body["code"].as_str()), (403, Some("account_disabled")));
    assert_eq!(
        request(&d, Some(&centre), "POST", &format!("/v1/accounts/{wa1}/enable"), None).0,
        200
    );
    assert_eq!(sign_in(&d, "wa1", PASSWORD, "phone-1").0, 200);
    // An operator manages workers and departments, not district IT or itself.
    let it = admin_account(&d);
    assert_eq!(
        request(&d, Some(&centre), "POST", &format!("/v1/accounts/{it}/disable"), None).0,
        404
    );
}

#[test]
fn a_password_reset_ends_the_old_sessions() {
    let d = District::new();
    let old = token_of(&d, "wa1", "phone-1");
    let centre = token_of(&d, "centre", "desk");
    let wa1 = d.server.admin().account_id("wa1").unwrap().unwrap();
    let (status, _, _) = request(
        &d,
        Some(&centre),
        "POST",
        &format!("/v1/accounts/{wa1}/password"),
        Some(json!({"password": "a brand new password"})),
    );
    assert_eq!(status, 204);
    assert_eq!(request(&d, Some(&old), "GET", "/v1/sync/changes", None).0, 401);
    assert_eq!(sign_in(&d, "wa1", PASSWORD, "phone-1").0, 401);
    assert_eq!(sign_in(&d, "wa1", "a brand new password", "phone-1").0, 200);
    let (status, _, _) = request(
        &d,
        Some(&centre),
        "POST",
        &format!("/v1/accounts/{wa1}/password"),
        Some(json!({"password": "short"})),
    );
    assert_eq!(status, 400);
}

#[test]
fn devices_are_listed_with_their_last_contact_and_can_be_revoked() {
    let d = District::new();
    let lost = token_of(&d, "wa1", "phone-lost");
    d.server_clock.advance(5 * 60_000);
    let kept = token_of(&d, "wa1", "phone-kept");
    let centre = token_of(&d, "centre", "desk");
    let wa1 = d.server.admin().account_id("wa1").unwrap().unwrap();
    let (status, devices, _) = request(&d, Some(&centre), "GET", &format!("/v1/accounts/{wa1}/devices"), None);
    assert_eq!(status, 200);
    let devices = devices.as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0]["device_id"], "phone-kept", "last contact first");
    assert_eq!(devices[0]["last_seen_ms"], T0 + 5 * 60_000);
    let (status, _, _) = request(
        &d,
        Some(&centre),
        "POST",
        &format!("/v1/accounts/{wa1}/devices/phone-lost/revoke"),
        None,
    );
    assert_eq!(status, 204);
    assert_eq!(request(&d, Some(&lost), "GET", "/v1/sync/changes", None).0, 401);
    assert_eq!(request(&d, Some(&kept), "GET", "/v1/sync/changes", None).0, 200);
    let (status, body) = sign_in(&d, "wa1", PASSWORD, "phone-lost");
    assert_eq!((status, body["code"].as_str()), (403, Some("device_revoked")));
    // Another account's device, or a device that never signed in: 404.
    let (status, _, _) = request(
        &d,
        Some(&centre),
        "POST",
        &format!("/v1/accounts/{wa1}/devices/never-seen/revoke"),
        None,
    );
    assert_eq!(status, 404);
}

#[test]
fn a_lost_phone_learns_at_its_next_contact_that_it_is_to_be_wiped() {
    let d = District::new();
    let phone = token_of(&d, "wa1", "phone-1");
    let other = token_of(&d, "wa1", "phone-2");
    let centre = token_of(&d, "centre", "desk");
    let wa1 = d.server.admin().account_id("wa1").unwrap().unwrap();
    assert_eq!(request(&d, Some(&phone), "GET", "/v1/sync/changes", None).2, None);
    let (status, device, _) = request(
        &d,
        Some(&centre),
        "POST",
        &format!("/v1/accounts/{wa1}/devices/phone-1/wipe"),
        Some(json!({"mode": "wipe"})),
    );
    assert_eq!((status, device["wipe"].as_str()), (200, Some("wipe")));
    // Any answer says so; no more data goes to it; what it sends is taken.
    let (status, body, wipe) = request(&d, Some(&phone), "GET", "/v1/sync/changes", None);
    assert_eq!(
        (status, body["code"].as_str(), wipe.as_deref()),
        (403, Some("wipe_requested"), Some("wipe"))
    );
    let (status, _, wipe) = request(
        &d,
        Some(&phone),
        "POST",
        "/v1/sync/push",
        Some(json!({"device_id": "phone-1", "operations": []})),
    );
    assert_eq!((status, wipe.as_deref()), (200, Some("wipe")));
    assert_eq!(
        request(&d, Some(&other), "GET", "/v1/sync/changes", None).2,
        None,
        "only that device"
    );
    // A sign-in from it while the wipe is pending says so too (issue 21
    // item 12); one from another device does not.
    let signed_in_wipe = |device: &str| {
        let resp = agent()
            .post(format!("{}/v1/session", d.server.url()))
            .send_json(json!({"username": "wa1", "password": PASSWORD, "device_id": device}))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 200);
        resp.headers()
            .get("fieldgrid-wipe")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    assert_eq!(signed_in_wipe("phone-1").as_deref(), Some("wipe"));
    assert_eq!(signed_in_wipe("phone-3"), None);
    // It wipes itself and confirms: its session ends, the wipe shows done.
    assert_eq!(request(&d, Some(&phone), "POST", "/v1/device/wiped", None).0, 204);
    assert_eq!(request(&d, Some(&phone), "GET", "/v1/sync/changes", None).0, 401);
    let (_, devices, _) = request(&d, Some(&centre), "GET", &format!("/v1/accounts/{wa1}/devices"), None);
    let wiped = devices
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["device_id"] == "phone-1")
        .unwrap();
    assert!(wiped["wiped_at_ms"].is_i64(), "{wiped}");
    // A retired phone sends what waits first.
    let (status, _, _) = request(
        &d,
        Some(&centre),
        "POST",
        &format!("/v1/accounts/{wa1}/devices/phone-2/wipe"),
        Some(json!({"mode": "send_then_wipe"})),
    );
    assert_eq!(status, 200);
    assert_eq!(
        request(
            &d,
            Some(&other),
            "POST",
            "/v1/sync/push",
            Some(json!({"device_id": "phone-2", "operations": []}))
        )
        .2
        .as_deref(),
        Some("send-then-wipe")
    );
}

#[test]
fn failed_sign_ins_lock_the_name_for_a_growing_time() {
    let d = District::new();
    for _ in 0..5 {
        assert_eq!(sign_in(&d, "wa1", "wrong password", "p").0, 401);
    }
    // Locked: even the right password waits.
    let mut resp = agent()
        .post(format!("{}/v1/session", d.server.url()))
        .send_json(json!({"username": "wa1", "password": PASSWORD, "device_id": "p"}))
        .unwrap();
    assert_eq!(resp.status().as_u16(), 429);
    assert!(resp.headers().get("retry-after").is_some());
    let body: Value = resp.body_mut().read_json().unwrap();
    assert_eq!(body["code"], "locked");
    // Another account from the same address, with no failures of its own,
    // signs in (issue 21 item 3: an account is locked by its own failures).
    assert_eq!(sign_in(&d, "wb", PASSWORD, "p").0, 200);
    d.server_clock.advance(1_100);
    assert_eq!(sign_in(&d, "wa1", "wrong password", "p").0, 401);
    // The lock grows: a second is no longer enough.
    d.server_clock.advance(1_100);
    assert_eq!(sign_in(&d, "wa1", PASSWORD, "p").0, 429);
    d.server_clock.advance(2_000);
    assert_eq!(
        sign_in(&d, "wa1", PASSWORD, "p").0,
        200,
        "a success clears the name's count"
    );
    // The address's count is not cleared by it (item 6): one more failure
    // of the name while its address is locked, and the name waits for the
    // address's lock.
    assert_eq!(sign_in(&d, "wa1", "wrong password", "p").0, 401);
    assert_eq!(sign_in(&d, "wa1", PASSWORD, "p").0, 429);
    d.server_clock.advance(16 * 60_000);
    assert_eq!(sign_in(&d, "wa1", PASSWORD, "p").0, 200);
}

/// Item 3: five failed sign-ins with made-up names from one address (all
/// of the district's phones, behind the carrier's NAT or the HTTPS proxy)
/// never refuse another account's right password; the made-up names, once
/// tried, wait for the address's lock.
#[test]
fn made_up_names_from_one_address_lock_no_one_else_out() {
    let d = District::new();
    for i in 0..5 {
        assert_eq!(sign_in(&d, &format!("nobody{i}"), "guess", "p").0, 401);
    }
    for user in ["wa1", "wa2", "wb", "centre"] {
        assert_eq!(sign_in(&d, user, PASSWORD, "p").0, 200, "{user}");
    }
    assert_eq!(sign_in(&d, "nobody0", "guess", "p").0, 429, "a name that failed waits");
}

/// Item 6: password spraying with a sign-in of one's own account every
/// four guesses no longer clears the address's count: the guesses lock.
#[test]
fn a_sign_in_of_ones_own_does_not_clear_a_run_of_guesses() {
    let d = District::new();
    for user in [
        "spray0", "spray1", "spray2", "spray3", "spray4", "spray5", "spray6", "spray7", "spray8",
    ] {
        d.server
            .admin()
            .add_account_with(user, PASSWORD, Role::Worker, &fieldgrid_server::auth::cheap_hasher())
            .unwrap();
    }
    let mut locked = 0;
    for round in 0..10 {
        for guess in 0..4 {
            let victim = format!("spray{}", (round * 4 + guess) % 9);
            // The first try of each name is checked; a name tried before
            // waits once the address is locked.
            if sign_in(&d, &victim, "Password1", "p").0 == 429 {
                locked += 1;
            }
        }
        assert_eq!(sign_in(&d, "wa1", PASSWORD, "p").0, 200, "the attacker's own account");
    }
    assert!(locked >= 25, "most of the 40 guesses were refused: {locked}");
}

/// Item 3: behind a trusted proxy the client address is the one it
/// forwards; from anyone else the header is ignored.
#[test]
fn the_client_address_comes_from_a_trusted_proxy_only() {
    let d = District::with_config(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]);
    let from = |ip: &str, user: &str, password: &str| {
        agent()
            .post(format!("{}/v1/session", d.server.url()))
            .header("x-forwarded-for", format!("198.51.100.7, {ip}"))
            .send_json(json!({"username": user, "password": password, "device_id": "p"}))
            .unwrap()
            .status()
            .as_u16()
    };
    for i in 0..5 {
        assert_eq!(from("203.0.113.9", &format!("nobody{i}"), "guess"), 401);
    }
    // The made-up names locked 203.0.113.9, not 203.0.113.10.
    assert_eq!(from("203.0.113.9", "nobody0", "guess"), 429);
    assert_eq!(from("203.0.113.10", "nobody0", "guess"), 401);
    // Lockouts count the forwarded address: the last one before the
    // proxy, not what the client wrote before it.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let counted = |key: &str| {
        runtime
            .block_on(d.server.state.store.lockouts(&[key.to_owned()], T0))
            .unwrap()
            .len()
    };
    assert_eq!(counted("addr:203.0.113.9"), 1);
    assert_eq!(
        counted("addr:198.51.100.7"),
        0,
        "what the client put first is not trusted"
    );
    assert_eq!(counted("addr:127.0.0.1"), 0, "nor is the proxy's own address");
}

#[test]
fn an_unknown_user_name_costs_what_a_wrong_password_costs() {
    let d = District::new();
    // An account hashed like real ones (the suite's accounts use cheap hashes).
    d.server.admin().add_account("real", PASSWORD, Role::Worker).unwrap();
    let attempt = |user: &str| {
        let t = Instant::now();
        assert_eq!(sign_in(&d, user, "wrong password", "p").0, 401);
        t.elapsed()
    };
    let (mut known, mut unknown) = (Vec::new(), Vec::new());
    for round in 0..4 {
        known.push(attempt("real"));
        // A name of its own each round: a name that failed before waits
        // for the address's lock (which a success does not clear).
        unknown.push(attempt(&format!("nobody-at-all-{round}")));
        // A success clears the name's failures (once the address's lock,
        // which it does not clear, has run out).
        d.server_clock.advance(16 * 60_000);
        assert_eq!(sign_in(&d, "real", PASSWORD, "p").0, 200);
    }
    known.sort();
    unknown.sort();
    let (known, unknown) = (known[1], unknown[1]);
    let ratio = unknown.as_secs_f64() / known.as_secs_f64();
    assert!((0.5..2.0).contains(&ratio), "known {known:?}, unknown {unknown:?}");
}

#[test]
fn a_department_sees_and_handles_only_what_was_dispatched_to_it() {
    let d = District::new();
    let admin = d.server.admin();
    admin.add_department("dept-urban", "城管执法").unwrap();
    admin.add_department_account("gas", PASSWORD, "dept-gas").unwrap();
    let a = d.device("a", "wa1", &d.server.url());
    let mine = a
        .store
        .report_incident(&incident("grid-a", "resident_request", T0 - 60_000), &[])
        .unwrap();
    let theirs = a
        .store
        .report_incident(&incident("grid-a", "neighbour_dispute", T0 - 60_000), &[])
        .unwrap();
    a.sync().unwrap();
    let centre = token_of(&d, "centre", "desk");
    for (id, dept) in [(&mine.id, "dept-gas"), (&theirs.id, "dept-urban")] {
        let (status, _, _) = request(
            &d,
            Some(&centre),
            "POST",
            &format!("/v1/centre/incidents/{id}/events"),
            Some(json!({"kind": "dispatched", "department": dept, "deadline_at_ms": T0 + 86_400_000})),
        );
        assert_eq!(status, 200);
    }
    let gas = token_of(&d, "gas", "desk-2");
    let (status, page, _) = request(&d, Some(&gas), "GET", "/v1/department/incidents", None);
    assert_eq!(status, 200);
    let ids: Vec<&str> = page["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [mine.id.as_str()]);
    let event = |id: &str, kind: &str| {
        request(
            &d,
            Some(&gas),
            "POST",
            &format!("/v1/department/incidents/{id}/events"),
            Some(json!({"kind": kind, "note": "已安排人员处理"})),
        )
    };
    assert_eq!(event(&theirs.id, "accepted").0, 404, "another department's incident");
    assert_eq!(event(&mine.id, "dispatched").0, 400, "dispatching is the centre's");
    assert_eq!(event(&mine.id, "accepted").0, 200);
    let (status, body, _) = event(&mine.id, "resolved");
    assert_eq!((status, body["status"].as_str()), (200, Some("resolved")));
    // The centre's endpoints are not a department's.
    assert_eq!(request(&d, Some(&gas), "GET", "/v1/centre/incidents", None).0, 403);
    // The phone sees the department's work.
    a.sync().unwrap();
    let timeline: Vec<String> = a
        .store
        .incident_timeline(&mine.id)
        .unwrap()
        .iter()
        .map(|e| e.kind.as_str().to_owned())
        .collect();
    assert_eq!(timeline, ["reported", "dispatched", "accepted", "resolved"]);
}

#[test]
fn every_centre_department_and_it_action_is_in_the_audit_log() {
    let d = District::new();
    admin_account(&d);
    d.server
        .admin()
        .add_department_account("gas", PASSWORD, "dept-gas")
        .unwrap();
    let a = d.device("a", "wa1", &d.server.url());
    let i = a
        .store
        .report_incident(&incident("grid-a", "resident_request", T0 - 60_000), &[])
        .unwrap();
    a.sync().unwrap();
    let centre = token_of(&d, "centre", "desk");
    request(
        &d,
        Some(&centre),
        "POST",
        &format!("/v1/centre/incidents/{}/events", i.id),
        Some(
            json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 3_600_000,
                    "note": "请联系住户王芳 13912345678"}),
        ),
    );
    let gas = token_of(&d, "gas", "desk-2");
    request(
        &d,
        Some(&gas),
        "POST",
        &format!("/v1/department/incidents/{}/events", i.id),
        Some(json!({"kind": "accepted", "note": ""})),
    );
    let wb = d.server.admin().account_id("wb").unwrap().unwrap();
    request(&d, Some(&centre), "POST", &format!("/v1/accounts/{wb}/disable"), None);
    let it = token_of(&d, "it", "it-desk");
    // Only district IT reads the log.
    assert_eq!(request(&d, Some(&centre), "GET", "/v1/audit", None).0, 403);
    let (status, log, _) = request(&d, Some(&it), "GET", "/v1/audit", None);
    assert_eq!(status, 200);
    let actions: Vec<(&str, &str)> = log
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["role"].as_str().unwrap(), e["action"].as_str().unwrap()))
        .collect();
    assert_eq!(
        actions,
        [
            ("admin", "add_department_account"),
            ("operator", "dispatched"),
            ("department", "accepted"),
            ("operator", "disable_account")
        ]
    );
    let text = log.to_string();
    assert!(
        !text.contains("王芳") && !text.contains("13912345678"),
        "no personal data: {text}"
    );
    assert!(text.contains("127.0.0.1"), "where from");
}

#[test]
fn a_client_that_sends_its_headers_slowly_is_cut_off() {
    let d = District::with_config(|c| c.header_timeout = Duration::from_millis(300));
    let mut stream = std::net::TcpStream::connect(d.server.addr).unwrap();
    stream.write_all(b"POST /v1/session HTTP/1.1\r\nhost: x\r\n").unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 512];
    let n = stream.read(&mut buf).unwrap_or(0);
    let answer = String::from_utf8_lossy(&buf[..n]);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "closed after the header timeout"
    );
    assert!(n == 0 || answer.starts_with("HTTP/1.1 408"), "{answer}");
}

/// Issue 21 item 2 and 3: forty sign-ins that announce a body and never
/// send it, with a made-up bearer token, a made-up cookie or nothing, take
/// no request slot: signed-in phones pull and push, and other sign-ins (a
/// phone's, the console's) go through. The stalled bodies are cut off at
/// the body timeout. (Before: a junk header put a stalled sign-in in the
/// signed-in pool, and stalled bodies held the anonymous slots for 30 s.)
#[test]
fn stalled_sign_ins_take_no_slot_of_anyone_and_are_cut_off() {
    let d = District::with_config(|c| {
        c.max_in_flight = 32;
        c.body_timeout = Duration::from_millis(1_500);
    });
    let t = token_of(&d, "wa1", "phone-1");
    let headers = [
        "authorization: Bearer junk\r\n",
        "cookie: fieldgrid_console=junk\r\n",
        "",
    ];
    let mut stalled: Vec<std::net::TcpStream> = (0..40)
        .map(|i| {
            let mut s = std::net::TcpStream::connect(d.server.addr).unwrap();
            let head = format!(
                "POST /v1/session HTTP/1.1\r\nhost: x\r\n{}content-type: application/json\r\ncontent-length: 100\r\n\r\n{{",
                headers[i % 3]
            );
            s.write_all(head.as_bytes()).unwrap();
            s
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(request(&d, Some(&t), "GET", "/v1/sync/changes", None).0, 200);
    let push = json!({"device_id": "phone-1", "operations": []});
    assert_eq!(request(&d, Some(&t), "POST", "/v1/sync/push", Some(push)).0, 200);
    let (status, body) = sign_in(&d, "wa2", PASSWORD, "phone-2");
    assert_eq!(status, 200, "another sign-in goes through: {body}");
    let console = agent()
        .post(format!("{}/console/login", d.server.url()))
        .header("origin", d.server.url())
        .content_type("application/x-www-form-urlencoded")
        .send(format!("username=centre&password={}", PASSWORD.replace(' ', "+")))
        .unwrap();
    assert!(
        console.status().as_u16() < 400,
        "the console signs in: {}",
        console.status()
    );
    // A junk token is answered at once; a stalled body at the timeout.
    let started = Instant::now();
    for (i, s) in stalled.iter_mut().enumerate() {
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).unwrap_or(0);
        let answer = String::from_utf8_lossy(&buf[..n]);
        let expected = if i % 3 == 0 { "HTTP/1.1 401" } else { "HTTP/1.1 408" };
        assert!(answer.starts_with(expected), "stalled sign-in {i}: {answer:?}");
    }
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "cut off at the body timeout"
    );
}

/// A made-up bearer token on any request is refused as such (401), never
/// counted as signed in.
#[test]
fn a_made_up_token_is_refused_before_it_takes_a_slot() {
    let d = District::with_config(|c| c.max_in_flight = 0);
    let (status, body, _) = request(&d, Some("junk"), "GET", "/v1/sync/changes", None);
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthenticated")));
    // A real token waits for a slot (there are none): 429, not 401.
    let t = token_of(&d, "wa1", "phone-1");
    assert_eq!(request(&d, Some(&t), "GET", "/v1/sync/changes", None).0, 429);
}

#[test]
fn the_servers_files_are_readable_by_its_user_only() {
    use std::os::unix::fs::PermissionsExt;
    let d = District::new();
    let data = &d.server.state.config.data_dir;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(data), 0o700);
    assert_eq!(mode(&data.join("photos")), 0o700);
    if d.database.is_none() {
        assert_eq!(mode(&data.join("server.db")), 0o600);
    }
}

/// A lost phone: at its next sync it learns it is to be wiped, stops, and
/// erases its store and photos; the server sees the wipe done and the
/// phone's session ends.
#[test]
fn a_lost_phone_wipes_itself_at_its_next_sync() {
    let d = District::new();
    let phone = d.device("lost", "wa1", &d.server.url());
    let h = household(&phone.store, "grid-a");
    phone
        .store
        .create_resident(&resident(
            &h,
            "王芳",
            &id_for("19450312", "042"),
            fieldgrid_core::Sex::Female,
        ))
        .unwrap();
    phone.sync().unwrap();
    let device_id = phone.store.device_id().unwrap();
    let wa1 = d.server.admin().account_id("wa1").unwrap().unwrap();
    d.server
        .admin()
        .wipe_device(&wa1, &device_id, fieldgrid_server::store::WipeMode::Wipe)
        .unwrap();
    let err = phone.sync().unwrap_err();
    assert!(matches!(err, fieldgrid_core::Error::WipeRequested), "{err:?}");
    let fieldgrid_tests::Device {
        store, transport, path, ..
    } = phone;
    let photos = store.photo_dir().to_path_buf();
    store.remote_wipe(&transport).unwrap();
    assert!(!path.exists() && !photos.exists(), "the store and its photos are gone");
    let devices = d.server.admin().devices(&wa1).unwrap();
    let lost = devices.iter().find(|x| x.device_id == device_id).unwrap();
    assert_eq!(lost.wipe_state(), "done");
}

/// A retired phone: it sends everything that waits, receives nothing, then
/// is wiped; the server has every operation it held.
#[test]
fn a_retired_phone_sends_what_waits_then_wipes() {
    let d = District::new();
    let phone = d.device("retired", "wa1", &d.server.url());
    let h = household(&phone.store, "grid-a");
    phone.sync().unwrap();
    let before = server_receipts(&d);
    let mut rng = fieldgrid_core::datagen::Rng::new(5);
    for _ in 0..300 {
        let mut r = fieldgrid_core::datagen::resident(&mut rng, "grid-a", Some(&h.id));
        r.id_number = None;
        phone.store.create_resident(&r).unwrap();
    }
    let wa1 = d.server.admin().account_id("wa1").unwrap().unwrap();
    d.server
        .admin()
        .wipe_device(
            &wa1,
            &phone.store.device_id().unwrap(),
            fieldgrid_server::store::WipeMode::SendThenWipe,
        )
        .unwrap();
    let err = phone
        .sync_with(&fieldgrid_core::sync::SyncOptions {
            batch_operations: 100,
            ..fieldgrid_tests::quick()
        })
        .unwrap_err();
    assert!(matches!(err, fieldgrid_core::Error::WipeRequested), "{err:?}");
    assert_eq!(server_receipts(&d) - before, 300, "everything it held was sent first");
    assert_eq!(phone.store.outbox_counts().unwrap().pending, 0);
    phone.store.remote_wipe(&phone.transport).unwrap();
}

/// Signing out on the phone ends the session on the server too.
#[test]
fn signing_out_on_the_phone_ends_its_server_session() {
    let d = District::new();
    let phone = d.device("p", "wa1", &d.server.url());
    phone.sync().unwrap();
    phone.store.sign_out(&phone.transport).unwrap();
    let err = phone.sync().unwrap_err();
    assert!(matches!(err, fieldgrid_core::Error::AuthExpired), "{err:?}");
    assert_eq!(
        d.server
            .admin()
            .devices(&d.server.admin().account_id("wa1").unwrap().unwrap())
            .unwrap()
            .len(),
        1
    );
}

/// A phone shared in shifts: a store per account; the worker handing over
/// sends what waits under their own account before their store goes; the
/// next worker's store never holds the first one's session or work.
#[test]
fn a_shift_handover_sends_the_first_workers_work_under_their_account() {
    use fieldgrid_core::{Store, StoreKey, store_path_for_account};
    let d = District::new();
    let stores = d.dir.path().join("phone-stores");
    std::fs::create_dir_all(&stores).unwrap();
    let transport = fieldgrid_core::sync::HttpTransport::new(&d.server.url(), &Default::default()).unwrap();
    let wa1 = d.server.admin().account_id("wa1").unwrap().unwrap();
    let wa2 = d.server.admin().account_id("wa2").unwrap().unwrap();
    let first = Store::open(
        store_path_for_account(&stores, &wa1),
        Some(&StoreKey::from_bytes(&[1; 32]).unwrap()),
    )
    .unwrap();
    first.login(&transport, "wa1", PASSWORD).unwrap();
    let h = household(&first, "grid-a");
    let made = first
        .create_resident(&resident(
            &h,
            "李秀英",
            &id_for("19520101", "026"),
            fieldgrid_core::Sex::Female,
        ))
        .unwrap();
    // The next worker may not sign in to the first one's store.
    let err = first.login(&transport, "wa2", PASSWORD).unwrap_err();
    assert!(matches!(err, fieldgrid_core::Error::OtherAccount), "{err:?}");
    // Handover: send only, under wa1; then the store can go.
    let sent = first
        .sync(
            &transport,
            &fieldgrid_core::sync::SyncOptions {
                receive: false,
                ..fieldgrid_tests::quick()
            },
            &|_| {},
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!((sent.confirmed, sent.pulled), (5, 0));
    first.wipe(false).unwrap();
    let by = server_record(&d, &made.id);
    assert_eq!(by.grid_id, "grid-a");
    // The next worker's own store, key and session.
    let second = Store::open(
        store_path_for_account(&stores, &wa2),
        Some(&StoreKey::from_bytes(&[2; 32]).unwrap()),
    )
    .unwrap();
    second.login(&transport, "wa2", PASSWORD).unwrap();
    second
        .sync(
            &transport,
            &fieldgrid_tests::quick(),
            &|_| {},
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap();
    assert_eq!(
        second.get_resident(&made.id).unwrap().name.as_str(),
        "李秀英",
        "the grid's data, by pull"
    );
    assert!(
        second.pending_operations(10).unwrap().is_empty(),
        "nothing of the first worker's queued here"
    );
    assert_ne!(
        store_path_for_account(&stores, &wa1),
        store_path_for_account(&stores, &wa2)
    );
}

/// A department's event carries photos of the work done: their bytes go up
/// like a phone's, for incidents dispatched to it only; the phone receives
/// the photo records with the event, and the centre sees the incident whole
/// once the bytes arrived.
#[test]
fn a_department_documents_its_work_with_photos() {
    use sha2::{Digest, Sha256};
    let d = District::new();
    d.server
        .admin()
        .add_department_account("gas", PASSWORD, "dept-gas")
        .unwrap();
    let a = d.device("a", "wa1", &d.server.url());
    let i = a
        .store
        .report_incident(&incident("grid-a", "resident_request", T0 - 60_000), &[])
        .unwrap();
    a.sync().unwrap();
    let centre = token_of(&d, "centre", "desk");
    request(
        &d,
        Some(&centre),
        "POST",
        &format!("/v1/centre/incidents/{}/events", i.id),
        Some(json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 86_400_000})),
    );
    let photo: Vec<u8> = [&[0xFF, 0xD8, 0xFF, 0xE0][..], &[7u8; 3000][..]].concat();
    let sha = hex::encode(Sha256::digest(&photo));
    let gas = token_of(&d, "gas", "desk-2");
    let (status, body, _) = request(
        &d,
        Some(&gas),
        "POST",
        &format!("/v1/department/incidents/{}/events", i.id),
        Some(
            json!({"kind": "resolved", "note": "已更换", "photos": [{"sha256": sha, "size": photo.len(), "mime": "image/jpeg"}]}),
        ),
    );
    assert_eq!((status, body["complete"].as_bool()), (200, Some(false)), "{body}");
    let upload = |token: &str| {
        let mut resp = agent()
            .patch(format!("{}/v1/photos/{sha}", d.server.url()))
            .header("authorization", format!("Bearer {token}"))
            .header("content-type", "application/offset+octet-stream")
            .header("upload-offset", "0")
            .header("upload-length", photo.len().to_string())
            .send(&photo[..])
            .unwrap();
        let _ = resp.body_mut().read_to_string();
        resp.status().as_u16()
    };
    assert_eq!(upload(&token_of(&d, "wb", "b")), 404, "not another grid's worker");
    assert_eq!(upload(&gas), 204);
    let (_, page, _) = request(&d, Some(&centre), "GET", "/v1/centre/incidents", None);
    assert_eq!(page["incidents"][0]["complete"], true);
    a.sync().unwrap();
    let timeline = a.store.incident_timeline(&i.id).unwrap();
    let resolved = timeline.last().unwrap();
    assert_eq!(
        resolved.photos.len(),
        1,
        "the phone holds the department's photo record"
    );
    assert_eq!(resolved.photos[0].sha256, sha);
}
