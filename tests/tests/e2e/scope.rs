//! A worker reads and writes only their grids; an expired session loses nothing.

use fieldgrid_core::*;
use fieldgrid_tests::{District, T0};
use serde_json::json;

use crate::helpers::*;

#[test]
fn a_worker_can_neither_read_nor_write_another_grid() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let h = household(&a.store, "grid-a");
    let r = a
        .store
        .create_resident(&resident(&h, "张伟", &id_for("19800101", "011"), Sex::Male))
        .unwrap();
    a.sync().unwrap();

    // Worker B (grid-b) pulls: nothing of grid-a arrives.
    let b = d.device("b", "wb", &d.server.url());
    b.sync().unwrap();
    assert!(matches!(b.store.get_resident(&r.id), Err(Error::NotFound { .. })));
    let tb = token(&d, "wb");
    let (status, body) = call(&d, &tb, "GET", "/v1/sync/changes?grid=grid-a", None);
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")));
    // ...and cannot write there: the operation is refused, nothing changes.
    let op = json!({"device_id": "x", "operations": [
        {"op_id": new_id(), "entity": "resident", "entity_id": r.id, "kind": "update",
         "patch": {"name": "李四"}, "base_version": 1, "created_at_ms": T0},
        {"op_id": new_id(), "entity": "place", "entity_id": new_id(), "kind": "create",
         "patch": {"grid_id": "grid-a", "kind": "compound", "name": "x"}, "base_version": null, "created_at_ms": T0}]});
    let (status, body) = call(&d, &tb, "POST", "/v1/sync/push", Some(op));
    assert_eq!(status, 200);
    for receipt in body["receipts"].as_array().unwrap() {
        assert_eq!(
            (receipt["outcome"].as_str(), receipt["code"].as_str()),
            (Some("rejected"), Some("forbidden"))
        );
    }
    assert_eq!(server_record(&d, &r.id).fields["name"], "张伟");
    // No token, a forged token: 401.
    let (status, body) = call(&d, "forged", "GET", "/v1/sync/changes", None);
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthenticated")));
    // Workers are not the centre.
    let (status, _) = call(&d, &tb, "GET", "/v1/centre/incidents", None);
    assert_eq!(status, 403);
}

#[test]
fn an_expired_session_gives_auth_expired_and_loses_nothing() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let h = household(&a.store, "grid-a");
    a.store
        .create_resident(&resident(&h, "刘洋", &id_for("19920202", "051"), Sex::Male))
        .unwrap();
    let waiting = a.store.outbox_counts().unwrap();
    d.server_clock.advance(13 * 3_600_000);
    let err = a.sync().unwrap_err();
    assert!(matches!(err, Error::AuthExpired), "{err:?}");
    assert_eq!(a.store.outbox_counts().unwrap(), waiting, "nothing lost or half-sent");
    a.store.login(&a.transport, "wa1", fieldgrid_tests::PASSWORD).unwrap();
    assert_eq!(a.sync().unwrap().confirmed, waiting.pending);
    assert_eq!(server_count(&d, "resident"), 1);
}

#[test]
fn a_grid_taken_away_sends_its_operations_first_then_leaves_the_device() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let h = household(&a.store, "grid-a");
    let r = a
        .store
        .create_resident(&resident(&h, "赵敏", &id_for("19900101", "022"), Sex::Female))
        .unwrap();
    // The district reassigns grid-a to someone else before the phone synced.
    let admin = d.server.admin();
    let id = admin.account_id("wa1").unwrap().unwrap();
    admin.assign_grids(&id, &["grid-b".to_owned()], T0).unwrap();
    // The phone signs in again and learns it: its pending work is sent
    // first, then grid-a's data leaves the phone.
    let login = a.store.login(&a.transport, "wa1", fieldgrid_tests::PASSWORD).unwrap();
    assert_eq!(
        login.grids.iter().map(|g| g.id.as_str()).collect::<Vec<_>>(),
        ["grid-b"]
    );
    let report = a.sync().unwrap();
    assert_eq!((report.confirmed, report.rejected), (5, 0));
    assert_eq!(report.evicted_grids, ["grid-a"]);
    assert!(matches!(a.store.get_resident(&r.id), Err(Error::NotFound { .. })));
    assert!(matches!(a.store.get_household(&h.id), Err(Error::NotFound { .. })));
    assert_eq!(server_record(&d, &r.id).fields["name"], "赵敏", "the server has it");
    assert!(a.store.grids().unwrap().iter().all(|g| g.id != "grid-a"));
}

#[test]
fn a_grid_assigned_later_arrives_whole_and_one_given_back_arrives_again() {
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let b = d.device("b", "wb", &d.server.url());
    // Both phones have pulled before: their cursors are past grid-b's records.
    let ha = household(&a.store, "grid-a");
    a.store
        .create_resident(&resident(&ha, "张伟", &id_for("19800101", "011"), Sex::Male))
        .unwrap();
    let hb = household(&b.store, "grid-b");
    let rb = b
        .store
        .create_resident(&resident(&hb, "李娜", &id_for("19850505", "022"), Sex::Female))
        .unwrap();
    b.sync().unwrap();
    a.sync().unwrap();
    assert!(a.store.get_resident(&rb.id).is_err(), "grid-b is not wa1's yet");

    // The district gives grid-b to wa1 as well (a colleague's grid taken over).
    let assign = |grids: &[&str]| {
        let admin = d.server.admin();
        let id = admin.account_id("wa1").unwrap().unwrap();
        let grids: Vec<String> = grids.iter().map(|g| (*g).to_owned()).collect();
        admin.assign_grids(&id, &grids, T0).unwrap();
    };
    assign(&["grid-a", "grid-b"]);
    a.store.login(&a.transport, "wa1", fieldgrid_tests::PASSWORD).unwrap();
    a.sync().unwrap();
    assert_eq!(
        a.store.get_resident(&rb.id).unwrap().name.as_str(),
        "李娜",
        "grid-b's history arrived"
    );
    assert_eq!(a.store.get_household(&hb.id).unwrap().room, hb.room);

    // Taken away (the data leaves the phone), then given back: it all returns.
    assign(&["grid-a"]);
    a.store.login(&a.transport, "wa1", fieldgrid_tests::PASSWORD).unwrap();
    assert_eq!(a.sync().unwrap().evicted_grids, ["grid-b"]);
    assert!(a.store.get_resident(&rb.id).is_err());
    assign(&["grid-a", "grid-b"]);
    a.store.login(&a.transport, "wa1", fieldgrid_tests::PASSWORD).unwrap();
    a.sync().unwrap();
    assert_eq!(a.store.get_resident(&rb.id).unwrap().meta.sync, SyncStatus::OnServer);
    // Signing in again with the same grids does not pull everything again.
    a.store.login(&a.transport, "wa1", fieldgrid_tests::PASSWORD).unwrap();
    assert_eq!(a.sync().unwrap().pulled, 0);
}
