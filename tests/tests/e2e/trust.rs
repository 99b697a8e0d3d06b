//! The trust boundary, tried as a hostile client would (issue 10): the real
//! server on loopback, raw HTTP where a well-behaved phone would never go.
//! Each test names the rule it holds; docs/RELIABILITY.md lists them.

use std::io::Write;
use std::time::Duration;

use fieldgrid_core::sync::SyncOptions;
use fieldgrid_core::*;
use fieldgrid_tests::{District, PASSWORD, T0, quick};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::helpers::*;

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder().http_status_as_error(false).build().into()
}

/// A raw request: (status, headers we care about, body as text).
struct Answer {
    status: u16,
    body: String,
    offset: Option<i64>,
    content_type: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn answer(resp: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut resp = resp.unwrap();
    let header = |n: &str| resp.headers().get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let offset = header("upload-offset").and_then(|v| v.parse().ok());
    let content_type = header("content-type").unwrap_or_default();
    let status = resp.status().as_u16();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Answer {
        status,
        body,
        offset,
        content_type,
    }
}

/// A push of raw operations by `token`.
fn push(d: &District, token: &str, operations: Vec<Value>) -> Answer {
    answer(
        agent()
            .post(format!("{}/v1/sync/push", d.server.url()))
            .header("authorization", format!("Bearer {token}"))
            .send_json(json!({"device_id": "hostile", "operations": operations})),
    )
}

fn op(entity: &str, id: &str, kind: &str, patch: Value) -> Value {
    json!({"op_id": new_id(), "entity": entity, "entity_id": id, "kind": kind, "patch": patch,
           "base_version": null, "created_at_ms": T0})
}

/// A compound in `grid`: an operation creating it, and its id.
fn compound(grid: &str, name: &str) -> (Value, String) {
    let id = new_id();
    let patch = json!({"grid_id": grid, "kind": "compound", "parent_id": null, "name": name});
    (op("place", &id, "create", patch), id)
}

fn valid_incident(grid: &str) -> Value {
    json!({"grid_id": grid, "category": "hornets_nest", "title": "", "description": "", "address": "",
           "location": {"latitude": 37.45, "longitude": 118.5, "accuracy_m": 5.0, "crs": "wgs84"},
           "occurred_at_ms": T0 - 60_000, "involved_residents": []})
}

fn receipt(a: &Answer) -> Value {
    assert_eq!(a.status, 200, "{}", a.body);
    a.json()["receipts"][0].clone()
}

fn refused(a: &Answer) -> (String, String) {
    let r = receipt(a);
    assert_eq!(r["outcome"], "rejected", "{r}");
    (
        r["code"].as_str().unwrap_or_default().to_owned(),
        r["field"].as_str().unwrap_or_default().to_owned(),
    )
}

fn centre_event(d: &District, centre: &str, id: &str, body: Value) {
    let (status, answer) = call(
        d,
        centre,
        "POST",
        &format!("/v1/centre/incidents/{id}/events"),
        Some(body),
    );
    assert_eq!(status, 200, "{answer}");
}

/// Item 1 (SYNC.md invariant 11): a new phone first-syncs a grid whose
/// incidents the centre has dispatched and resolved. The dispatch rewrote
/// the incident after its "reported" event, so the pull brings the event
/// first; with one change per page and per commit, nothing may depend on
/// the order.
#[test]
fn a_new_phone_first_syncs_a_grid_after_dispatch_and_resolution() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let reported = a
        .store
        .report_incident(
            &incident("grid-a", "hornets_nest", T0 - 60_000),
            &[NewPhoto {
                source: PhotoSource::Bytes(vec![0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]),
                taken_at_ms: None,
                location: None,
            }],
        )
        .unwrap();
    let h = household(&a.store, "grid-a");
    a.store
        .create_resident(&resident(&h, "王芳", &id_for("19450312", "042"), Sex::Female))
        .unwrap();
    a.sync().unwrap();
    let centre = token(&d, "centre");
    centre_event(
        &d,
        &centre,
        &reported.id,
        json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 3_600_000}),
    );
    centre_event(&d, &centre, &reported.id, json!({"kind": "resolved", "note": "已摘除"}));
    // The household is edited after its residents: it too comes later.
    a.store
        .update_household(&h.id, &[HouseholdChange::Notes("独居老人户".into())])
        .unwrap();
    a.sync().unwrap();

    for (name, options) in [
        ("default pages", quick()),
        (
            "a change a page",
            SyncOptions {
                page_limit: 1,
                pull_commit_changes: 1,
                ..quick()
            },
        ),
    ] {
        let b = d.device(&format!("b-{}", name.len()), "wa2", &d.server.url());
        let report = b.sync_with(&options).unwrap();
        assert!(report.pulled >= 10, "{name}: {report:?}");
        let got = b.store.get_incident(&reported.id).unwrap();
        assert_eq!(got.status, IncidentStatus::Resolved, "{name}");
        let kinds: Vec<EventKind> = b
            .store
            .incident_timeline(&reported.id)
            .unwrap()
            .iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [EventKind::Reported, EventKind::Dispatched, EventKind::Resolved],
            "{name}"
        );
        assert_eq!(
            b.store.get_household(&h.id).unwrap().notes.as_str(),
            "独居老人户",
            "{name}"
        );
        let counts = b.store.outbox_counts().unwrap();
        assert_eq!((counts.pending, counts.rejected), (0, 0), "{name}");
    }
}

