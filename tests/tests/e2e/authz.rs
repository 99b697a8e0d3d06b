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
    let a = d.device("a", "wa1", &d.server.url());
    let i = a
        .store
        .report_incident(&incident("grid-a", "resident_request", T0 - 1000), &[])
        .unwrap();
    a.sync().unwrap();
    let worker_a = token(&d, "wa1");
    let worker_b = token(&d, "wb");
    let centre = token(&d, "centre");
    let push = |grid: &str| {
        json!({"device_id": "x", "operations": [{"op_id": fieldgrid_core::new_id(), "entity": "place",
            "entity_id": fieldgrid_core::new_id(), "kind": "create", "patch": {"grid_id": grid, "kind": "compound", "name": "小区"},
            "base_version": null, "created_at_ms": T0}]})
    };
    let sha = "ab".repeat(32);
    let dispatch = json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 3_600_000});
    let events = format!("/v1/centre/incidents/{}/events", i.id);
    let photo = format!("/v1/photos/{sha}");
    // (method, path, body) and the status for: worker A, worker B, centre, no token, forged token.
    let cases: Vec<(&str, &str, Option<Value>, [u16; 5])> = vec![
        ("GET", "/v1/sync/changes", None, [200, 200, 200, 401, 401]),
        ("GET", "/v1/sync/changes?grid=grid-a", None, [200, 403, 200, 401, 401]),
        ("GET", "/v1/sync/changes?grid=grid-b", None, [403, 200, 200, 401, 401]),
        ("POST", "/v1/sync/push", Some(push("grid-a")), [200, 200, 403, 401, 401]),
        // A hash no photo record of the caller's grids names does not exist
        // for it; uploading is a worker's business.
        ("HEAD", &photo, None, [404, 404, 403, 401, 401]),
        ("PATCH", &photo, None, [404, 404, 403, 401, 401]),
        ("GET", "/v1/conflicts", None, [200, 200, 200, 401, 401]),
        ("GET", "/v1/centre/incidents", None, [403, 403, 200, 401, 401]),
        ("GET", "/v1/centre/stats", None, [403, 403, 200, 401, 401]),
        ("POST", &events, Some(dispatch), [403, 403, 200, 401, 401]),
    ];
    let tokens = [
        Some(worker_a.as_str()),
        Some(worker_b.as_str()),
        Some(centre.as_str()),
        None,
        Some("forged-token"),
    ];
    for (method, path, body, expected) in &cases {
        for (who, (token, want)) in ["worker A", "worker B", "centre", "no token", "forged"]
            .iter()
            .zip(tokens.iter().zip(expected))
        {
            let got = raw(&d, *token, method, path, body.clone());
            assert_eq!(got, *want, "{who}: {method} {path}");
        }
    }
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
        assert_eq!(
            raw(&d, Some(&worker_a), method, path, body.clone()),
            401,
            "{method} {path}"
        );
    }
    let (_, body) = call(&d, &worker_a, "GET", "/v1/sync/changes", None);
    assert_eq!(body["code"], "auth_expired");
}
