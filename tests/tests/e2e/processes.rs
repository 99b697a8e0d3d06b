//! Several server processes on one storage (the district's PostgreSQL
//! database, or its SQLite file), phones spread over them, each through a
//! proxy that faults a quarter of its requests; one process is killed with
//! SIGKILL while a phone's push is in flight, then started again. Afterwards
//! every operation is on the server exactly once and the phones of a grid
//! agree with the server.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fieldgrid_core::datagen::{self, Rng};
use fieldgrid_core::*;
use fieldgrid_tests::proxy::{Fault, Proxy};
use fieldgrid_tests::{Device, District};

use crate::helpers::*;

/// A server process on the district's storage, listening on `addr`.
fn server_process(d: &District, addr: SocketAddr) -> Child {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_serve"));
    cmd.arg("--data")
        .arg(&d.server.state.config.data_dir)
        .arg("--listen")
        .arg(addr.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(url) = &d.database {
        cmd.arg("--database").arg(url);
    }
    let child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the server process did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

fn residents_of(device: &Device, grid: &str) -> BTreeMap<String, String> {
    let q = ResidentQuery {
        grid_id: Some(grid.into()),
        ..Default::default()
    };
    let mut out = BTreeMap::new();
    let mut page = PageRequest {
        limit: 500,
        after: None,
    };
    loop {
        let p = device.store.search_residents(&q, &page).unwrap();
        out.extend(p.items.into_iter().map(|r| (r.id, r.notes.as_str().to_owned())));
        match p.next {
            Some(n) => page.after = Some(n),
            None => return out,
        }
    }
}

#[test]
fn two_server_processes_one_killed_mid_push_keep_every_promise() {
    let d = District::new();
    let addrs = [free_addr(), free_addr()];
    let mut servers: Vec<Child> = addrs.iter().map(|a| server_process(&d, *a)).collect();
    let proxies: Vec<Proxy> = addrs.iter().map(|a| Proxy::start(*a)).collect();
    // Phones of one grid on different processes.
    let phones: Vec<(Device, &str, usize)> = [
        ("q1", "wa1", "grid-a", 0),
        ("q2", "wa2", "grid-a", 1),
        ("q3", "wb", "grid-b", 0),
        ("q4", "wb", "grid-b", 1),
    ]
    .into_iter()
    .map(|(name, user, grid, p)| (d.device(name, user, &proxies[p].url()), grid, p))
    .collect();
    let seed = 20261201;
    for (i, p) in proxies.iter().enumerate() {
        p.set(Fault::Random {
            rate: 0.25,
            seed: seed + i as u64,
        });
    }
    let mut rng = Rng::new(seed);
    let mut operations = 0u64;
    let mut used = HashSet::new();
    let mut capture = |phone: &Device, grid: &str, rng: &mut Rng, round: usize| -> u64 {
        let mut made = 0;
        for _ in 0..1 + rng.below(3) {
            if rng.chance(0.6) {
                let mut r = datagen::resident(rng, grid, None);
                if !used.insert(r.id_number.clone()) {
                    r.id_number = None;
                }
                phone.store.create_resident(&r).unwrap();
                made += 1;
            } else {
                let known = residents_of(phone, grid);
                if let Some(id) = known.keys().nth(rng.below(known.len().max(1) as u64) as usize) {
                    let before = phone.store.pending_operations(100_000).unwrap().len();
                    phone
                        .store
                        .update_resident(
                            id,
                            &[ResidentChange::Notes(format!("round {round} {}", rng.below(1000)))],
                        )
                        .unwrap();
                    made += (phone.store.pending_operations(100_000).unwrap().len() > before) as u64;
                }
            }
        }
        made
    };
    for round in 0..8 {
        for (phone, grid, _) in &phones {
            operations += capture(phone, grid, &mut rng, round);
            let _ = phone.sync(); // through the faults: may fail, must not lose anything
        }
    }

    // Phone q2 (on process 1) captures a day's work offline, and process 1
    // is killed while that push is in flight, then started again.
    let (q2, grid, _) = &phones[1];
    for k in 0..400 {
        let mut r = datagen::resident(&mut rng, grid, None);
        r.id_number = None;
        r.notes = format!("offline {k}");
        q2.store.create_resident(&r).unwrap();
        operations += 1;
    }
    proxies[1].set(Fault::None);
    let pushes_before = proxies[1]
        .paths()
        .iter()
        .filter(|p| p.starts_with("/v1/sync/push"))
        .count();
    let killed = std::thread::scope(|s| {
        let killer = s.spawn(|| {
            let deadline = Instant::now() + Duration::from_secs(20);
            while proxies[1]
                .paths()
                .iter()
                .filter(|p| p.starts_with("/v1/sync/push"))
                .count()
                == pushes_before
            {
                assert!(Instant::now() < deadline, "no push arrived");
                std::thread::sleep(Duration::from_millis(1));
            }
            // The push is at the server now: kill it mid-way.
            std::thread::sleep(Duration::from_millis(5));
            servers[1].kill().unwrap();
            servers[1].wait().unwrap();
        });
        let result = q2.sync_with(&fieldgrid_core::sync::SyncOptions {
            batch_operations: 400,
            max_attempts: 1,
            ..fieldgrid_tests::quick()
        });
        killer.join().unwrap();
        result
    });
    assert!(killed.is_err(), "the push was cut by the kill");
    let waiting = q2.store.outbox_counts().unwrap();
    assert!(
        waiting.pending + waiting.sending >= 400,
        "the batch in flight was not confirmed: {waiting:?}"
    );
    servers[1] = server_process(&d, addrs[1]);

    // The network heals; everyone syncs until nothing moves.
    for p in &proxies {
        p.set(Fault::None);
    }
    for _ in 0..2 {
        for (phone, _, _) in &phones {
            phone.sync().unwrap();
        }
    }
    for (phone, _, _) in &phones {
        assert_eq!(
            phone.store.outbox_counts().unwrap(),
            outbox::OutboxCounts::default(),
            "nothing waiting, nothing refused"
        );
    }
    assert_eq!(
        server_receipts(&d) as u64,
        operations,
        "every operation applied exactly once, across processes and the kill"
    );
    for grid in ["grid-a", "grid-b"] {
        let copies: Vec<_> = phones
            .iter()
            .filter(|(_, g, _)| *g == grid)
            .map(|(p, _, _)| residents_of(p, grid))
            .collect();
        assert_eq!(copies[0], copies[1], "the phones of {grid} agree");
        let server: BTreeMap<String, String> = d
            .server
            .admin()
            .records_of("resident", Some(grid))
            .unwrap()
            .into_iter()
            .filter(|r| !r.deleted)
            .map(|r| (r.id.clone(), r.str("notes").unwrap_or_default().to_owned()))
            .collect();
        assert_eq!(copies[0], server, "and equal the server on {grid}");
    }
    for mut s in servers {
        let _ = s.kill();
        let _ = s.wait();
    }
}

/// District IT's commands run as their own process against the district's
/// storage, on either engine (on PostgreSQL they once waited forever: the
/// command's runtime did not drive the database connection).
#[test]
fn administration_commands_run_on_the_districts_storage() {
    let d = District::new();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_serve"));
    cmd.arg("--data").arg(&d.server.state.config.data_dir);
    if let Some(url) = &d.database {
        cmd.arg("--database").arg(url);
    }
    let mut child = cmd
        .args([
            "add-grid",
            "--id",
            "grid-c",
            "--code",
            "370502-grid-c",
            "--name",
            "丙网格",
        ])
        .args(["--community", "中山社区", "--sub-district", "文汇街道"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the command did not finish");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success());
    let admin = d.server.admin();
    let id = admin.account_id("wb").unwrap().unwrap();
    admin
        .assign_grids(&id, &["grid-b".into(), "grid-c".into()], fieldgrid_tests::T0)
        .unwrap();
}
