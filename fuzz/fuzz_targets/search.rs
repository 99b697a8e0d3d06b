#![no_main]
//! Resident search with any query text against a small store.
use std::sync::OnceLock;

use fieldgrid_core::*;
use libfuzzer_sys::fuzz_target;

fn store() -> &'static Store {
    static STORE: OnceLock<(tempfile_dir::Dir, Store)> = OnceLock::new();
    &STORE
        .get_or_init(|| {
            let dir = tempfile_dir::Dir::new();
            let store = Store::open(dir.0.join("fuzz.db"), None).unwrap_or_else(|e| panic!("{e}"));
            let grid = store.put_grid(&datagen::grid(0)).unwrap_or_else(|e| panic!("{e}"));
            let rows = datagen::residents(&mut datagen::Rng::new(1), &grid.id, &[], 200);
            store.import_residents(&rows).unwrap_or_else(|e| panic!("{e}"));
            (dir, store)
        })
        .1
}

mod tempfile_dir {
    pub struct Dir(pub std::path::PathBuf);
    impl Dir {
        pub fn new() -> Dir {
            let p = std::env::temp_dir().join(format!("fieldgrid-fuzz-{}", std::process::id()));
            let _ = std::fs::create_dir_all(&p);
            Dir(p)
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else { return };
    let page = PageRequest { limit: 1 + (data.len() as u32 % 600), after: (data.len() % 3 == 0).then(|| s.to_owned()) };
    for q in [
        ResidentQuery { name: Some(s.to_owned()), ..Default::default() },
        ResidentQuery { id_number: Some(s.to_owned()), ..Default::default() },
        ResidentQuery { phone: Some(s.to_owned()), ..Default::default() },
        ResidentQuery { address: Some(s.to_owned()), ..Default::default() },
    ] {
        match store().search_residents(&q, &page) {
            Ok(_) | Err(Error::Validation(_)) => {}
            Err(e) => panic!("search failed: {e}"),
        }
    }
});
