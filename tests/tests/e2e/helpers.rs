//! Small helpers shared by the end-to-end tests.

use fieldgrid_core::*;
use fieldgrid_server::records;
use fieldgrid_tests::{District, PASSWORD};
use serde_json::Value;

/// A compound, building, unit and household in `grid`, made on `store`.
pub fn household(store: &Store, grid: &str) -> Household {
    let place = |kind, parent: Option<&Place>, name: &str| {
        store
            .create_place(&NewPlace {
                extra: Vec::new(),
                grid_id: grid.into(),
                kind,
                parent_id: parent.map(|p| p.id.clone()),
                name: name.into(),
            })
            .unwrap()
    };
    let compound = place(PlaceKind::Compound, None, "格林盛景小区");
    let building = place(PlaceKind::Building, Some(&compound), "3号楼");
    let unit = place(PlaceKind::Unit, Some(&building), "2单元");
    store
        .create_household(&NewHousehold {
            extra: Vec::new(),
            grid_id: grid.into(),
            unit_id: Some(unit.id),
            room: "301".into(),
            address: None,
            notes: String::new(),
        })
        .unwrap()
}

/// A valid resident of `household`.
pub fn resident(household: &Household, name: &str, id_number: &str, sex: Sex) -> NewResident {
    fieldgrid_tests::personal([name, id_number]);
    NewResident {
        extra: Vec::new(),
        grid_id: household.grid_id.clone(),
        household_id: Some(household.id.clone()),
        name: name.into(),
        sex,
        id_number: Some(id_number.into()),
        birth_date: None,
        phone: Some("13800000001".into()),
        residence: ResidenceStatus::Registered,
        care_tags: vec![CareTag::ElderlyLivingAlone],
        notes: String::new(),
    }
}

/// An incident report in `grid`.
pub fn incident(grid: &str, category: &str, at: i64) -> NewIncident {
    NewIncident {
        extra: Vec::new(),
        grid_id: grid.into(),
        category: category.into(),
        title: String::new(),
        description: "入户检查发现燃气管道上悬挂衣物".into(),
        location: Some(validate::Location {
            latitude: 37.4563,
            longitude: 118.5031,
            accuracy_m: Some(5.0),
            crs: validate::CoordinateSystem::Wgs84,
        }),
        address: "格林盛景小区3号楼2单元301".into(),
        occurred_at_ms: Some(at),
        involved_residents: vec![],
    }
}

/// The server's copy of a record.
pub fn server_record(d: &District, id: &str) -> records::Record {
    d.server.admin().record(id).unwrap().expect("the server has the record")
}

/// Records of an entity on the server.
pub fn server_count(d: &District, entity: &str) -> usize {
    d.server.admin().records_of(entity, None).unwrap().len()
}

/// Receipts stored on the server.
pub fn server_receipts(d: &District) -> i64 {
    d.server.admin().receipt_count().unwrap()
}

/// Signs in over HTTP and returns the bearer token.
pub fn token(d: &District, user: &str) -> String {
    let body = serde_json::json!({"username": user, "password": PASSWORD, "device_id": "tester"});
    let mut resp = ureq::post(format!("{}/v1/session", d.server.url()))
        .send_json(&body)
        .unwrap();
    let v: Value = resp.body_mut().read_json().unwrap();
    v["token"].as_str().unwrap().to_owned()
}

/// A raw push of `ops` (a JSON array) by `token`, as a hostile client
/// sends one: the receipts.
pub fn push_raw(d: &District, token: &str, ops: Value) -> Vec<Value> {
    let (status, body) = call(
        d,
        token,
        "POST",
        "/v1/sync/push",
        Some(serde_json::json!({"device_id": "hostile", "operations": ops})),
    );
    assert_eq!(status, 200, "{body}");
    body["receipts"].as_array().cloned().unwrap_or_default()
}

/// Signs `phone` in as `user` at `base` and runs one sync.
pub fn sign_in_and_sync(phone: &Store, base: &str, user: &str) -> fieldgrid_core::sync::SyncReport {
    let transport = fieldgrid_core::sync::HttpTransport::new(
        base,
        &fieldgrid_core::sync::HttpOptions {
            timeout: std::time::Duration::from_secs(5),
            pinned_ca_pem: None,
        },
    )
    .unwrap();
    phone.login(&transport, user, PASSWORD).unwrap();
    phone
        .sync(
            &transport,
            &fieldgrid_tests::quick(),
            &|_| {},
            &std::sync::atomic::AtomicBool::new(false),
        )
        .unwrap()
}

/// An HTTP call as a given user: (status, body as JSON or Null).
pub fn call(d: &District, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    call_at(&d.server.url(), token, method, path, body)
}

/// [`call`] to the server at `base` (another process on the same storage).
pub fn call_at(base: &str, token: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder().http_status_as_error(false).build().into();
    let url = format!("{base}{path}");
    let auth = format!("Bearer {token}");
    let mut resp = match (method, body) {
        ("GET", _) => agent.get(&url).header("authorization", &auth).call(),
        ("POST", Some(b)) => agent.post(&url).header("authorization", &auth).send_json(&b),
        ("POST", None) => agent.post(&url).header("authorization", &auth).send_empty(),
        _ => panic!("unsupported {method}"),
    }
    .unwrap();
    let status = resp.status().as_u16();
    let v = resp.body_mut().read_json::<Value>().unwrap_or(Value::Null);
    (status, v)
}

/// A valid ID number registered in Dongying for a birth date and sequence.
pub fn id_for(date: &str, seq: &str) -> String {
    let mut s = format!("370502{date}{seq}");
    let c = validate::id_number::check_character(s.as_bytes()) as char;
    s.push(c);
    s
}

/// A plain SQLCipher connection to a keyed store file (key: 32 times
/// `key_byte`), past the core: what is really in the file.
pub fn raw_store(path: &std::path::Path, key_byte: u8) -> rusqlite::Connection {
    let raw = rusqlite::Connection::open(path).unwrap();
    raw.execute_batch(&format!(
        "PRAGMA key = \"x'{}'\"; PRAGMA cipher_hmac_algorithm = HMAC_SHA256; PRAGMA cipher_page_size = 8192;",
        format!("{key_byte:02x}").repeat(32)
    ))
    .unwrap();
    raw
}

/// `PRAGMA integrity_check` of a keyed store file (key: 32 times `key_byte`),
/// read with a plain SQLCipher connection, not through the core.
pub fn integrity_check(path: &std::path::Path, key_byte: u8) -> String {
    raw_store(path, key_byte)
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}
