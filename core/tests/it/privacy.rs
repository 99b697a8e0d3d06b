//! Personal data never reaches logs, errors or Debug output.

use std::io::Write;
use std::sync::{Arc, Mutex};

use fieldgrid_core::*;

use crate::common::*;

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn debug_output_of_records_is_masked() {
    let f = Fixture::new();
    let id = id_for("19450315", "022");
    let mut input = f.resident("欧阳娜娜", &id, Sex::Female);
    input.notes = "住院中，女儿联系电话13900001111".into();
    let r = f.store.create_resident(&input).unwrap();
    let debug = format!("{r:?} {:?}", f.household);
    for secret in ["欧阳娜娜", id.as_str(), "13812345678", "13900001111", "格林盛景"] {
        assert!(!debug.contains(secret), "Debug leaks {secret}: {debug}");
    }
    assert!(debug.contains("欧**娜"), "{debug}");
    assert!(debug.contains("138****5678"), "{debug}");
    assert_eq!(
        r.id_number.as_ref().unwrap().masked(),
        format!("370***********{}", &id[14..])
    );
}

#[test]
fn logs_at_the_most_verbose_level_hold_no_personal_data() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .finish();
    let id = id_for("19380505", "024");
    tracing::subscriber::with_default(subscriber, || {
        let f = Fixture::new();
        let r = f
            .store
            .create_resident(&f.resident("周桂英", &id, Sex::Female))
            .unwrap();
        f.store
            .update_resident(&r.id, &[ResidentChange::Phone(Some("13955556666".into()))])
            .unwrap();
        let mut rng = datagen::Rng::new(1);
        let rows: Vec<NewResident> = (0..20).map(|_| datagen::resident(&mut rng, &f.grid.id, None)).collect();
        f.store.import_residents(&rows).unwrap();
        let _ = f
            .store
            .create_resident(&f.resident("周桂英", "110105194912310021", Sex::Female));
        f.store
            .search_residents(
                &ResidentQuery {
                    name: Some("周桂".into()),
                    ..Default::default()
                },
                &PageRequest::default(),
            )
            .unwrap();
        let d = f.store.create_incident_draft(&f.incident("neighbour_dispute")).unwrap();
        f.store.submit_incident(&d.id).unwrap();
    });
    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("import finished"), "logging was captured: {text}");
    for secret in [
        "周桂英",
        id.as_str(),
        "13955556666",
        "13812345678",
        "110105194912310021",
        "马蜂窝",
        "格林盛景",
    ] {
        assert!(!text.contains(secret), "log leaks {secret}");
    }
}

/// An inspection's free-text answers and notes may name people: masked in
/// `Debug` like every personal field.
#[test]
fn debug_output_of_inspections_is_masked() {
    let f = Fixture::new();
    let answer = |item: &str, answer| ItemAnswer {
        item: item.into(),
        answer,
    };
    let report = f
        .store
        .record_inspection(&NewInspection {
            grid_id: f.grid.id.clone(),
            place_id: None,
            checklist: "gas_safety".into(),
            answers: vec![
                answer("detector_installed", Answer::YesNo(true)),
                answer("nothing_on_pipes", Answer::YesNo(true)),
                answer("ventilation_ok", Answer::YesNo(true)),
                answer("remarks", Answer::Text("户主王建国13900002222不在家".into())),
            ],
            photos: vec![],
            location: Some(crate::common::location()),
            notes: "邻居李秀兰代为开门".into(),
            occurred_at_ms: None,
        })
        .unwrap();
    let debug = format!("{:?}", report.inspection);
    for secret in ["王建国", "13900002222", "李秀兰"] {
        assert!(!debug.contains(secret), "Debug leaks {secret}: {debug}");
    }
    assert!(debug.contains("YesNo(true)"), "{debug}");
}