/// Item 5: server-owned fields and unknown fields are refused with
/// `not_allowed` and the field; the on-time rate cannot be forged.
#[test]
fn devices_cannot_write_server_fields_or_unknown_ones() {
    let d = District::new();
    let wa = token(&d, "wa1");
    for (field, value) in [
        ("finished_at_ms", json!(1)),
        ("deadline_at_ms", json!(T0 - 1)),
        ("status", json!("closed")),
        ("department", json!("dept-gas")),
        ("reported_at_ms", json!(1)),
        ("reporter", json!("acct-someone-else")),
        ("whatever", json!("x")),
        ("server_version", json!(9)),
    ] {
        let mut patch = valid_incident("grid-a");
        patch[field] = value;
        let a = push(&d, &wa, vec![op("incident", &new_id(), "create", patch)]);
        assert_eq!(refused(&a), ("not_allowed".into(), field.into()), "{field}");
    }
    // A field name that is itself junk is not repeated back.
    let mut patch = valid_incident("grid-a");
    patch["张伟 13812345678".repeat(100)] = json!(1);
    let a = push(&d, &wa, vec![op("incident", &new_id(), "create", patch)]);
    assert_eq!(refused(&a), ("not_allowed".into(), "patch".into()));
    assert!(!a.body.contains("张伟"));
    // Worker events cannot carry the centre's dispatch either.
    let incident_id = new_id();
    let a = push(
        &d,
        &wa,
        vec![
            op("incident", &incident_id, "create", valid_incident("grid-a")),
            op(
                "incident_event",
                &new_id(),
                "create",
                json!({"incident_id": incident_id, "kind": "reported", "note": "", "deadline_at_ms": T0 + 1}),
            ),
        ],
    );
    assert_eq!(a.json()["receipts"][1]["field"], "deadline_at_ms");

    // The one honest path: reported, dispatched with a deadline, resolved
    // after it: late, whatever a device may have wished.
    let id = new_id();
    push(&d, &wa, vec![op("incident", &id, "create", valid_incident("grid-a"))]);
    push(
        &d,
        &wa,
        vec![op(
            "incident_event",
            &new_id(),
            "create",
            json!({"incident_id": id, "kind": "reported", "note": ""}),
        )],
    );
    let centre = token(&d, "centre");
    centre_event(
        &d,
        &centre,
        &id,
        json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 60_000}),
    );
    d.server_clock.advance(120_000);
    centre_event(&d, &centre, &id, json!({"kind": "resolved"}));
    let stored = server_record(&d, &id);
    assert_eq!(stored.fields["finished_at_ms"], json!(T0 + 120_000));
    assert_eq!(stored.fields["reporter"], server_record(&d, &id).fields["reporter"]);
    let (_, stats) = call(&d, &centre, "GET", "/v1/centre/stats", None);
    assert_eq!(stats["grids"][0]["finished_on_time"], 0, "{stats}");
    assert_eq!(stats["grids"][0]["on_time_rate"], 0.0);
}

/// Item 5: every field within the core's limits, nested junk dropped, and
/// a record size cap.
#[test]
fn fields_are_bounded_and_nested_junk_does_not_reach_other_phones() {
    let d = District::new();
    let wa = token(&d, "wa1");
    let (create, _place) = compound("grid-a", "科教小区");
    push(&d, &wa, vec![create]);
    let household_id = new_id();
    push(
        &d,
        &wa,
        vec![op(
            "household",
            &household_id,
            "create",
            json!({"grid_id": "grid-a", "unit_id": null, "room": "301", "address": "", "notes": ""}),
        )],
    );
    // A 1.95 MB field: refused by the record cap; a field over its own
    // limit (notes: 2,000 characters) by that limit.
    let resident = |notes: String| {
        json!({"grid_id": "grid-a", "household_id": household_id, "name": "王芳", "sex": "female",
               "residence": "registered", "care_tags": [], "notes": notes})
    };
    let a = push(
        &d,
        &wa,
        vec![op("resident", &new_id(), "create", resident("x".repeat(1_950_000)))],
    );
    assert_eq!(refused(&a), ("too_large".into(), "patch".into()));
    let a = push(
        &d,
        &wa,
        vec![op("resident", &new_id(), "create", resident("x".repeat(2_001)))],
    );
    assert_eq!(refused(&a), ("too_long".into(), "notes".into()));
    // Junk inside a location is dropped, not stored for every phone to pull.
    let mut patch = valid_incident("grid-a");
    patch["location"]["junk"] = json!("y".repeat(20_000));
    let id = new_id();
    assert_eq!(
        receipt(&push(&d, &wa, vec![op("incident", &id, "create", patch)]))["outcome"],
        "applied"
    );
    assert!(server_record(&d, &id).fields["location"].get("junk").is_none());
    // Lists of references hold record ids only.
    let mut patch = valid_incident("grid-a");
    patch["involved_residents"] = json!(vec!["y".repeat(1000); 20]);
    let a = push(&d, &wa, vec![op("incident", &new_id(), "create", patch)]);
    assert_eq!(refused(&a), ("bad_format".into(), "involved_residents".into()));
    // A care-tag list cannot grow without bound either.
    let resident = json!({"grid_id": "grid-a", "name": "王芳", "sex": "female", "residence": "registered",
                          "care_tags": vec!["disabled"; 100], "notes": ""});
    let a = push(&d, &wa, vec![op("resident", &new_id(), "create", resident)]);
    assert_eq!(refused(&a).1, "care_tags");
}

