//! The sync engine against a scripted transport (no network): pages in any
//! order, a fetcher that fails, a photo file that no longer matches its
//! record. The real server on loopback is exercised by `tests/` (e2e).

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use fieldgrid_core::sync::{SyncOptions, Transport, TransportError};
use fieldgrid_core::*;
use fieldgrid_protocol::{
    Change, ChangesResponse, GridInfo, LoginRequest, LoginResponse, Outcome, PushRequest, PushResponse, Receipt, Role,
};
use serde_json::{Map, Value, json};

use crate::common::*;

/// A server that answers from a script: pull pages in order, a panic when
/// asked for page `panic_at`, every push applied, photos accepted.
struct Scripted {
    grid: GridInfo,
    pages: Vec<Vec<Change>>,
    panic_at: Option<usize>,
    pulls: AtomicUsize,
    chunks: Mutex<Vec<(u64, usize)>>,
}

impl Scripted {
    fn new(grid: &Grid, pages: Vec<Vec<Change>>) -> Scripted {
        Scripted {
            grid: GridInfo {
                id: grid.id.clone(),
                code: grid.code.clone(),
                name: grid.name.clone(),
                community: grid.community.clone(),
                sub_district: grid.sub_district.clone(),
            },
            pages,
            panic_at: None,
            pulls: AtomicUsize::new(0),
            chunks: Mutex::new(Vec::new()),
        }
    }
}

impl Transport for Scripted {
    fn login(&self, _req: &LoginRequest) -> Result<LoginResponse, TransportError> {
        Ok(LoginResponse {
            token: "t".into(),
            expires_at_ms: NOW_MS + 3_600_000,
            account_id: "acct-1".into(),
            role: Role::Worker,
            grids: vec![self.grid.clone()],
            department: None,
            server_time_ms: NOW_MS,
        })
    }

    fn push(&self, _token: &str, req: &PushRequest) -> Result<PushResponse, TransportError> {
        Ok(PushResponse {
            receipts: req
                .operations
                .iter()
                .map(|op| Receipt {
                    op_id: op.op_id.clone(),
                    duplicate: false,
                    outcome: Outcome::Applied {
                        version: 1,
                        conflicts: vec![],
                    },
                })
                .collect(),
            server_time_ms: NOW_MS,
        })
    }

    fn changes(&self, _token: &str, after: i64, _limit: u32) -> Result<ChangesResponse, TransportError> {
        let n = self.pulls.fetch_add(1, Ordering::SeqCst);
        if self.panic_at == Some(n) {
            panic!("the fetcher fails on page {n}");
        }
        // Pages are numbered by their cursor: page i starts after cursor i.
        let i = after as usize;
        let changes = self.pages.get(i).cloned().unwrap_or_default();
        Ok(ChangesResponse {
            next_after: (i + 1).min(self.pages.len()) as i64,
            more: i + 1 < self.pages.len(),
            changes,
            server_time_ms: NOW_MS,
        })
    }

    fn photo_offset(&self, _token: &str, _sha256: &str) -> Result<Option<u64>, TransportError> {
        Ok(None)
    }

    fn upload_chunk(
        &self,
        _token: &str,
        _sha256: &str,
        offset: u64,
        _total: u64,
        chunk: &[u8],
    ) -> Result<u64, TransportError> {
        self.chunks.lock().unwrap().push((offset, chunk.len()));
        Ok(offset + chunk.len() as u64)
    }
}

fn change(seq: i64, entity: &str, id: &str, grid: &str, version: i64, fields: Value) -> Change {
    Change {
        seq,
        entity: entity.into(),
        entity_id: id.into(),
        grid_id: grid.into(),
        version,
        deleted: false,
        fields: fields.as_object().cloned().unwrap_or_else(Map::new),
    }
}

fn options() -> SyncOptions {
    SyncOptions {
        // Every page committed on its own: a child and its parent are never
        // in one transaction.
        pull_commit_changes: 1,
        page_limit: 1,
        max_attempts: 1,
        ..SyncOptions::default()
    }
}

fn sync(store: &Store, t: &Scripted) -> Result<sync::SyncReport> {
    store.sync(t, &options(), &|_| {}, &AtomicBool::new(false))
}

/// Ids as a device makes them.
fn uuid() -> String {
    fieldgrid_core::new_id()
}

