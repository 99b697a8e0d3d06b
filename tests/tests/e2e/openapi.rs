//! docs/openapi.yaml describes what the server actually serves: every
//! documented path and method is routed (and guarded), and nothing else is.

use fieldgrid_tests::District;

/// (method, path) pairs of the OpenAPI document, read line by line.
fn documented() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml")).unwrap();
    let mut out = Vec::new();
    let mut path = None;
    for line in text.lines() {
        if let Some(p) = line.strip_prefix("  /") {
            path = Some(format!("/{}", p.trim_end_matches(':')));
        } else if !line.starts_with("    ")
            && !line.starts_with("  /")
            && !line.trim().is_empty()
            && !line.starts_with(' ')
        {
            path = None;
        } else if let (Some(p), Some(m)) = (&path, line.strip_prefix("    ")) {
            let m = m.trim_end_matches(':');
            if ["get", "post", "head", "patch", "delete"].contains(&m) {
                out.push((m.to_uppercase(), p.clone()));
            }
        }
    }
    out
}

#[test]
fn every_documented_endpoint_is_served_and_guarded() {
    let d = District::new();
    let endpoints = documented();
    assert_eq!(endpoints.len(), 26, "{endpoints:?}");
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let sha = "0".repeat(64);
    for (method, path) in &endpoints {
        let url = format!(
            "{}{}",
            d.server.url(),
            path.replace("{sha256}", &sha)
                .replace("{id}", "x")
                .replace("{device}", "y")
        );
        let status = match method.as_str() {
            "GET" => agent.get(&url).call(),
            "HEAD" => agent.head(&url).call(),
            "POST" => agent.post(&url).header("content-type", "application/json").send("{}"),
            "PATCH" => agent.patch(&url).send(&b"x"[..]),
            "DELETE" => agent.delete(&url).call(),
            _ => unreachable!(),
        }
        .unwrap()
        .status()
        .as_u16();
        let expected: &[u16] = match path.as_str() {
            "/v1/health" => &[200],
            "/v1/session" if method == "POST" => &[400, 422], // served; the empty body is refused
            _ => &[401],                                      // served, and nothing without a token
        };
        assert!(expected.contains(&status), "{method} {path}: {status}");
    }
    // Anything undocumented is not served.
    let status = agent
        .get(format!("{}/v1/records", d.server.url()))
        .call()
        .unwrap()
        .status()
        .as_u16();
    assert_eq!(status, 404);
    // An outdated protocol version is refused with its own code.
    let mut resp = agent
        .get(format!("{}/v1/sync/changes", d.server.url()))
        .header("fieldgrid-protocol", "0")
        .call()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 426);
    let body: serde_json::Value = resp.body_mut().read_json().unwrap();
    assert_eq!(body["code"], "protocol_too_old");
}
