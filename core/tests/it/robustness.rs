//! Arbitrary input to every decoder of untrusted input: a typed answer,
//! never a panic. (Fuzzing proper goes further; this runs in every test run.)

use fieldgrid_core::*;
use proptest::prelude::*;

use crate::common::*;

fn any_json() -> impl Strategy<Value = serde_json::Value> {
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<bool>().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, serde_json::Value::Number)),
        ".{0,30}".prop_map(serde_json::Value::from),
        "[0-9X]{14,19}".prop_map(serde_json::Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()),
                    Just("sex".to_owned()),
                    Just("id_number".to_owned()),
                    Just("phone".to_owned()),
                    Just("care_tags".to_owned()),
                    Just("location".to_owned()),
                    Just("category".to_owned()),
                    Just("occurred_at_ms".to_owned()),
                    Just("size".to_owned()),
                    ".{0,8}"
                ],
                inner,
                0..8
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn validators_answer_any_text(s in "\\PC{0,40}", bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let today = chrono::NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let _ = validate::IdNumber::parse(&s, today);
        let _ = validate::id_number::upgrade_legacy(&s, today);
        let _ = validate::Phone::parse(&s);
        let _ = validate::text("name", &s, 50, false);
        let _ = validate::photo_mime(&bytes);
        let _ = privacy::mask_name(&s);
        let _ = privacy::mask_phone(&s);
        let _ = privacy::mask_id_number(&s);
    }

    #[test]
    fn server_rules_answer_any_record(which in 0..Entity::ALL.len(), v in any_json()) {
        let entity = Entity::ALL[which];
        let fields = match v {
            serde_json::Value::Object(m) => m,
            other => { let mut m = serde_json::Map::new(); m.insert("name".into(), other); m }
        };
        let _ = rules::check(entity, &fields, NOW_MS, &Catalogue::builtin());
    }

    #[test]
    fn wire_decoders_answer_any_bytes(bytes in prop::collection::vec(any::<u8>(), 0..200), v in any_json()) {
        let _ = serde_json::from_slice::<fieldgrid_protocol::PushRequest>(&bytes);
        let _ = serde_json::from_slice::<fieldgrid_protocol::ChangesResponse>(&bytes);
        let _ = serde_json::from_value::<fieldgrid_protocol::PushRequest>(v.clone());
        let _ = serde_json::from_value::<Resident>(v.clone());
        let _ = serde_json::from_value::<Catalogue>(v);
    }
}

#[test]
fn search_answers_any_query_with_results_or_a_typed_refusal() {
    let f = Fixture::new();
    f.store
        .create_resident(&f.resident("张伟", &id_for("19800101", "011"), Sex::Male))
        .unwrap();
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 300,
        ..ProptestConfig::default()
    });
    runner
        .run(&("\\PC{0,30}", "\\PC{0,20}", 0u32..600), |(text, digits, limit)| {
            for q in [
                ResidentQuery {
                    name: Some(text.clone()),
                    ..Default::default()
                },
                ResidentQuery {
                    id_number: Some(digits.clone()),
                    ..Default::default()
                },
                ResidentQuery {
                    phone: Some(digits.clone()),
                    ..Default::default()
                },
                ResidentQuery {
                    address: Some(text.clone()),
                    ..Default::default()
                },
            ] {
                match f.store.search_residents(
                    &q,
                    &PageRequest {
                        limit,
                        after: Some(text.clone()).filter(|t| t.len() % 2 == 1),
                    },
                ) {
                    Ok(_) | Err(Error::Validation(_)) => {}
                    Err(other) => panic!("search failed with {other:?}"),
                }
            }
            Ok(())
        })
        .unwrap();
}