/// SYNC.md invariant 11: children before parents, one page each, each page
/// committed before the next arrives; everything lands, and derived columns
/// (a resident's building) are right once the parents arrive.
#[test]
fn a_pull_applies_children_before_their_parents() {
    let f = Fixture::new();
    let g = f.grid.id.as_str();
    let (compound, building, unit, household, resident, incident, event) =
        (uuid(), uuid(), uuid(), uuid(), uuid(), uuid(), uuid());
    let name = "王芳";
    let pages = vec![
        // The centre's "dispatched" event, before the incident it belongs to.
        vec![change(
            1,
            "incident_event",
            &event,
            g,
            1,
            json!({"incident_id": incident, "kind": "dispatched", "actor": "acct-centre", "note": "",
                   "department": "dept-gas", "deadline_at_ms": NOW_MS + 86_400_000, "at_ms": NOW_MS, "server_at_ms": NOW_MS}),
        )],
        vec![change(
            2,
            "resident",
            &resident,
            g,
            1,
            json!({"grid_id": g, "household_id": household, "name": name, "sex": "female", "residence": "registered",
                   "care_tags": ["elderly_living_alone"], "notes": ""}),
        )],
        vec![change(
            3,
            "household",
            &household,
            g,
            1,
            json!({"grid_id": g, "unit_id": unit, "room": "502", "address": "", "notes": ""}),
        )],
        vec![change(
            4,
            "place",
            &unit,
            g,
            1,
            json!({"grid_id": g, "kind": "unit", "parent_id": building, "name": "1单元"}),
        )],
        vec![change(
            5,
            "place",
            &building,
            g,
            1,
            json!({"grid_id": g, "kind": "building", "parent_id": compound, "name": "7号楼"}),
        )],
        vec![change(
            6,
            "place",
            &compound,
            g,
            1,
            json!({"grid_id": g, "kind": "compound", "parent_id": null, "name": "科教小区"}),
        )],
        vec![change(
            7,
            "incident",
            &incident,
            g,
            2,
            json!({"grid_id": g, "category": "hornets_nest", "title": "马蜂窝", "description": "", "address": "",
                   "location": null, "occurred_at_ms": NOW_MS - 1000, "reporter": "acct-2", "involved_residents": [],
                   "status": "dispatched", "department": "dept-gas", "deadline_at_ms": NOW_MS + 86_400_000,
                   "reported_at_ms": NOW_MS - 500}),
        )],
    ];
    let t = Scripted::new(&f.grid, pages);
    f.store.login(&t, "w", "password").unwrap();
    let report = sync(&f.store, &t).unwrap();
    assert_eq!(report.pulled, 7);
    assert_eq!(f.store.pull_cursor().unwrap(), 7);

    let timeline = f.store.incident_timeline(&incident).unwrap();
    assert_eq!(timeline.len(), 1);
    assert_eq!(timeline[0].kind, EventKind::Dispatched);
    assert_eq!(
        f.store.get_incident(&incident).unwrap().status,
        IncidentStatus::Dispatched
    );
    let r = f.store.get_resident(&resident).unwrap();
    assert_eq!(r.household_id.as_deref(), Some(household.as_str()));
    // The building, derived from the unit that came later, reaches the
    // resident and the care-tag index.
    let in_building = f
        .store
        .search_residents(
            &ResidentQuery {
                building_id: Some(building.clone()),
                care_tag: Some(CareTag::ElderlyLivingAlone),
                ..Default::default()
            },
            &PageRequest { limit: 10, after: None },
        )
        .unwrap();
    assert_eq!(
        in_building.items.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(),
        [resident.as_str()]
    );
}

/// A fetcher that fails (here, panics) is the sync's failure, not a quiet
/// success; the cursor stays at the last page committed.
#[test]
fn a_failed_pull_fetcher_fails_the_sync_and_keeps_the_cursor_honest() {
    let f = Fixture::new();
    let g = f.grid.id.clone();
    let pages: Vec<Vec<Change>> = (1..=4)
        .map(|i| {
            vec![change(
                i,
                "place",
                &uuid(),
                &g,
                1,
                json!({"grid_id": g, "kind": "compound", "parent_id": null, "name": format!("小区{i}")}),
            )]
        })
        .collect();
    let mut t = Scripted::new(&f.grid, pages);
    t.panic_at = Some(2);
    f.store.login(&t, "w", "password").unwrap();
    let err = sync(&f.store, &t).unwrap_err();
    assert!(matches!(err, Error::Internal(_)), "{err:?}");
    assert_eq!(f.store.pull_cursor().unwrap(), 2, "two pages committed, no more");
    // The next sync resumes at the cursor and finishes.
    t.panic_at = None;
    let report = sync(&f.store, &t).unwrap();
    assert_eq!(report.pulled, 2);
    assert_eq!(f.store.pull_cursor().unwrap(), 4);
}

/// A photo file shorter than its record's size is this photo's error (it
/// stays unsent), not a slice panic, and the rest of the sync goes on.
#[test]
fn a_photo_file_shorter_than_its_record_is_an_error_not_a_panic() {
    let f = Fixture::new();
    let incident = f
        .store
        .report_incident(&f.incident("hornets_nest"), &[photo(9)])
        .unwrap();
    let sha = incident.photos[0].sha256.clone();
    let file = f.store.photo_dir().join(&sha);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    let t = Scripted::new(&f.grid, vec![vec![]]);
    f.store.login(&t, "w", "password").unwrap();
    let report = sync(&f.store, &t).unwrap();
    assert_eq!(report.photos_uploaded, 0);
    assert!(t.chunks.lock().unwrap().is_empty(), "nothing of the bad file was sent");
    assert!(report.confirmed >= 3, "the records went out all the same");
    assert!(!f.store.get_incident(&incident.id).unwrap().photos[0].uploaded);
}
