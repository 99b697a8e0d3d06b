//! The sync engine against a scripted transport (no network) and the test
//! clock (pauses cost no real time): receipts, backoff, `Retry-After`,
//! cancellation, pages in any order, a page that fails, a photo file that
//! no longer matches its record. The real server on loopback is exercised by
//! `tests/` (e2e).

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fieldgrid_core::sync::{SyncOptions, Transport, TransportError};
use fieldgrid_core::*;
use fieldgrid_protocol::{
    Change, ChangesResponse, GridInfo, LoginRequest, LoginResponse, Outcome, PushRequest, PushResponse, Receipt, Role,
};
use serde_json::{Map, Value, json};

use crate::common::*;

type Receipts = Box<dyn Fn(&PushRequest) -> Vec<Receipt> + Send + Sync>;

/// A server that answers from a script: pull pages in order, an error when
/// asked for page `fail_at`, pushes failing with `push_errors` first and
/// then answered by `receipts` (every operation applied, by default), or
/// never answered while `hang_push` is set; photos accepted.
struct Scripted {
    grid: GridInfo,
    pages: Vec<Vec<Change>>,
    fail_at: Option<usize>,
    hang_push: AtomicBool,
    /// Requests whose future was dropped before an answer came.
    abandoned: Arc<AtomicUsize>,
    pulls: AtomicUsize,
    chunks: Mutex<Vec<(u64, usize)>>,
    push_errors: Mutex<VecDeque<TransportError>>,
    receipts: Option<Receipts>,
    /// The test clock's time at each push: the pauses between tries.
    push_times: Mutex<Vec<i64>>,
    clock: Option<Arc<TestClock>>,
    /// Set during a push (the caller cancelling while a request is out).
    cancel_during_push: Option<Arc<AtomicBool>>,
}

fn applied(op: &fieldgrid_protocol::Operation) -> Receipt {
    Receipt {
        op_id: op.op_id.clone(),
        duplicate: false,
        outcome: Outcome::Applied {
            version: 1,
            conflicts: vec![],
        },
    }
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
            fail_at: None,
            hang_push: AtomicBool::new(false),
            abandoned: Arc::new(AtomicUsize::new(0)),
            pulls: AtomicUsize::new(0),
            chunks: Mutex::new(Vec::new()),
            push_errors: Mutex::new(VecDeque::new()),
            receipts: None,
            push_times: Mutex::new(Vec::new()),
            clock: None,
            cancel_during_push: None,
        }
    }

    /// Pushes fail with `errors`, in order, before the server answers.
    fn failing(f: &Fixture, errors: Vec<TransportError>) -> Scripted {
        let mut t = Scripted::new(&f.grid, vec![]);
        t.push_errors = Mutex::new(errors.into());
        t.clock = Some(f.clock.clone());
        t
    }

    fn pushes(&self) -> usize {
        self.push_times.lock().unwrap().len()
    }

    /// The pauses between consecutive pushes, in ms of the test clock.
    fn pauses(&self) -> Vec<i64> {
        self.push_times
            .lock()
            .unwrap()
            .windows(2)
            .map(|w| w[1] - w[0])
            .collect()
    }
}