/// Item 6: op and record ids are canonical UUIDs; the catalogue's reserved
/// id cannot be written by a worker; an update matches its record's entity
/// and grid.
#[test]
fn ids_are_uuids_and_records_keep_their_entity_and_grid() {
    let d = District::new();
    let wa = token(&d, "wa1");
    let wb = token(&d, "wb");
    // Malformed op ids: the whole push is refused (no receipt can be keyed).
    for bad in [String::new(), "x".repeat(700_000), "not-a-uuid".into()] {
        let mut o = op("place", &new_id(), "create", json!({}));
        o["op_id"] = json!(bad);
        let a = push(&d, &wa, vec![o]);
        assert_eq!(a.status, 400, "{}", &a.body[..a.body.len().min(200)]);
        assert!(a.body.len() < 300, "the id is not echoed");
    }
    // Malformed record ids: refused per operation.
    for bad in [
        String::new(),
        "x".repeat(700_000),
        "catalogue".into(),
        new_id().to_uppercase(),
    ] {
        let a = push(
            &d,
            &wa,
            vec![op(
                "place",
                &bad,
                "create",
                json!({"grid_id": "grid-a", "kind": "compound", "parent_id": null, "name": "x"}),
            )],
        );
        assert_eq!(refused(&a), ("bad_format".into(), "entity_id".into()));
    }
    // The district's catalogue stays the district's.
    let before = d.server.admin().catalogue().unwrap().version;
    for kind in ["create", "update"] {
        let a = push(
            &d,
            &wa,
            vec![op(
                "place",
                "catalogue",
                kind,
                json!({"version": 99, "categories": [], "name": "x", "grid_id": "grid-a", "kind": "compound"}),
            )],
        );
        assert_eq!(refused(&a).0, "bad_format");
    }
    let after = d.server.admin().catalogue().unwrap();
    assert_eq!(after.version, before);
    assert!(!after.categories.is_empty());
    // An update must name the record's own entity, and never move it.
    let (create, place) = compound("grid-a", "科教小区");
    push(&d, &wa, vec![create]);
    let a = push(&d, &wa, vec![op("household", &place, "update", json!({"room": "1"}))]);
    assert_eq!(refused(&a), ("not_allowed".into(), "entity_id".into()));
    let a = push(
        &d,
        &wa,
        vec![op("place", &place, "update", json!({"grid_id": "grid-b"}))],
    );
    assert_eq!(refused(&a), ("not_allowed".into(), "grid_id".into()));
    let a = push(&d, &wb, vec![op("place", &place, "update", json!({"name": "别人的"}))]);
    assert_eq!(refused(&a).0, "forbidden");
    // References name records of the right entity in the right grid.
    let (create, other) = compound("grid-b", "b");
    push(&d, &wb, vec![create]);
    for (parent, code) in [(other.as_str(), "other_grid"), (new_id().as_str(), "unknown_reference")] {
        let a = push(
            &d,
            &wa,
            vec![op(
                "place",
                &new_id(),
                "create",
                json!({"grid_id": "grid-a", "kind": "building", "parent_id": parent, "name": "1号楼"}),
            )],
        );
        assert_eq!(refused(&a), (code.into(), "parent_id".into()));
    }
    let a = push(
        &d,
        &wa,
        vec![op(
            "incident_event",
            &new_id(),
            "create",
            json!({"incident_id": place, "kind": "note", "note": "x"}),
        )],
    );
    assert_eq!(refused(&a), ("wrong_kind".into(), "incident_id".into()));
    assert_eq!(server_record(&d, &place).fields["name"], "科教小区");
}

/// Item 7 (SYNC.md invariant 12): another account reusing an op_id gets a
/// rejection, never the first sender's receipt, and its record is not
/// silently dropped: it is told.
#[test]
fn an_idempotency_key_belongs_to_its_sender() {
    let d = District::new();
    let wa = token(&d, "wa1");
    let wb = token(&d, "wb");
    let first = op(
        "place",
        &new_id(),
        "create",
        json!({"grid_id": "grid-a", "kind": "compound", "parent_id": null, "name": "a"}),
    );
    assert_eq!(receipt(&push(&d, &wa, vec![first.clone()]))["outcome"], "applied");
    let mut stolen = op(
        "place",
        &new_id(),
        "create",
        json!({"grid_id": "grid-b", "kind": "compound", "parent_id": null, "name": "b"}),
    );
    stolen["op_id"] = first["op_id"].clone();
    let r = receipt(&push(&d, &wb, vec![stolen.clone()]));
    assert_eq!(
        (r["outcome"].as_str(), r["field"].as_str()),
        (Some("rejected"), Some("op_id"))
    );
    assert_eq!(r["duplicate"], false);
    assert_eq!(server_count(&d, "place"), 1);
    // The first sender's repeat still gets its own receipt.
    let r = receipt(&push(&d, &wa, vec![first]));
    assert_eq!(
        (r["outcome"].as_str(), r["duplicate"].as_bool()),
        (Some("applied"), Some(true))
    );
    assert_eq!(server_receipts(&d), 1, "nothing was stored for the stolen key");
}

fn photo_call(d: &District, token: &str, method: &str, sha: &str, offset: i64, length: i64, chunk: &[u8]) -> Answer {
    let url = format!("{}/v1/photos/{sha}", d.server.url());
    let auth = format!("Bearer {token}");
    match method {
        "HEAD" => answer(agent().head(&url).header("authorization", &auth).call()),
        _ => answer(
            agent()
                .patch(&url)
                .header("authorization", &auth)
                .header("content-type", "application/offset+octet-stream")
                .header("upload-offset", offset.to_string())
                .header("upload-length", length.to_string())
                .send(chunk),
        ),
    }
}

/// An incident with a photo record of `bytes`, pushed raw by `token`: the
/// photo's hash.
fn incident_with_photo(d: &District, token: &str, grid: &str, bytes: &[u8]) -> String {
    let sha = hex::encode(Sha256::digest(bytes));
    let id = new_id();
    let a = push(
        d,
        token,
        vec![
            op("incident", &id, "create", valid_incident(grid)),
            op(
                "photo",
                &new_id(),
                "create",
                json!({"owner": {"kind": "incident", "id": id}, "sha256": sha, "size": bytes.len(),
                       "mime": "image/jpeg", "taken_at_ms": null, "location": null}),
            ),
        ],
    );
    assert_eq!(a.json()["receipts"][1]["outcome"], "applied", "{}", a.body);
    sha
}

