//! The phone's capture and the server's `rules::check` apply one set of
//! rules: for any resident a worker might type, both accept it or both refuse
//! it naming the same field, and what the phone would send is what the
//! server's check makes of it (normalised the same way).

use fieldgrid_core::*;
use proptest::prelude::*;
use serde_json::{Value, json};

use crate::common::*;

fn names() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("王秀英".to_owned()),
        Just("  李 强 ".to_owned()),
        Just(String::new()),
        Just("张\u{0007}三".to_owned()),
        Just("阿".repeat(60)),
        "[\\p{Han}]{1,4}",
    ]
}

fn id_numbers() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some(id_for("19450315", "022"))), // female
        Just(Some(id_for("19800101", "011"))), // male
        Just(Some(id_for("19800101", "011").to_lowercase())),
        Just(Some("110101199003070000".to_owned())),
        Just(Some("37050219450315".to_owned())),
        Just(Some(format!("370502{}0220", "20991231"))),
    ]
}

fn phones() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("138 1234 5678".to_owned())),
        Just(Some("+86 138-1234-5678".to_owned())),
        Just(Some("0546-8123456".to_owned())),
        Just(Some("12345".to_owned())),
        Just(Some("电话".to_owned())),
    ]
}

fn birth_dates() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        Just(Some("1945-03-15".to_owned())),
        Just(Some("1980-01-01".to_owned())),
        Just(Some("2099-01-01".to_owned())),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn capture_and_server_rules_agree_on_residents(
        name in names(),
        female in any::<bool>(),
        id_number in id_numbers(),
        phone in phones(),
        birth in birth_dates(),
        residence in prop_oneof![Just(ResidenceStatus::Registered), Just(ResidenceStatus::Floating)],
        tags in proptest::sample::subsequence(vec![CareTag::ElderlyLivingAlone, CareTag::Disabled, CareTag::LeftBehindChild], 0..=3),
        notes in prop_oneof![Just(String::new()), Just("二楼\n左手".to_owned()), Just("注".repeat(3000))],
    ) {
        let f = Fixture::new();
        let sex = if female { Sex::Female } else { Sex::Male };
        let new = NewResident {
 extra: Vec::new(),
            grid_id: f.grid.id.clone(),
            household_id: Some(f.household.id.clone()),
            name: name.clone(),
            sex,
            id_number: id_number.clone(),
            birth_date: birth.as_deref().and_then(|b| b.parse().ok()),
            phone: phone.clone(),
            residence,
            care_tags: tags.clone(),
            notes: notes.clone(),
        };
        let wire = json!({
            "grid_id": f.grid.id, "household_id": f.household.id, "name": name,
            "sex": sex.as_str(), "id_number": id_number, "birth_date": birth, "phone": phone,
            "residence": residence.as_str(), "care_tags": tags.iter().map(|t| t.as_str()).collect::<Vec<_>>(),
            "notes": notes,
        });
        let Value::Object(wire) = wire else { unreachable!() };
        let server = rules::check(Entity::Resident, &wire, NOW_MS, &Catalogue::builtin());
        let phone_side = f.store.create_resident(&new);
        match (phone_side, server) {
            (Ok(r), Ok(checked)) => {
                let op = f.store.pending_operations(1000).unwrap().into_iter()
                    .find(|o| o.entity_id == r.id).unwrap();
                let sent = f.store.payload(&op).unwrap();
                // Nulls and absent optional fields mean the same.
                let present = |m: &serde_json::Map<String, Value>| -> Vec<(String, Value)> {
                    let mut v: Vec<_> = m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), v.clone())).collect();
                    v.sort_by(|a, b| a.0.cmp(&b.0));
                    v
                };
                prop_assert_eq!(present(&sent), present(&checked));
            }
            (Err(Error::Validation(p)), Err(s)) => prop_assert_eq!(p.field, s.field, "{:?} / {:?}", p.code, s.code),
            (p, s) => prop_assert!(false, "capture {:?}, server {:?}", p.map(|r| r.id), s.map(|_| ())),
        }
    }
}