impl Transport for Scripted {
    async fn login(&self, _req: &LoginRequest) -> Result<LoginResponse, TransportError> {
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

    async fn push(&self, _token: &str, req: &PushRequest) -> Result<PushResponse, TransportError> {
        let now = self.clock.as_ref().map_or(NOW_MS, |c| c.now_ms());
        self.push_times.lock().unwrap().push(now);
        if self.hang_push.load(Ordering::SeqCst) {
            let _abandoned = Abandoned(self.abandoned.clone());
            std::future::pending::<()>().await;
        }
        if let Some(cancel) = &self.cancel_during_push {
            cancel.store(true, Ordering::SeqCst);
        }
        if let Some(e) = self.push_errors.lock().unwrap().pop_front() {
            return Err(e);
        }
        let receipts = match &self.receipts {
            Some(answer) => answer(req),
            None => req.operations.iter().map(applied).collect(),
        };
        Ok(PushResponse {
            receipts,
            server_time_ms: NOW_MS,
        })
    }

    async fn changes(&self, _token: &str, after: i64, _limit: u32) -> Result<ChangesResponse, TransportError> {
        let n = self.pulls.fetch_add(1, Ordering::SeqCst);
        if self.fail_at == Some(n) {
            return Err(TransportError::Server {
                status: 500,
                code: "internal".into(),
            });
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

    async fn photo_offset(&self, _token: &str, _sha256: &str) -> Result<Option<u64>, TransportError> {
        Ok(None)
    }

    async fn upload_chunk(
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

/// Counts a request abandoned: dropped with the future that awaited it.
struct Abandoned(Arc<AtomicUsize>);

impl Drop for Abandoned {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
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

/// A page that fails is the sync's failure, not a quiet success (while the
/// next page's request is already out); the cursor stays at the last page
/// committed.
#[test]
fn a_failed_pull_page_fails_the_sync_and_keeps_the_cursor_honest() {
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
    t.fail_at = Some(2);
    f.store.login(&t, "w", "password").unwrap();
    let err = sync(&f.store, &t).unwrap_err();
    assert!(matches!(err, Error::Server { status: 500, .. }), "{err:?}");
    assert_eq!(f.store.pull_cursor().unwrap(), 2, "two pages committed, no more");
    // The next sync resumes at the cursor and finishes.
    t.fail_at = None;
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

fn retrying() -> SyncOptions {
    SyncOptions {
        max_attempts: 5,
        base_delay: Duration::from_secs(1),
        max_delay: Duration::from_secs(30),
        ..SyncOptions::default()
    }
}

fn sync_with(f: &Fixture, t: &Scripted, options: &SyncOptions, cancel: &AtomicBool) -> Result<sync::SyncReport> {
    f.store.login(t, "w", "password").unwrap();
    f.store.sync(t, options, &|_| {}, cancel)
}

fn waiting(f: &Fixture) -> u64 {
    let c = f.store.outbox_counts().unwrap();
    c.pending + c.sending
}

/// Transient failures are retried after pauses that double from
/// `base_delay`, each between half and all of its backoff (jitter); the
/// fourth try gets through and everything is confirmed.
#[test]
fn transient_failures_back_off_exponentially_with_jitter() {
    let f = Fixture::new();
    let offline = || TransportError::Offline("reset".into());
    let t = Scripted::failing(&f, vec![offline(), offline(), offline()]);
    let started = Instant::now();
    let report = sync_with(&f, &t, &retrying(), &AtomicBool::new(false)).unwrap();
    assert_eq!(report.confirmed, 4, "the fixture's places and household");
    assert_eq!(t.pushes(), 4);
    let pauses = t.pauses();
    for (i, pause) in pauses.iter().enumerate() {
        let backoff = 1000 << i;
        assert!(
            (backoff / 2..=backoff).contains(pause),
            "pause {i}: {pause} ms, backoff {backoff} ms"
        );
    }
    assert!(started.elapsed() < Duration::from_secs(2), "no real time spent pausing");
}

/// The backoff never exceeds `max_delay`.
#[test]
fn backoff_is_capped_at_max_delay() {
    let f = Fixture::new();
    let errors = (0..6)
        .map(|_| TransportError::Server {
            status: 503,
            code: "unavailable".into(),
        })
        .collect();
    let t = Scripted::failing(&f, errors);
    let options = SyncOptions {
        max_attempts: 10,
        max_delay: Duration::from_secs(4),
        ..retrying()
    };
    sync_with(&f, &t, &options, &AtomicBool::new(false)).unwrap();
    let pauses = t.pauses();
    assert_eq!(pauses.len(), 6);
    assert!(pauses[3..].iter().all(|p| (2000..=4000).contains(p)), "{pauses:?}");
}

/// `Retry-After` is honoured (when longer than half the backoff, and up to
/// a minute): a zero one does not make the phone hammer the server, and a
/// day-long one does not hold the sync for a day.
#[test]
fn retry_after_is_honoured() {
    let f = Fixture::new();
    let busy = |s| TransportError::Overloaded {
        retry_after: Some(Duration::from_secs(s)),
    };
    let t = Scripted::failing(&f, vec![busy(7), busy(0), busy(86_400)]);
    sync_with(&f, &t, &retrying(), &AtomicBool::new(false)).unwrap();
    assert_eq!(
        t.pauses(),
        vec![7000, 1000, 60_000],
        "Retry-After 7 s; then half the 2 s backoff; then a minute, not a day"
    );
}

/// After `max_attempts` tries the sync is `Offline` and loses nothing: the
/// batch may have reached the server, so it stays "sending" and the next
/// sync sends it again (the server answers a repeat with its receipt).
#[test]
fn giving_up_is_offline_and_loses_nothing() {
    let f = Fixture::new();
    let errors = (0..5).map(|_| TransportError::Offline("timeout".into())).collect();
    let t = Scripted::failing(&f, errors);
    let options = SyncOptions {
        max_attempts: 3,
        ..retrying()
    };
    let err = sync_with(&f, &t, &options, &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(err, Error::Offline), "{err:?}");
    assert_eq!(t.pushes(), 3);
    assert_eq!(f.store.outbox_counts().unwrap().sending, 4);
    let t = Scripted::failing(&f, vec![]);
    assert_eq!(
        sync_with(&f, &t, &options, &AtomicBool::new(false)).unwrap().confirmed,
        4
    );
    assert_eq!(waiting(&f), 0);
}

/// An answer retrying cannot fix is not retried, and the batch waits again.
#[test]
fn a_refusal_is_not_retried_and_the_batch_waits_again() {
    let f = Fixture::new();
    let t = Scripted::failing(&f, vec![TransportError::AuthExpired]);
    let err = sync_with(&f, &t, &retrying(), &AtomicBool::new(false)).unwrap_err();
    assert!(matches!(err, Error::AuthExpired), "{err:?}");
    assert_eq!(t.pushes(), 1);
    let c = f.store.outbox_counts().unwrap();
    assert_eq!((c.pending, c.sending), (4, 0));
}

/// A cancel while a request is out: the answer that comes back is still
/// applied (nothing done is undone or lost), then the sync stops before the
/// next step, without pulling.
#[test]
fn a_cancel_during_a_request_keeps_its_answer_and_stops_before_the_next_step() {
    let f = Fixture::new();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut t = Scripted::failing(&f, vec![]);
    t.cancel_during_push = Some(cancel.clone());
    let err = sync_with(&f, &t, &retrying(), &cancel).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert_eq!(waiting(&f), 0, "the receipts were applied");
    assert_eq!(t.pulls.load(Ordering::SeqCst), 0, "no pull after the cancel");
}

/// Dropping the sync's future (a Kotlin coroutine cancelled, a Swift task
/// cancelled, a timeout) abandons the request in flight at once, not after
/// its answer; nothing is lost: the batch stays "sending" and the next sync
/// sends it again.
#[test]
fn dropping_the_sync_abandons_the_request_in_flight_and_loses_nothing() {
    let f = Fixture::new();
    let t = Scripted::failing(&f, vec![]);
    t.hang_push.store(true, Ordering::SeqCst);
    f.store.login(&t, "w", "password").unwrap();
    let cancel = AtomicBool::new(false);
    let started = Instant::now();
    let options = retrying();
    let outcome = sync::block_on(async {
        let sync = f.store.sync_async(&t, &options, &|_| {}, &cancel);
        tokio::time::timeout(Duration::from_millis(30), sync).await
    })
    .unwrap();
    assert!(outcome.is_err(), "the server never answered: only the timeout ends it");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(t.pushes(), 1);
    assert_eq!(
        t.abandoned.load(Ordering::SeqCst),
        1,
        "the request was dropped, not awaited"
    );
    assert_eq!(f.store.outbox_counts().unwrap().sending, 4, "kept, to be sent again");
    t.hang_push.store(false, Ordering::SeqCst);
    assert_eq!(sync_with(&f, &t, &retrying(), &cancel).unwrap().confirmed, 4);
    assert_eq!(waiting(&f), 0);
}

/// A cancel during a backoff pause ends the sync within one 20 ms slice of
/// the pause, not at its end.
#[test]
fn a_cancel_during_a_backoff_pause_stops_the_sync() {
    let f = Fixture::new();
    let cancel = Arc::new(AtomicBool::new(false));
    let mut t = Scripted::failing(
        &f,
        vec![TransportError::Overloaded {
            retry_after: Some(Duration::from_secs(600)),
        }],
    );
    t.cancel_during_push = Some(cancel.clone());
    let before = f.clock.now_ms();
    let err = sync_with(&f, &t, &retrying(), &cancel).unwrap_err();
    assert!(matches!(err, Error::Cancelled), "{err:?}");
    assert_eq!(t.pushes(), 1);
    assert!(
        f.clock.now_ms() - before <= 20,
        "stopped within a slice of the 10-minute pause"
    );
    assert_eq!(f.store.outbox_counts().unwrap().sending, 4, "kept, to be sent again");
}

/// Receipts: applied ones leave the outbox, a rejected one is quarantined
/// with the server's reason and shows on its record, one without a receipt
/// waits for the next sync, and a receipt for an operation not sent is
/// ignored.
#[test]
fn receipts_confirm_quarantine_or_leave_waiting() {
    let f = Fixture::new();
    let mut t = Scripted::failing(&f, vec![]);
    t.receipts = Some(Box::new(|req: &PushRequest| {
        let ops = &req.operations;
        if ops.len() < 4 {
            return ops.iter().map(applied).collect(); // the next sync's
        }
        let mut out: Vec<Receipt> = ops[..2].iter().map(applied).collect();
        out.push(Receipt {
            op_id: ops[2].op_id.clone(),
            duplicate: false,
            outcome: Outcome::Rejected {
                code: "not_allowed".into(),
                field: Some("name".into()),
                message: "not yours".into(),
            },
        });
        // ops[3]: no receipt. And one for an operation never sent.
        out.push(applied(&fieldgrid_protocol::Operation {
            op_id: uuid(),
            ..ops[0].clone()
        }));
        out
    }));
    let options = SyncOptions {
        receive: false,
        ..retrying()
    };
    let report = sync_with(&f, &t, &options, &AtomicBool::new(false)).unwrap();
    assert_eq!(
        (report.confirmed, report.rejected),
        (3, 1),
        "the unanswered one was sent again"
    );
    let c = f.store.outbox_counts().unwrap();
    assert_eq!((c.pending, c.sending, c.rejected), (0, 0, 1));
    assert_eq!(t.pushes(), 2);
    let unit = f.store.get_place(&f.unit.id).unwrap();
    match unit.meta.sync {
        SyncStatus::Rejected { code, field, .. } => {
            assert_eq!((code.as_str(), field.as_deref()), ("not_allowed", Some("name")));
        }
        other => panic!("the third operation (the unit) shows its rejection, got {other:?}"),
    }
}

/// A server that answers a push without receipts for what was sent (a bug,
/// or a hostile proxy) does not keep the phone sending the same batch for
/// ever: the sync fails with a bad answer, and the operations wait.
#[test]
fn a_push_answered_without_receipts_ends_the_sync() {
    let f = Fixture::new();
    let mut t = Scripted::failing(&f, vec![]);
    t.receipts = Some(Box::new(|_: &PushRequest| Vec::new()));
    let err = sync_with(&f, &t, &retrying(), &AtomicBool::new(false)).unwrap_err();
    assert!(
        matches!(&err, Error::Server { status: 0, code } if code == "bad_response"),
        "{err:?}"
    );
    assert_eq!(t.pushes(), 1);
    assert_eq!(f.store.outbox_counts().unwrap().pending, 4);
}

struct Recorder(Mutex<Vec<DataChange>>);

impl ChangeListener for Recorder {
    fn changed(&self, change: &DataChange) {
        self.0.lock().unwrap().push(change.clone());
    }
}

/// Screens follow the data: each capture and each applied pull page tells
/// the one listener which kinds of record and which grids changed (nothing
/// of their content); reads tell nothing, and a failed write tells nothing.
#[test]
fn captures_and_pulled_pages_report_what_changed() {
    let f = Fixture::new();
    let heard = Arc::new(Recorder(Mutex::new(Vec::new())));
    f.store.set_change_listener(Some(heard.clone()));
    let g = f.grid.id.clone();

    let r = f
        .store
        .create_resident(&f.resident("王秀英", &id_for("19450315", "022"), Sex::Female))
        .unwrap();
    f.store.get_resident(&r.id).unwrap();
    assert!(f.store.create_resident(&f.resident("", "x", Sex::Male)).is_err());
    f.store
        .report_incident(&f.incident("hornets_nest"), &[photo(2)])
        .unwrap();
    {
        let heard = heard.0.lock().unwrap();
        assert_eq!(heard.len(), 2, "one per committed write: {heard:?}");
        assert_eq!(
            heard[0],
            DataChange {
                entities: vec![Entity::Resident],
                grids: vec![g.clone()],
                any_grid: false
            }
        );
        assert!(heard[1].entities.contains(&Entity::Incident) && heard[1].entities.contains(&Entity::Photo));
        assert_eq!(heard[1].grids, vec![g.clone()]);
    }

    // A pulled page: a place another phone made, in this grid.
    heard.0.lock().unwrap().clear();
    let pages = vec![vec![change(
        1,
        "place",
        &uuid(),
        &g,
        1,
        json!({"grid_id": g, "kind": "compound", "parent_id": null, "name": "新小区"}),
    )]];
    let t = Scripted::new(&f.grid, pages);
    f.store.login(&t, "w", "password").unwrap();
    sync(&f.store, &t).unwrap();
    let heard_now = heard.0.lock().unwrap().clone();
    assert!(
        heard_now
            .iter()
            .any(|c| c.entities == vec![Entity::Place] && c.grids == vec![g.clone()]),
        "{heard_now:?}"
    );

    // No listener: nothing kept, nothing told.
    f.store.set_change_listener(None);
    heard.0.lock().unwrap().clear();
    f.store
        .create_resident(&f.resident("李强", &id_for("19800101", "011"), Sex::Male))
        .unwrap();
    assert!(heard.0.lock().unwrap().is_empty());
}

/// A catalogue from a newer server is installed with what this build reads
/// of it (its visit rules; a rule of an unknown period skipped), and kept as
/// the server sent it: the parts this build does not know are there for the
/// build that will.
#[test]
fn a_newer_catalogue_is_kept_whole_and_read_as_far_as_this_build_knows() {
    let f = Fixture::new();
    let mut body = serde_json::to_value(Catalogue::builtin()).unwrap();
    body["version"] = json!(5);
    body["report_templates"] = json!({"resident": [{"code": "blood_type", "type": "choice"}]});
    body["field_defs"] = json!([
        {"entity": "service_log", "code": "minutes", "label_zh": "时长", "answer": "number"},
        {"entity": "resident", "code": "blood_type", "label_zh": "血型", "answer": "blood_group", "new_key": 1}
    ]);
    body["checklists"] = json!([{"code": "lift_safety", "name_zh": "电梯安全检查",
        "items": [{"code": "lift_video", "label_zh": "电梯监控视频", "answer": "video", "required": true}]}]);
    body["visit_rules"] = json!([
        {"code": "fortnightly", "name_zh": "双周走访", "every": "fortnight", "care_tags": ["disabled"], "kinds": ["visit"]},
        {"code": "weekly", "name_zh": "每周电话", "every": "week", "care_tags": ["disabled"], "kinds": ["phone_check_in"],
         "priority": "high"}
    ]);
    let t = Scripted::new(
        &f.grid,
        vec![vec![change(1, "catalogue", "catalogue", "*", 5, body.clone())]],
    );
    f.store.login(&t, "w", "password").unwrap();
    sync(&f.store, &t).unwrap();
    let catalogue = f.store.catalogue();
    assert_eq!(catalogue.version, 5);
    let codes: Vec<_> = catalogue
        .visit_rules
        .iter()
        .filter(|r| r.applies())
        .map(|r| r.code.as_str())
        .collect();
    assert_eq!(codes, ["weekly"]);
    assert!(
        !catalogue.checklists[0].usable(),
        "a checklist of an answer type this build lacks is read, and cannot be filled in here"
    );
    assert_eq!(
        catalogue.field_defs[1].item.answer,
        AnswerType::Unknown,
        "a field's type too"
    );
    assert_eq!(catalogue.fields_of(Entity::Resident).count(), 1);
    let stored: String = f
        .raw()
        .query_row("SELECT body FROM catalogue WHERE id = 1", [], |r| r.get(0))
        .unwrap();
    assert_eq!(serde_json::from_str::<Value>(&stored).unwrap(), body, "stored as sent");
    // And read the same way after a restart.
    let (path, clock) = (f.path(), f.clock.clone());
    drop(f.store);
    assert_eq!(Fixture::reopen(&path, &clock).catalogue(), catalogue);
}

/// A record from a newer catalogue's phone holds a field this phone does
/// not know: it is kept through an edit of another field, which sends only
/// that field.
#[test]
fn fields_this_phone_does_not_know_survive_its_edits() {
    let f = Fixture::new();
    let mut catalogue = Catalogue::builtin();
    catalogue.version = 2;
    catalogue.field_defs = catalogue::demo_field_defs();
    f.store.replace_catalogue(catalogue).unwrap();
    let id = uuid();
    let fields = |notes: &str| {
        json!({"grid_id": f.grid.id, "unit_id": null, "room": "401", "address": "", "notes": notes,
               "extra": {"gas_supplier": "管道天然气", "heating": {"kind": "集中供暖", "since": 2019}}})
    };
    let sent: Arc<Mutex<Vec<Map<String, Value>>>> = Arc::default();
    let mut t = Scripted::new(
        &f.grid,
        vec![vec![change(1, "household", &id, &f.grid.id, 3, fields(""))]],
    );
    let log = sent.clone();
    t.receipts = Some(Box::new(move |req: &PushRequest| {
        log.lock()
            .unwrap()
            .extend(req.operations.iter().map(|o| o.patch.clone()));
        req.operations.iter().map(applied).collect()
    }));
    f.store.login(&t, "w", "password").unwrap();
    sync(&f.store, &t).unwrap();
    let pulled = f.store.get_household(&id).unwrap();
    assert_eq!(pulled.extra.0["heating"], json!({"kind": "集中供暖", "since": 2019}));

    let set = [ItemAnswer {
        item: "smoke_alarm".into(),
        answer: Answer::YesNo(true),
    }];
    f.store.update_extra(Entity::Household, &id, &set, &[]).unwrap();
    sync(&f.store, &t).unwrap();
    assert_eq!(
        sent.lock().unwrap().last().unwrap()["extra"],
        json!({"smoke_alarm": true})
    );
    assert_eq!(
        f.store.get_household(&id).unwrap().extra.0["heating"],
        json!({"kind": "集中供暖", "since": 2019})
    );
}