/// Item 8: photos belong to records of the caller's grids; one uploader's
/// bad bytes never reset another's; an empty chunk reserves nothing;
/// unfinished uploads have a quota and expire.
#[test]
fn photos_belong_to_records_of_the_callers_grids() {
    let d = District::new();
    let (wa1, wa2, wb) = (token(&d, "wa1"), token(&d, "wa2"), token(&d, "wb"));
    let bytes: Vec<u8> = [0xFF, 0xD8, 0xFF]
        .into_iter()
        .chain((0..3000u32).map(|i| (i * 7) as u8))
        .collect();
    let sha = incident_with_photo(&d, &wa1, "grid-a", &bytes);
    let len = bytes.len() as i64;

    // Another grid's worker: nothing, not even whether it exists.
    assert_eq!(photo_call(&d, &wb, "HEAD", &sha, 0, 0, &[]).status, 404);
    assert_eq!(photo_call(&d, &wb, "PATCH", &sha, 0, len, &bytes[..1000]).status, 404);
    // An empty PATCH reserves nothing.
    assert_eq!(photo_call(&d, &wa1, "PATCH", &sha, 0, len, &[]).status, 400);
    assert_eq!(photo_call(&d, &wa1, "HEAD", &sha, 0, 0, &[]).status, 404);
    // The recorded size only.
    assert_eq!(
        photo_call(&d, &wa1, "PATCH", &sha, 0, len + 1, &bytes[..10]).status,
        400
    );

    // Two uploaders of one grid: wa2's wrong remainder fails wa2 alone.
    assert_eq!(
        photo_call(&d, &wa1, "PATCH", &sha, 0, len, &bytes[..1000]).offset,
        Some(1000)
    );
    assert_eq!(
        photo_call(&d, &wa2, "PATCH", &sha, 0, len, &bytes[..1000]).offset,
        Some(1000)
    );
    let bad = photo_call(&d, &wa2, "PATCH", &sha, 1000, len, &vec![0u8; (len - 1000) as usize]);
    assert_eq!((bad.status, bad.json()["code"].as_str()), (422, Some("hash_mismatch")));
    assert_eq!(
        photo_call(&d, &wa1, "HEAD", &sha, 0, 0, &[]).offset,
        Some(1000),
        "wa1's upload intact"
    );
    assert_eq!(
        photo_call(&d, &wa2, "HEAD", &sha, 0, 0, &[]).status,
        404,
        "wa2 starts again"
    );
    let done = photo_call(&d, &wa1, "PATCH", &sha, 1000, len, &bytes[1000..]);
    assert_eq!((done.status, done.offset), (204, Some(len)));
    // Complete: its grid sees it whole; another grid still sees nothing.
    assert_eq!(photo_call(&d, &wa2, "HEAD", &sha, 0, 0, &[]).offset, Some(len));
    assert_eq!(photo_call(&d, &wb, "HEAD", &sha, 0, 0, &[]).status, 404);

    // A quota of unfinished uploads per account.
    let mut last = None;
    for i in 0..=fieldgrid_server::photos::QUOTA_UPLOADS {
        let bytes: Vec<u8> = (0..100u32).map(|j| (j + i as u32 * 101) as u8).collect();
        let sha = incident_with_photo(&d, &wb, "grid-b", &bytes);
        last = Some(photo_call(&d, &wb, "PATCH", &sha, 0, 100, &bytes[..10]));
    }
    let last = last.unwrap();
    assert_eq!(
        (last.status, last.json()["code"].as_str()),
        (429, Some("quota_exceeded"))
    );
    // Unfinished uploads left alone expire, with their files.
    let partial = d.dir.path().join("server/photos/partial");
    assert_eq!(
        std::fs::read_dir(&partial).unwrap().count() as i64,
        fieldgrid_server::photos::QUOTA_UPLOADS
    );
    d.server_clock.advance(fieldgrid_server::photos::UPLOAD_EXPIRY_MS + 1);
    let gone = d
        .server
        .admin()
        .expire_uploads(&d.dir.path().join("server/photos"), d.server_clock.now())
        .unwrap();
    assert_eq!(gone as i64, fieldgrid_server::photos::QUOTA_UPLOADS);
    assert_eq!(std::fs::read_dir(&partial).unwrap().count(), 0);
    let wb = token(&d, "wb");
    assert_eq!(last_quota_free(&d, &wb), 204, "the quota is free again");
}

fn last_quota_free(d: &District, wb: &str) -> u16 {
    let bytes = b"\xFF\xD8\xFF\xE0 another".to_vec();
    let sha = incident_with_photo(d, wb, "grid-b", &bytes);
    photo_call(d, wb, "PATCH", &sha, 0, bytes.len() as i64, &bytes[..4]).status
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}

fn raw_push(d: &District, token: &str, body: Vec<u8>, gzipped: bool) -> Answer {
    let mut req = agent()
        .post(format!("{}/v1/sync/push", d.server.url()))
        .header("authorization", format!("Bearer {token}"))
        .header("content-type", "application/json");
    if gzipped {
        req = req.header("content-encoding", "gzip");
    }
    answer(req.send(&body[..]))
}

/// Item 9: 5 MiB per request on the wire, 4 MiB of JSON per push once
/// decompressed (axum's own 2 MiB default no longer applies).
#[test]
fn body_limits_are_the_documented_ones() {
    let d = District::new();
    let wa = token(&d, "wa1");
    // About 3 MiB of valid operations: accepted (2 MiB used to be the limit).
    let ops: Vec<Value> = (0..500)
        .map(|_| {
            op(
                "place",
                &new_id(),
                "create",
                json!({"grid_id": "grid-a", "kind": "compound", "parent_id": null, "name": "小区".repeat(50),
                       "junk_is_refused_per_op": "z".repeat(5_500)}),
            )
        })
        .collect();
    let body = serde_json::to_vec(&json!({"device_id": "x", "operations": ops})).unwrap();
    assert!(
        body.len() > 2 * 1024 * 1024 + 512 * 1024 && body.len() < 4 * 1024 * 1024,
        "{}",
        body.len()
    );
    let a = raw_push(&d, &wa, body.clone(), false);
    assert_eq!(a.status, 200, "{}", &a.body[..a.body.len().min(300)]);
    assert_eq!(a.json()["receipts"].as_array().unwrap().len(), 500);
    assert_eq!(raw_push(&d, &wa, gzip(&body), true).status, 200);
    // Over 4 MiB of JSON, however small on the wire: 413.
    let big = serde_json::to_vec(&json!({"device_id": "x", "operations": [], "pad": " ".repeat(4 * 1024 * 1024 + 10)}))
        .unwrap();
    let a = raw_push(&d, &wa, gzip(&big), true);
    assert_eq!(
        (a.status, a.json()["code"].as_str()),
        (413, Some("too_large")),
        "{}",
        a.body
    );
    // Over 5 MiB on the wire: 413 as soon as the headers say so.
    let mut stream = std::net::TcpStream::connect(d.server.addr).unwrap();
    write!(
        stream,
        "POST /v1/sync/push HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {wa}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        5 * 1024 * 1024 + 1
    )
    .unwrap();
    let mut head = [0u8; 512];
    let n = std::io::Read::read(&mut stream, &mut head).unwrap();
    let head = String::from_utf8_lossy(&head[..n]);
    assert!(head.starts_with("HTTP/1.1 413"), "{head}");
    assert!(
        head.contains("application/json") && head.contains("too_large"),
        "{head}"
    );
    // A photo chunk over 1 MiB: 413.
    let a = photo_call(
        &d,
        &wa,
        "PATCH",
        &"ab".repeat(32),
        0,
        2 * 1024 * 1024,
        &vec![0; 1024 * 1024 + 1],
    );
    assert_eq!(a.status, 413);
}

