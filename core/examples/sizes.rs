#![allow(missing_docs, clippy::unwrap_used, clippy::print_stdout)]
use fieldgrid_core::*;
fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let store = Store::open(&path, None).unwrap();
    let grid = store.put_grid(&datagen::grid(1)).unwrap();
    let mut rng = datagen::Rng::new(1);
    datagen::populate_grid(&store, &mut rng, &grid, 20, 20000).unwrap();
    drop(store);
    let c = rusqlite::Connection::open(&path).unwrap();
    let mut s = c
        .prepare("SELECT name, sum(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC")
        .unwrap();
    for r in s
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))
        .unwrap()
    {
        let (n, b) = r.unwrap();
        println!("{n:<32} {:>8} KiB", b / 1024);
    }
}
