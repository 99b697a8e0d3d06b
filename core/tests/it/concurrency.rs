//! One store shared by many threads.

use std::sync::Arc;

use fieldgrid_core::*;

use crate::common::*;

#[test]
fn eight_threads_write_and_read_one_store() {
    let f = Arc::new(Fixture::new());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let f = f.clone();
            std::thread::spawn(move || {
                let mut rng = datagen::Rng::new(t);
                for i in 0..25 {
                    let row = datagen::resident(&mut rng, &f.grid.id, Some(&f.household.id));
                    let r = f.store.create_resident(&row).unwrap();
                    assert_eq!(f.store.get_resident(&r.id).unwrap().id, r.id);
                    if i % 5 == 0 {
                        f.store
                            .search_residents(
                                &ResidentQuery {
                                    name: Some(row.name.clone()),
                                    ..Default::default()
                                },
                                &PageRequest::default(),
                            )
                            .unwrap();
                        f.store.dashboard(&f.grid.id).unwrap();
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(f.store.dashboard(&f.grid.id).unwrap().residents, 200);
    let raw = f.raw();
    let ok: String = raw.query_row("PRAGMA integrity_check", [], |r| r.get(0)).unwrap();
    assert_eq!(ok, "ok");
    let ops: i64 = raw
        .query_row("SELECT count(*) FROM outbox WHERE entity = 'resident'", [], |r| {
            r.get(0)
        })
        .unwrap();
    assert_eq!(ops, 200, "one operation per record, none lost");
}