/// Item 10: every error is `{code, message}` JSON, the framework's own
/// included, and none repeats what the client sent.
#[test]
fn every_error_is_json_and_repeats_nothing() {
    let d = District::new();
    let wa = token(&d, "wa1");
    let url = d.server.url();
    let (name, id_number, phone) = ("欧阳娜娜", id_for("19800101", "128"), "13912345678");
    fieldgrid_tests::personal([name, id_number.as_str(), phone]);
    let personal = json!({"username": name, "password": 42, "device_id": [id_number, phone]});
    let answers = vec![
        // 422: a body of the wrong shape, full of personal data.
        answer(agent().post(format!("{url}/v1/session")).send_json(&personal)),
        answer(
            agent()
                .post(format!("{url}/v1/sync/push"))
                .header("authorization", format!("Bearer {wa}"))
                .send_json(
                    json!({"device_id": "x", "operations": [{"op_id": name, "entity": id_number, "kind": phone}]}),
                ),
        ),
        // 400: not JSON at all.
        answer(
            agent()
                .post(format!("{url}/v1/session"))
                .header("content-type", "application/json")
                .send(format!("{{\"username\": \"{name}\", {id_number}").as_bytes()),
        ),
        // 415: not JSON by its type.
        answer(
            agent()
                .post(format!("{url}/v1/session"))
                .header("content-type", "text/plain")
                .send(format!("{name} {id_number}").as_bytes()),
        ),
        // 400: a gzip body that is not gzip.
        answer(
            agent()
                .post(format!("{url}/v1/session"))
                .header("content-type", "application/json")
                .header("content-encoding", "gzip")
                .send(format!("{name} {id_number}").as_bytes()),
        ),
        // 404 and 405 from the router.
        answer(agent().get(format!("{url}/v1/no-such-thing")).call()),
        answer(agent().put(format!("{url}/v1/session")).send_empty()),
        // 400: a query parameter of the wrong type.
        answer(
            agent()
                .get(format!("{url}/v1/sync/changes?after=yesterday"))
                .header("authorization", format!("Bearer {wa}"))
                .call(),
        ),
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [422, 422, 400, 415, 400, 404, 405, 400]);
    for a in &answers {
        assert!(
            a.content_type.starts_with("application/json"),
            "{} {}",
            a.status,
            a.content_type
        );
        let body = a.json();
        assert!(
            body["code"].is_string() && body["message"].is_string(),
            "{}: {}",
            a.status,
            a.body
        );
        for secret in [name, id_number.as_str(), phone, "1980"] {
            assert!(!a.body.contains(secret), "{} repeats input: {}", a.status, a.body);
        }
    }
}

/// Item 11: a protocol version other than 1 is refused (426), on every
/// endpoint, sign-in included; no header means 1.
#[test]
fn only_protocol_version_one_is_served() {
    let d = District::new();
    let url = d.server.url();
    let login = json!({"username": "wa1", "password": PASSWORD, "device_id": "x"});
    for (version, want) in [
        (Some("1"), 200),
        (None, 200),
        (Some("2"), 426),
        (Some("0"), 426),
        (Some("x"), 426),
    ] {
        let mut req = agent().post(format!("{url}/v1/session"));
        if let Some(v) = version {
            req = req.header("fieldgrid-protocol", v);
        }
        let a = answer(req.send_json(&login));
        assert_eq!(a.status, want, "{version:?}");
        if want == 426 {
            assert_eq!(a.json()["code"], "protocol_too_old");
        }
    }
    let wa = token(&d, "wa1");
    let a = answer(
        agent()
            .get(format!("{url}/v1/sync/changes"))
            .header("authorization", format!("Bearer {wa}"))
            .header("fieldgrid-protocol", "2")
            .call(),
    );
    assert_eq!(a.status, 426);
}

