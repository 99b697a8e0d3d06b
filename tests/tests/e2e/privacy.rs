//! The whole loop at the most verbose log level: no resident's name, ID
//! number or phone number appears in anything logged, on either side.

use fieldgrid_core::*;
use fieldgrid_tests::{District, T0, captured_logs};

use crate::helpers::*;

#[test]
fn nothing_personal_is_logged_by_devices_or_the_server() {
    let logs = captured_logs();
    let d = District::new();
    let a = d.device("a", "wa1", &d.server.url());
    let b = d.device("b", "wa2", &d.server.url());
    let h = household(&a.store, "grid-a");
    let secrets = [
        ("诸葛青云", id_for("19410707", "072"), "13912340987"),
        ("欧阳娜娜", id_for("19990909", "044"), "0546-7654321"),
    ];
    let mut ids = Vec::new();
    for (name, id_number, phone) in &secrets {
        let mut r = resident(&h, name, id_number, Sex::Female);
        r.phone = Some((*phone).into());
        ids.push(a.store.create_resident(&r).unwrap().id);
    }
    // A refusal from the server, a conflict, a bad input, pulls.
    a.store
        .update_resident(&ids[0], &[ResidentChange::Notes("诸葛青云的女儿".into())])
        .unwrap();
    let _ = a
        .store
        .create_resident(&resident(&h, "诸葛青云", "110105194912310021", Sex::Female));
    a.sync().unwrap();
    b.sync().unwrap();
    a.store
        .update_resident(&ids[1], &[ResidentChange::Phone(Some("13800001111".into()))])
        .unwrap();
    b.store
        .update_resident(&ids[1], &[ResidentChange::Phone(Some("13800002222".into()))])
        .unwrap();
    a.sync().unwrap();
    b.sync().unwrap();
    a.sync().unwrap();
    a.store
        .report_incident(&incident("grid-a", "elderly_care_need", T0 - 1000), &[])
        .unwrap();
    a.sync().unwrap();

    let text = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(text.contains("sync finished"), "logging was captured at all");
    assert!(
        text.contains("concurrent edit recorded as a conflict"),
        "the server's logs were captured too"
    );
    assert!(text.contains("ureq"), "and the HTTP client's");
    for (name, id_number, phone) in &secrets {
        for secret in [*name, id_number.as_str(), *phone, &id_number[6..14]] {
            assert!(
                !text.contains(secret),
                "the logs contain personal data ({} characters)",
                secret.len()
            );
        }
    }
    for secret in ["13800001111", "13800002222", "110105194912310021", "诸葛青云的女儿"] {
        assert!(!text.contains(secret), "the logs contain personal data");
    }
}
