//! Who may do what: every role against every endpoint. Only what each role
//! may do succeeds.

use fieldgrid_tests::{District, PASSWORD, T0};
use serde_json::{Value, json};

use crate::helpers::*;

/// (status, body) of a raw call with an optional token.
fn raw(d: &District, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> u16 {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{}{path}", d.server.url());
    let auth = token.map(|t| format!("Bearer {t}"));
    let with = |r: ureq::RequestBuilder<ureq::typestate::WithoutBody>| match &auth {
        Some(a) => r.header("authorization", a),
        None => r,
    };
    let with_body = |r: ureq::RequestBuilder<ureq::typestate::WithBody>| match &auth {
        Some(a) => r.header("authorization", a),
        None => r,
    };
    let resp = match method {
        "GET" => with(agent.get(&url)).call(),
        "HEAD" => with(agent.head(&url)).call(),
        "POST" => with_body(agent.post(&url)).send_json(body.unwrap_or(json!({}))),
        "DELETE" => with(agent.delete(&url)).call(),
        "PATCH" => with_body(agent.patch(&url))
            .header("upload-offset", "0")
            .header("upload-length", "4")
            .send(&[0xFF, 0xD8, 0xFF, 0xE0][..]),
        _ => unreachable!(),
    };
    resp.unwrap().status().as_u16()
}

#[test]
fn every_role_against_every_endpoint() {
    let d = District::new();
    let admin = d.server.admin();
    let cheap = fieldgrid_server::auth::cheap_hasher();
    admin
        .add_account_with("it", PASSWORD, fieldgrid_protocol::Role::Admin, &cheap)
        .unwrap();
    admin.add_department_account("gas", PASSWORD, "dept-gas").unwrap();
    // An account the matrix acts on (disable, reset, revoke, wipe).
    let target = admin
        .add_worker("target", PASSWORD, &["grid-a".to_owned()], &cheap)
        .unwrap();
    let a = d.device("a", "wa1", &d.server.url());
    let i = a
        .store
        .report_incident(&incident("grid-a", "resident_request", T0 - 1000), &[])
        .unwrap();
    let j = a
        .store
        .report_incident(&incident("grid-a", "neighbour_dispute", T0 - 1000), &[])
        .unwrap();
    a.sync().unwrap();
    let worker_a = token(&d, "wa1");
    let worker_b = token(&d, "wb");
    let centre = token(&d, "centre");
    let gas = token(&d, "gas");
    let it = token(&d, "it");
    token(&d, "target"); // its device "tester"
    // `j` is the gas department's.
    let (status, _) = call(
        &d,
        &centre,
        "POST",
        &format!("/v1/centre/incidents/{}/events", j.id),
        Some(json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 3_600_000})),
    );
    assert_eq!(status, 200);
    let push = |grid: &str| {
        json!({"device_id": "x", "operations": [{"op_id": fieldgrid_core::new_id(), "entity": "place",
            "entity_id": fieldgrid_core::new_id(), "kind": "create", "patch": {"grid_id": grid, "kind": "compound", "name": "小区"},
            "base_version": null, "created_at_ms": T0}]})
    };
    let sha = "ab".repeat(32);
    let dispatch = json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 3_600_000});
    let events = format!("/v1/centre/incidents/{}/events", i.id);
    let dept_events = format!("/v1/department/incidents/{}/events", j.id);
    let photo = format!("/v1/photos/{sha}");
    let acct = |what: &str| format!("/v1/accounts/{target}/{what}");
    // (method, path, body) and the status for: worker A, worker B, centre,
    // department, district IT, no token, forged token.
    let cases: Vec<(&str, String, Option<Value>, [u16; 7])> = vec![
        (
            "GET",
            "/v1/sync/changes".into(),
            None,
            [200, 200, 200, 200, 200, 401, 401],
        ),
        (
            "GET",
            "/v1/sync/changes?grid=grid-a".into(),
            None,
            [200, 403, 200, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/v1/sync/changes?grid=grid-b".into(),
            None,
            [403, 200, 200, 403, 403, 401, 401],
        ),
        (
            "POST",
            "/v1/sync/push".into(),
            Some(push("grid-a")),
            [200, 200, 403, 403, 403, 401, 401],
        ),
        // A hash no photo record of the caller's grids (a department: of
        // incidents dispatched to it) names does not exist for it; uploading
        // is a worker's and a department's business.
        ("HEAD", photo.clone(), None, [404, 404, 403, 404, 403, 401, 401]),
        ("PATCH", photo.clone(), None, [404, 404, 403, 404, 403, 401, 401]),
        // Reading photos: the centre too; district IT never (console.rs
        // reads real photos role by role).
        ("GET", photo.clone(), None, [404, 404, 404, 404, 403, 401, 401]),
        ("GET", "/v1/conflicts".into(), None, [200, 200, 200, 403, 200, 401, 401]),
        // Problem reports are a worker's phone's (a report of another
        // grid's record is taken and kept as nothing); the list is the
        // centre's and district IT's.
        (
            "POST",
            "/v1/sync/problems".into(),
            Some(json!({"problems": [{"entity": "incident", "entity_id": i.id, "version": 1, "code": "unreadable"}]})),
            [200, 200, 403, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/v1/centre/problems".into(),
            None,
            [403, 403, 200, 403, 200, 401, 401],
        ),
        (
            "GET",
            "/v1/centre/incidents".into(),
            None,
            [403, 403, 200, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/v1/centre/stats".into(),
            None,
            [403, 403, 200, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/v1/centre/coverage?rule=elderly_alone_monthly_visit".into(),
            None,
            [403, 403, 200, 403, 403, 401, 401],
        ),
        (
            "POST",
            events.clone(),
            Some(dispatch),
            [403, 403, 200, 403, 403, 401, 401],
        ),
        (
            "GET",
            "/v1/department/incidents".into(),
            None,
            [403, 403, 403, 200, 403, 401, 401],
        ),
        (
            "POST",
            dept_events,
            Some(json!({"kind": "progress", "note": ""})),
            [403, 403, 403, 200, 403, 401, 401],
        ),
        ("GET", "/v1/accounts".into(), None, [403, 403, 200, 403, 200, 401, 401]),
        ("GET", acct("devices"), None, [403, 403, 200, 403, 200, 401, 401]),
        ("POST", acct("enable"), None, [403, 403, 200, 403, 200, 401, 401]),
        (
            "POST",
            acct("password"),
            Some(json!({"password": "another long password"})),
            [403, 403, 204, 403, 204, 401, 401],
        ),
        (
            "POST",
            acct("devices/tester/wipe"),
            Some(json!({"mode": "wipe"})),
            [403, 403, 200, 403, 200, 401, 401],
        ),
        (
            "POST",
            acct("devices/tester/revoke"),
            None,
            [403, 403, 204, 403, 204, 401, 401],
        ),
        ("GET", "/v1/audit".into(), None, [403, 403, 403, 403, 200, 401, 401]),
    ];
    let tokens = [
        Some(worker_a.as_str()),
        Some(worker_b.as_str()),
        Some(centre.as_str()),
        Some(gas.as_str()),
        Some(it.as_str()),
        None,
        Some("forged-token"),
    ];
    let who = [
        "worker A",
        "worker B",
        "centre",
        "department",
        "district IT",
        "no token",
        "forged",
    ];
    for (method, path, body, expected) in &cases {
        for (who, (token, want)) in who.iter().zip(tokens.iter().zip(expected)) {
            let got = raw(&d, *token, method, path, body.clone());
            assert_eq!(got, *want, "{who}: {method} {path}");
        }
    }
    // Disabling: not a worker's or a department's; an operator's or IT's.
    for (t, want) in [(&worker_a, 403), (&gas, 403), (&centre, 200)] {
        assert_eq!(raw(&d, Some(t), "POST", &acct("disable"), None), want);
    }
    // Signing out and confirming a wipe: every signed-in role, its own session.
    for t in [&worker_b, &gas, &it] {
        assert_eq!(raw(&d, Some(t), "DELETE", "/v1/session", None), 204);
        assert_eq!(raw(&d, Some(t), "GET", "/v1/sync/changes", None), 401);
    }
    let worker_b = token(&d, "wb");
    // Worker B's push to grid-a was answered, but refused operation by operation.
    let (_, receipts) = call(&d, &worker_b, "POST", "/v1/sync/push", Some(push("grid-a")));
    assert_eq!(receipts["receipts"][0]["code"], "forbidden");
    let (_, receipts) = call(&d, &worker_a, "POST", "/v1/sync/push", Some(push("grid-a")));
    assert_eq!(receipts["receipts"][0]["outcome"], "applied");
    // Sign-in itself: a wrong password is refused without saying which part was wrong.
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    for (user, pass) in [("wa1", "wrong password"), ("nobody", PASSWORD)] {
        let mut resp = agent
            .post(format!("{}/v1/session", d.server.url()))
            .send_json(json!({"username": user, "password": pass, "device_id": "x"}))
            .unwrap();
        assert_eq!(resp.status().as_u16(), 401);
        let body: Value = resp.body_mut().read_json().unwrap();
        assert_eq!(body["code"], "bad_credentials");
    }
    // Expired tokens: every protected endpoint says so.
    d.server_clock.advance(13 * 3_600_000);
    for (method, path, body, _) in &cases {
        let path = path.as_str();
        assert_eq!(
            raw(&d, Some(&worker_a), method, path, body.clone()),
            401,
            "{method} {path}"
        );
    }
    let (_, body) = call(&d, &worker_a, "GET", "/v1/sync/changes", None);
    assert_eq!(body["code"], "auth_expired");
}