/// Item 12: a request that times out stops its database work (SQLite is
/// interrupted and the transaction rolls back), instead of holding the
/// connection for everyone behind it.
#[test]
fn a_request_that_times_out_stops_its_database_work() {
    let d = District::with_config(|c| c.request_timeout = Duration::from_millis(300));
    // Enough conflicts that reading them all takes seconds (the list is
    // not paginated yet: docs/PERFORMANCE.md).
    let conflicts: Vec<fieldgrid_server::records::Record> = (0..200_000)
        .map(|i| fieldgrid_server::records::Record {
            id: new_id(),
            entity: "conflict".into(),
            grid_id: "grid-a".into(),
            version: 1,
            deleted: false,
            fields: json!({"entity": "resident", "entity_id": new_id(), "grid_id": "grid-a", "field": "notes",
                           "winning_value": format!("note {i}"), "losing_value": "an older note", "winning_op": new_id(),
                           "losing_op": new_id(), "at_ms": T0})
            .as_object()
            .cloned()
            .unwrap(),
            field_versions: serde_json::Map::new(),
        })
        .collect();
    d.server.admin().save_records(conflicts, T0).unwrap();
    let centre = token(&d, "centre");
    let stopped = || {
        d.server
            .state
            .store
            .metrics()
            .stopped_calls
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    assert_eq!(stopped(), 0);
    let started = std::time::Instant::now();
    let (status, body) = call(&d, &centre, "GET", "/v1/conflicts", None);
    assert_eq!((status, body["code"].as_str()), (408, Some("timeout")), "{body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    // SQLite reports the work interrupted soon after the answer.
    let until = std::time::Instant::now() + Duration::from_secs(20);
    while stopped() == 0 && std::time::Instant::now() < until {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(stopped(), 1, "the query stopped, it did not run to the end");
    // And the connections serve others again.
    let (status, _) = call(&d, &centre, "GET", "/v1/centre/stats", None);
    assert_eq!(status, 200);
}

/// Issue 21 item 8: rules the phone follows that the server can check on a
/// record alone are the server's too, by the same functions: a birth date
/// before 1900 without an ID number, resolved on the spot without saying
/// how, a negative base version, a deadline beyond a year.
#[test]
fn the_server_applies_the_phones_rules_that_a_record_alone_decides() {
    let d = District::new();
    let wa = token(&d, "wa1");
    let resident = json!({"grid_id": "grid-a", "household_id": null, "name": "王秀英", "sex": "female",
                          "residence": "registered", "birth_date": "1899-12-31"});
    assert_eq!(
        refused(&push(&d, &wa, vec![op("resident", &new_id(), "create", resident)])),
        ("bad_date".to_owned(), "birth_date".to_owned())
    );
    let incident = new_id();
    let a = push(
        &d,
        &wa,
        vec![
            op("incident", &incident, "create", valid_incident("grid-a")),
            op(
                "incident_event",
                &new_id(),
                "create",
                json!({"incident_id": incident, "kind": "reported"}),
            ),
        ],
    );
    assert_eq!(a.json()["receipts"][1]["outcome"], "applied", "{}", a.body);
    let bare = json!({"incident_id": incident, "kind": "resolved_on_site", "note": "  "});
    assert_eq!(
        refused(&push(&d, &wa, vec![op("incident_event", &new_id(), "create", bare)])),
        ("required".to_owned(), "note".to_owned())
    );
    let mut negative = op("place", &new_id(), "update", json!({"name": "x"}));
    negative["base_version"] = json!(-1);
    assert_eq!(push(&d, &wa, vec![negative]).status, 422);
    let centre = token(&d, "centre");
    let (status, body) = call(
        &d,
        &centre,
        "POST",
        &format!("/v1/centre/incidents/{incident}/events"),
        Some(json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": 9_007_199_254_740_991i64})),
    );
    assert_eq!(status, 400, "{body}");
    centre_event(
        &d,
        &centre,
        &incident,
        json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 86_400_000}),
    );
}

/// Issue 21 item 9: a photo record of one's own grid that names another
/// grid's photo (its hash and size, seen on a shared screen or guessed)
/// gets nothing: its bytes are not served through it, HEAD does not call
/// it complete, and its incident stays incomplete; a department it is
/// dispatched to sees nothing either. The grid whose worker sent the bytes
/// sees them, and so does the centre.
#[test]
fn a_photo_record_naming_another_grids_bytes_gets_nothing() {
    let d = District::new();
    let (wa1, wa2, wb) = (token(&d, "wa1"), token(&d, "wa2"), token(&d, "wb"));
    let bytes: Vec<u8> = [0xFF, 0xD8, 0xFF, 0xE0]
        .into_iter()
        .chain((0..3000u32).map(|i| (i * 7) as u8))
        .collect();
    let sha = incident_with_photo(&d, &wa1, "grid-a", &bytes);
    let len = bytes.len() as i64;
    assert_eq!(photo_call(&d, &wa1, "PATCH", &sha, 0, len, &bytes).status, 204);
    let get = |token: &str| {
        agent()
            .get(format!("{}/v1/photos/{sha}", d.server.url()))
            .header("authorization", format!("Bearer {token}"))
            .call()
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!((get(&wa1), get(&wa2)), (200, 200), "the grid sees its photo");

    // wb names the same bytes on an incident of grid-b, and reports it.
    let id = new_id();
    let a = push(
        &d,
        &wb,
        vec![
            op("incident", &id, "create", valid_incident("grid-b")),
            op(
                "photo",
                &new_id(),
                "create",
                json!({"owner": {"kind": "incident", "id": id}, "sha256": sha, "size": len, "mime": "image/jpeg"}),
            ),
            op(
                "incident_event",
                &new_id(),
                "create",
                json!({"incident_id": id, "kind": "reported"}),
            ),
        ],
    );
    for r in a.json()["receipts"].as_array().unwrap() {
        assert_eq!(r["outcome"], "applied", "{r}");
    }
    assert_eq!(get(&wb), 404, "not served through the copied record");
    assert_eq!(
        photo_call(&d, &wb, "HEAD", &sha, 0, 0, &[]).status,
        404,
        "not complete for it"
    );
    let centre = token(&d, "centre");
    let (_, list) = call(&d, &centre, "GET", "/v1/centre/incidents?grid=grid-b", None);
    let incident = list["incidents"][0].clone();
    assert_eq!(
        (incident["id"].as_str(), incident["complete"].as_bool()),
        (Some(id.as_str()), Some(false))
    );
    assert_eq!(get(&centre), 200, "the centre sees the real one");
    // Dispatched to a department: it sees nothing through it.
    centre_event(
        &d,
        &centre,
        &id,
        json!({"kind": "dispatched", "department": "dept-gas", "deadline_at_ms": T0 + 86_400_000}),
    );
    d.server
        .admin()
        .add_department_account("gas", PASSWORD, "dept-gas")
        .unwrap();
    assert_eq!(get(&token(&d, "gas")), 404);
}

/// Issue 21 items 7 and 10: bytes that are not an image are not kept as a
/// photo (415 at the last chunk); an account's unfinished uploads left
/// alone longest make room for new ones, so a lost phone's stale uploads
/// never block the next phone's photos for a week.
#[test]
fn non_images_are_not_kept_and_stale_uploads_make_room() {
    let d = District::new();
    let (wa1, wb) = (token(&d, "wa1"), token(&d, "wb"));
    let text = b"<html><body>not a photo</body></html>".to_vec();
    let sha = incident_with_photo(&d, &wa1, "grid-a", &text);
    let done = photo_call(&d, &wa1, "PATCH", &sha, 0, text.len() as i64, &text);
    assert_eq!(
        (done.status, done.json()["code"].as_str()),
        (415, Some("unsupported_media_type"))
    );
    assert_eq!(
        photo_call(&d, &wa1, "HEAD", &sha, 0, 0, &[]).status,
        404,
        "nothing kept"
    );

    let mut first = None;
    for i in 0..fieldgrid_server::photos::QUOTA_UPLOADS {
        let bytes: Vec<u8> = [0xFF, 0xD8, 0xFF]
            .into_iter()
            .chain((0..100u32).map(|j| (j + i as u32 * 101) as u8))
            .collect();
        let sha = incident_with_photo(&d, &wb, "grid-b", &bytes);
        assert_eq!(
            photo_call(&d, &wb, "PATCH", &sha, 0, bytes.len() as i64, &bytes[..10]).status,
            204
        );
        first.get_or_insert(sha);
        d.server_clock.advance(1_000);
    }
    // Full, with uploads touched within the last minute: a flood is refused.
    assert_eq!(last_quota_free(&d, &wb), 429);
    // Two minutes on, the oldest makes room; it starts again if resumed.
    d.server_clock.advance(120_000);
    assert_eq!(last_quota_free(&d, &wb), 204);
    let first = first.unwrap();
    assert_eq!(
        photo_call(&d, &wb, "HEAD", &first, 0, 0, &[]).status,
        404,
        "the oldest went"
    );
    let partial = d.dir.path().join("server/photos/partial");
    assert_eq!(
        std::fs::read_dir(&partial).unwrap().count() as i64,
        fieldgrid_server::photos::QUOTA_UPLOADS,
        "its file with it"
    );
}

/// Issue 21 item 11: a repeated query parameter is refused, naming itself;
/// two protocol headers are refused, not decided by the first.
#[test]
fn repeats_are_refused_not_decided_by_one_of_them() {
    let d = District::new();
    let wa = token(&d, "wa1");
    let (status, body) = call(&d, &wa, "GET", "/v1/sync/changes?after=0&after=999999", None);
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("after"), "{body}");
    let twice = answer(
        agent()
            .get(format!("{}/v1/sync/changes", d.server.url()))
            .header("authorization", format!("Bearer {wa}"))
            .header("fieldgrid-protocol", "1")
            .header("fieldgrid-protocol", "2")
            .call(),
    );
    assert_eq!(
        (twice.status, twice.json()["code"].as_str()),
        (400, Some("bad_request"))
    );
}

/// Issue 21 item 8: a record has at most 9 photos on the server as on the
/// phone (25 were applied before), counted across pushes.
#[test]
fn a_record_has_at_most_nine_photos() {
    let d = District::new();
    let wa = token(&d, "wa1");
    let incident = new_id();
    let photo = |i: u32| {
        op(
            "photo",
            &new_id(),
            "create",
            json!({"owner": {"kind": "incident", "id": incident}, "sha256": hex::encode(Sha256::digest(i.to_be_bytes())),
                   "size": 100, "mime": "image/jpeg"}),
        )
    };
    let mut ops = vec![op("incident", &incident, "create", valid_incident("grid-a"))];
    ops.extend((0..5).map(photo));
    let a = push(&d, &wa, ops);
    assert!(
        a.json()["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "applied"),
        "{}",
        a.body
    );
    let a = push(&d, &wa, (5..12).map(photo).collect());
    let outcomes: Vec<String> = a.json()["receipts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["outcome"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        outcomes,
        [
            "applied", "applied", "applied", "applied", "rejected", "rejected", "rejected"
        ]
    );
    assert_eq!(a.json()["receipts"][4]["code"], "too_many");
}

/// Issue 21 item 8: the phone's rules that look at other records are the
/// server's too: a household or place that still holds live records is
/// not deleted, and a grid has one live resident per ID number.
#[test]
fn the_server_applies_the_phones_rules_that_look_at_other_records() {
    let d = District::new();
    let (wa, wb) = (token(&d, "wa1"), token(&d, "wb"));
    let (place_op, place) = compound("grid-a", "格林盛景小区");
    let household = new_id();
    let household_op = op(
        "household",
        &household,
        "create",
        json!({"grid_id": "grid-a", "unit_id": place, "room": "301"}),
    );
    let id_number = id_for("19800101", "158");
    let resident = |grid: &str, household: Option<&str>| {
        json!({"grid_id": grid, "household_id": household, "name": "王秀英", "sex": "female",
               "residence": "registered", "id_number": id_number})
    };
    let first = new_id();
    let a = push(
        &d,
        &wa,
        vec![
            place_op,
            household_op,
            op("resident", &first, "create", resident("grid-a", Some(&household))),
        ],
    );
    assert!(
        a.json()["receipts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] == "applied"),
        "{}",
        a.body
    );
    // One ID number, one live resident of the grid; another grid's is its own.
    let second = new_id();
    assert_eq!(
        refused(&push(
            &d,
            &wa,
            vec![op("resident", &second, "create", resident("grid-a", None))]
        )),
        ("duplicate".to_owned(), "id_number".to_owned())
    );
    assert_eq!(
        receipt(&push(
            &d,
            &wb,
            vec![op("resident", &new_id(), "create", resident("grid-b", None))]
        ))["outcome"],
        "applied"
    );
    let other = new_id();
    let mut plain = resident("grid-a", None);
    plain["id_number"] = Value::Null;
    assert_eq!(
        receipt(&push(&d, &wa, vec![op("resident", &other, "create", plain)]))["outcome"],
        "applied"
    );
    assert_eq!(
        refused(&push(
            &d,
            &wa,
            vec![op("resident", &other, "update", json!({"id_number": id_number}))]
        )),
        ("duplicate".to_owned(), "id_number".to_owned())
    );
    // Not emptied: not deleted.
    let delete = |id: &str, entity: &str| op(entity, id, "delete", json!({}));
    assert_eq!(
        refused(&push(&d, &wa, vec![delete(&household, "household")])),
        ("not_allowed".to_owned(), "id".to_owned())
    );
    assert_eq!(
        refused(&push(&d, &wa, vec![delete(&place, "place")])),
        ("not_allowed".to_owned(), "id".to_owned())
    );
    // Emptied, in order: each goes.
    for (id, entity) in [(&first, "resident"), (&household, "household"), (&place, "place")] {
        assert_eq!(
            receipt(&push(&d, &wa, vec![delete(id, entity)]))["outcome"],
            "applied",
            "{entity}"
        );
    }
    // Its ID number is free again.
    assert_eq!(
        receipt(&push(
            &d,
            &wa,
            vec![op("resident", &second, "create", resident("grid-a", None))]
        ))["outcome"],
        "applied"
    );
}

/// Issue 21 item 7: an account's finished photo uploads have a daily cap
/// (120 MiB arrived in 0.9 s before, with no cap).
#[test]
fn finished_photo_uploads_have_a_daily_cap() {
    let d = District::with_config(|c| c.photo_bytes_per_day = 5_000);
    let wa = token(&d, "wa1");
    let photo = |n: u8| -> Vec<u8> {
        [0xFF, 0xD8, 0xFF, n]
            .into_iter()
            .chain((0..2_996u32).map(|i| (i * 7) as u8))
            .collect()
    };
    let send = |wa: &str, bytes: &[u8]| {
        let sha = incident_with_photo(&d, wa, "grid-a", bytes);
        photo_call(&d, wa, "PATCH", &sha, 0, bytes.len() as i64, bytes)
    };
    assert_eq!(send(&wa, &photo(1)).status, 204);
    let refused = send(&wa, &photo(2));
    assert_eq!(
        (refused.status, refused.json()["code"].as_str()),
        (429, Some("quota_exceeded"))
    );
    d.server_clock.advance(24 * 3_600_000 + 1);
    let wa = token(&d, "wa1"); // the session has expired meanwhile
    assert_eq!(send(&wa, &photo(3)).status, 204, "a day later");
}

/// Sends `request` on a fresh connection and reads until the server
/// closes it: (status, content type, body, whole answer).
fn raw_exchange(d: &District, request: &[u8]) -> (u16, String, String, String) {
    let mut stream = std::net::TcpStream::connect(d.server.addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // The server may answer and close before it has read everything.
    let _ = stream.write_all(request);
    let mut all = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stream, &mut all);
    let all = String::from_utf8_lossy(&all).into_owned();
    // The last answer on the connection is the one the test is about.
    let last = &all[all.rfind("HTTP/1.1 ").unwrap_or(0)..];
    let status = last.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = last.split_once("\r\n\r\n").unwrap_or((last, ""));
    let content_type = head
        .lines()
        .find_map(|l| l.strip_prefix("content-type: "))
        .unwrap_or_default()
        .to_owned();
    (status, content_type, body.to_owned(), all)
}

/// Issue 21 item 11: the errors hyper answers by itself, before any handler
/// runs (a request it cannot parse, a URI or headers too large), are
/// `{code, message}` JSON like every other error, repeat nothing, and
/// close the connection; a connection that served a good request first
/// gets its good answer whole, then the JSON error.
#[test]
fn the_errors_the_http_layer_answers_itself_are_json_too() {
    let d = District::new();
    let secret = id_for("19800101", "128");
    fieldgrid_tests::personal([secret.as_str()]);
    let get = |extra: &str| format!("GET /v1/health HTTP/1.1\r\nhost: x\r\n{extra}\r\n");
    let cases: Vec<(&str, String, u16, &str)> = vec![
        (
            "a bare CR",
            get(&format!("x-id: {secret}\rx: y\r\n")),
            400,
            "bad_request",
        ),
        (
            "obs-fold",
            get(&format!("x-id: {secret}\r\n  folded\r\n")),
            400,
            "bad_request",
        ),
        (
            "two content lengths",
            "POST /v1/session HTTP/1.1\r\nhost: x\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n{".to_owned(),
            400,
            "bad_request",
        ),
        (
            "a negative content length",
            "POST /v1/session HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n".to_owned(),
            400,
            "bad_request",
        ),
        (
            "no method",
            format!("{secret} HTTP/1.1\r\nhost: x\r\n\r\n"),
            400,
            "bad_request",
        ),
        (
            "a URI over 64 KiB",
            format!(
                "GET /v1/health?{secret}={} HTTP/1.1\r\nhost: x\r\n\r\n",
                "a".repeat(70_000)
            ),
            414,
            "too_large",
        ),
        (
            "more than 100 headers",
            get(&(0..120).map(|i| format!("x-{i}: {secret}\r\n")).collect::<String>()),
            431,
            "too_large",
        ),
    ];
    for (what, request, status, code) in &cases {
        let (got, content_type, body, all) = raw_exchange(&d, request.as_bytes());
        assert_eq!(got, *status, "{what}: {all}");
        assert!(content_type.starts_with("application/json"), "{what}: {all:?}");
        let body: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
        assert_eq!(body["code"], *code, "{what}: {body}");
        assert!(body["message"].is_string(), "{what}: {body}");
        assert!(!body.to_string().contains(&secret), "{what}: {body}");
    }
    // A good request, then a bad one, on one connection: both answered.
    let two = format!("{}{}", get(""), cases[0].1);
    let (status, _, body, all) = raw_exchange(&d, two.as_bytes());
    assert_eq!(all.matches("HTTP/1.1 200 OK").count(), 1, "{all}");
    assert_eq!(status, 400, "{all}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["code"], "bad_request");
}
