"""The FieldGrid library as a Python QA engineer (or a shell) uses it."""

import asyncio
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

import fieldgrid as fg
from conftest import JPEG, PASSWORD, SERVER, assign, id_number, resident, sign_in


def test_keyed_store_captures_resident_and_incident_with_photo_and_finds_them(tmp, key, phone):
    store = phone
    r = store.create_resident(resident("张三丰", 1))
    assert r.birth_date == "1950-01-01"
    assert r.meta.sync == fg.SyncStatus.ONLY_ON_DEVICE()

    incident = store.report_incident(
        fg.NewIncident(
            grid_id="grid-a",
            category="broken_facility",
            description="楼道灯损坏",
            location=fg.Location(latitude=37.46, longitude=118.49, accuracy_m=8.0, crs=fg.CoordinateSystem.WGS84),
        ),
        [fg.NewPhoto(source=fg.PhotoSource.BYTES(JPEG))],
    )
    assert incident.status == fg.IncidentStatus.REPORTED
    assert len(incident.photos) == 1
    assert store.photo_bytes(incident.photos[0]) == JPEG
    # The photo is encrypted on disk: its file does not start with the JPEG header.
    on_disk = (tmp / "phone.db.photos" / incident.photos[0].sha256).read_bytes()
    assert not on_disk.startswith(JPEG[:3])

    by_name = store.search_residents(fg.ResidentQuery(name="三丰"), fg.PageRequest())
    assert [x.id for x in by_name.items] == [r.id]
    by_id_tail = store.search_residents(fg.ResidentQuery(id_number=r.id_number[-4:]), fg.PageRequest())
    assert [x.id for x in by_id_tail.items] == [r.id]
    listed = store.list_incidents(fg.IncidentQuery(grid_id="grid-a"), fg.PageRequest(limit=10))
    assert [i.id for i in listed.items] == [incident.id]
    store.close_store()

    again = fg.FieldGridStore.open(str(tmp / "phone.db"), key)
    assert again.get_resident(r.id).name == "张三丰"
    again.close_store()
    with pytest.raises(fg.FieldGridError.Storage) as wrong:
        fg.FieldGridStore.open(str(tmp / "phone.db"), bytes(32))
    assert wrong.value.problem == fg.StorageProblem.WRONG_KEY


def test_bad_id_number_is_a_typed_validation_error_naming_the_field(tmp, phone):
    store = phone
    good = id_number("370502", "19500101", 1)
    bad = good[:-1] + ("0" if good[-1] != "0" else "1")
    with pytest.raises(fg.FieldGridError.Validation) as e:
        store.create_resident(
            fg.NewResident(grid_id="grid-a", name="李四", sex=fg.Sex.MALE, id_number=bad,
                           residence=fg.ResidenceStatus.REGISTERED)
        )
    assert e.value.field == "id_number"
    assert e.value.code == "bad_check_character"
    assert bad not in str(e.value) and "李四" not in str(e.value)
    assert store.status_counts().records == 0
    assert store.search_residents(fg.ResidentQuery(name="李四"), fg.PageRequest()).items == []
    with pytest.raises(fg.FieldGridError.Validation) as e:
        store.create_resident(resident("王五", 2, birth_date="1950-02-30"))
    assert e.value.field == "birth_date"
    with pytest.raises(fg.FieldGridError.NotFound):
        store.get_resident("no-such-id")
    # In a bulk import, a bad row (an unreadable date, a bad ID) is refused with
    # its index and field; the other rows are saved.
    report = store.import_residents([
        resident("钱一", 11),
        resident("钱二", 12, birth_date="1950-13-01"),
        fg.NewResident(grid_id="grid-a", name="钱三", sex=fg.Sex.MALE, id_number=bad,
                       residence=fg.ResidenceStatus.REGISTERED),
        resident("钱四", 14),
    ])
    assert len(report.created) == 2
    assert [(x.index, x.field, x.code) for x in report.rejected] == [
        (1, "birth_date", "bad_date"), (2, "id_number", "bad_check_character")]
    assert all(bad not in x.message and "钱" not in x.message for x in report.rejected)
    assert [r.name for r in store.search_residents(fg.ResidentQuery(name="钱"), fg.PageRequest()).items] == ["钱一", "钱四"]
    with pytest.raises(fg.FieldGridError.Validation) as short_key:
        fg.FieldGridStore.open(str(tmp / "other.db"), b"short")
    assert short_key.value.field == "key"
    assert not (tmp / "other.db").exists()


def test_form_helpers_check_id_numbers_and_mask_personal_data():
    info = fg.check_id_number(id_number("370502", "19800229", 12))
    assert info.birth_date == "1980-02-29" and info.sex == fg.Sex.FEMALE
    with pytest.raises(fg.FieldGridError.Validation) as e:
        fg.check_id_number("37050219800229012")
    assert e.value.field == "id_number"
    assert fg.mask_name("张小明") == "张*明"
    assert fg.mask_phone("13812345678") == "138****5678"
    assert "19800229" not in fg.mask_id_number(id_number("370502", "19800229", 12))


def test_a_mobile_number_in_an_unallocated_segment_is_a_warning_the_worker_confirms(phone):
    fine = fg.check_phone("+86 138 1234 5678")
    assert (fine.normalized, fine.mobile, fine.warning) == ("13812345678", True, None)
    odd = fg.check_phone("140-1234-5678")
    assert (odd.normalized, odd.warning) == ("14012345678", "unallocated_segment")
    assert fg.check_phone("0546-8123456").warning is None
    with pytest.raises(fg.FieldGridError.Validation) as e:
        fg.check_phone("12812345678")
    assert e.value.field == "phone"
    # Confirmed by the worker, it is saved as typed: a warning never refuses.
    saved = phone.create_resident(
        fg.NewResident(grid_id="grid-a", name="钱十", sex=fg.Sex.MALE, phone=odd.normalized,
                       residence=fg.ResidenceStatus.REGISTERED)
    )
    assert phone.get_resident(saved.id).phone == "14012345678"


def test_the_due_list_shows_who_to_visit_and_a_service_log_completes_the_visit(phone):
    tags = phone.care_tags()
    assert (tags[0].code, tags[0].name_zh, tags[0].retired) == ("elderly_living_alone", "独居老人", False)
    assert "phone_check_in" in [k.code for k in phone.service_kinds()]
    alone = phone.create_resident(resident("王秀英", 21, care_tags=["elderly_living_alone"]))
    phone.create_resident(resident("刘强", 22))
    due = phone.due_visits("grid-a")
    assert sorted(d.rule for d in due) == ["elderly_alone_monthly_visit", "elderly_alone_weekly_call"]
    assert all(d.resident.id == alone.id and d.state == fg.VisitState.OVERDUE for d in due)
    assert phone.dashboard("grid-a").visits.overdue == 2
    phone.create_service_log(fg.NewServiceLog(grid_id="grid-a", kind="phone_check_in",
                                              resident_ids=[alone.id]))
    # A call completes the weekly call, not the monthly visit.
    assert [d.rule for d in phone.due_visits("grid-a")] == ["elderly_alone_monthly_visit"]
    counts = phone.dashboard("grid-a").visits
    assert (counts.overdue, counts.done) == (1, 1)


def test_an_inspection_with_a_failed_item_raises_an_incident_and_bad_answers_name_the_item(phone):
    gas = {c.code: c for c in phone.checklists()}["gas_safety"]
    assert [i.answer for i in gas.items][:4] == [fg.AnswerType.YES_NO] * 3 + [fg.AnswerType.NUMBER]
    assert gas.items[0].fails_on == [fg.Answer.YES_NO(False)] and gas.items[0].raises == "gas_no_alarm"

    def inspection(hose_years):
        answers = [fg.ItemAnswer(item=i, answer=fg.Answer.YES_NO(i != "detector_installed"))
                   for i in ("detector_installed", "nothing_on_pipes", "ventilation_ok")]
        answers.append(fg.ItemAnswer(item="hose_years", answer=fg.Answer.NUMBER(hose_years)))
        return fg.NewInspection(
            grid_id="grid-a", checklist="gas_safety", answers=answers,
            photos=[fg.ItemPhoto(item="detector_installed", photo=fg.NewPhoto(source=fg.PhotoSource.BYTES(JPEG)))],
            location=fg.Location(latitude=37.46, longitude=118.49, accuracy_m=8.0, crs=fg.CoordinateSystem.WGS84))

    with pytest.raises(fg.FieldGridError.Validation) as e:
        phone.record_inspection(inspection(80.0))
    assert (e.value.field, e.value.code) == ("answers.hose_years", "out_of_range")
    report = phone.record_inspection(inspection(3.0))
    assert [i.category for i in report.raised] == ["gas_no_alarm"]
    assert report.inspection.raised_incidents == [report.raised[0].id]
    assert len(report.raised[0].photos) == 1
    saved = phone.get_inspection(report.inspection.id)
    assert {a.item: a.answer for a in saved.answers}["hose_years"] == fg.Answer.NUMBER(3.0)


def test_a_field_the_district_adds_is_on_the_form_and_validated_by_the_phone(phone, server):
    subprocess.run(SERVER["admin"] + ["set-field", "--entity", "resident", "--code", "monthly_allowance",
                                      "--label", "低保金额（元/月）", "--answer", "number", "--min", "0",
                                      "--max", "10000"], check=True, stdout=subprocess.DEVNULL)
    asyncio.run(sign_in(phone, server).sync())
    fields = phone.form_fields(fg.RecordKind.RESIDENT)
    assert [(f.code, f.answer, f.max) for f in fields] == [("monthly_allowance", fg.AnswerType.NUMBER, 10000.0)]
    assert phone.form_fields(fg.RecordKind.HOUSEHOLD) == []

    def allowance(amount):
        return [fg.ItemAnswer(item="monthly_allowance", answer=fg.Answer.NUMBER(amount))]

    with pytest.raises(fg.FieldGridError.Validation) as e:
        phone.create_resident(resident("陈芳", 31, extra=allowance(20000.0)))
    assert (e.value.field, e.value.code) == ("extra.monthly_allowance", "out_of_range")
    r = phone.create_resident(resident("陈芳", 31, extra=allowance(1200.0)))
    assert r.extra == allowance(1200.0)
    assert phone.update_extra(fg.RecordKind.RESIDENT, r.id, allowance(900.0), []) == allowance(900.0)
    assert phone.get_resident(r.id).extra == allowance(900.0)


class Progress(fg.SyncListener):
    def __init__(self):
        self.events = []

    def on_progress(self, progress):
        self.events.append(progress)


def test_sync_with_the_reference_server_sends_records_another_phone_receives(tmp, key, server):
    phone = fg.FieldGridStore.open(str(tmp / "phone1.db"), key)
    client = fg.SyncClient(phone, fg.SyncSettings(server_url=server))
    with pytest.raises(fg.FieldGridError.BadCredentials):
        asyncio.run(client.login("wa1", "wrong password"))
    with pytest.raises(fg.FieldGridError.AuthExpired):
        asyncio.run(client.sync())
    session = asyncio.run(client.login("wa1", PASSWORD))
    assert [g.id for g in session.grids] == ["grid-a"]

    r = phone.create_resident(resident("赵六", 3))
    incident = phone.report_incident(
        fg.NewIncident(grid_id="grid-a", category="neighbour_dispute", description="电动车楼道充电"),
        [fg.NewPhoto(source=fg.PhotoSource.BYTES(JPEG))],
    )
    progress = Progress()
    report = asyncio.run(client.sync(progress))
    assert report.confirmed >= 2 and report.rejected == 0 and report.photos_uploaded == 1
    phases = {p.phase for p in progress.events}
    assert {fg.SyncPhase.PUSH, fg.SyncPhase.PULL} <= phases
    assert phone.get_resident(r.id).meta.sync == fg.SyncStatus.ON_SERVER()
    counts = phone.status_counts()
    assert counts.on_server == counts.records and counts.only_on_device == 0

    # A second phone of the same grid gets them from the server.
    other = fg.FieldGridStore.open(str(tmp / "phone2.db"), None)
    other_client = fg.SyncClient(other, fg.SyncSettings(server_url=server))
    asyncio.run(other_client.login("wa2", PASSWORD))
    pulled = asyncio.run(other_client.sync())
    assert pulled.pulled >= 2
    assert other.get_resident(r.id).name == "赵六"
    assert other.get_incident(incident.id).status == fg.IncidentStatus.REPORTED

    with pytest.raises(fg.FieldGridError.Validation) as e:
        fg.SyncClient(phone, fg.SyncSettings(server_url="http://example.com"))
    assert e.value.field == "server_url"


def test_sync_to_an_unreachable_server_is_offline_and_loses_nothing(phone, server):
    r = phone.create_resident(resident("孙七", 4))
    dead = fg.SyncClient(phone, fg.SyncSettings(server_url="http://127.0.0.1:9", max_attempts=1, request_timeout_ms=2000))
    with pytest.raises(fg.FieldGridError.Offline):
        asyncio.run(dead.sync())
    # Sent or not, no receipt: the record stays, waiting for the next sync.
    assert phone.get_resident(r.id).meta.sync in (fg.SyncStatus.ONLY_ON_DEVICE(), fg.SyncStatus.SENDING())
    assert phone.status_counts().on_server == 0
    live = fg.SyncClient(phone, fg.SyncSettings(server_url=server))
    assert asyncio.run(live.sync()).confirmed == 1
    assert phone.get_resident(r.id).meta.sync == fg.SyncStatus.ON_SERVER()


def test_a_cancelled_call_abandons_its_request_at_once(phone):
    """The request in flight stops with the caller's task (not after its
    answer, nor after the request timeout): a server that never answers
    sees the connection closed as soon as the task is cancelled."""
    import socket

    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    url = f"http://127.0.0.1:{listener.getsockname()[1]}"
    client = fg.SyncClient(phone, fg.SyncSettings(server_url=url, max_attempts=1, request_timeout_ms=60_000))

    def closed_within(conn, seconds):
        """Reads the request, then waits for the client to hang up."""
        conn.settimeout(seconds)
        try:
            while conn.recv(65536):
                pass
            return True  # end of stream: the client closed the connection
        except (socket.timeout, ConnectionResetError):
            return False
        finally:
            conn.close()

    async def sign_in_then_give_up():
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(client.login("wa1", PASSWORD), 0.5)

    listener.settimeout(10)
    asyncio.run(sign_in_then_give_up())
    conn, _ = listener.accept()
    assert closed_within(conn, 5), "the abandoned sign-in kept its connection open"
    listener.close()


class Lines(fg.LogSink):
    def __init__(self):
        self.records = []
        self.lock = threading.Lock()

    def log(self, record):
        with self.lock:
            self.records.append(record)


def test_log_sink_receives_the_cores_lines_without_personal_data(tmp, key, server):
    lines = Lines()
    fg.set_log_sink(lines, fg.LogLevel.TRACE)
    try:
        phone = fg.FieldGridStore.open(str(tmp / "phone.db"), key)
        client = fg.SyncClient(phone, fg.SyncSettings(server_url=server))
        asyncio.run(client.login("wa1", PASSWORD))
        r = phone.create_resident(resident("周八", 5))
        asyncio.run(client.sync())
    finally:
        fg.set_log_sink(None, fg.LogLevel.ERROR)
    assert any(rec.message.startswith("store opened") for rec in lines.records)
    assert any(rec.target.startswith("fieldgrid_core::sync") for rec in lines.records)
    text = "\n".join(f"{rec.target} {rec.message}" for rec in lines.records)
    for secret in ("周八", r.id_number, r.id_number[-6:], r.phone):
        assert secret not in text
    count = len(lines.records)
    phone.create_resident(resident("吴九", 6))
    assert len(lines.records) == count  # the sink was removed


def test_eight_threads_on_one_store_complete_without_error_or_corruption(tmp, key, phone):
    store = phone
    per_thread = 40

    def work(t):
        ids = []
        for i in range(per_thread):
            seq = t * per_thread + i
            ids.append(store.create_resident(resident(f"线程{t}号{i}", seq)).id)
            store.search_residents(fg.ResidentQuery(grid_id="grid-a"), fg.PageRequest(limit=20))
            store.dashboard("grid-a")
        return ids

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = [i for ids in pool.map(work, range(8)) for i in ids]
    assert len(set(created)) == 8 * per_thread
    assert store.dashboard("grid-a").residents == 8 * per_thread
    assert store.status_counts().only_on_device == 8 * per_thread
    assert all(store.get_resident(i).grid_id == "grid-a" for i in created)
    store.close_store()
    again = fg.FieldGridStore.open(str(tmp / "phone.db"), key)
    assert again.status_counts().records == 8 * per_thread


def test_wipe_refuses_while_work_is_unsynced_and_removes_everything_when_forced(tmp, phone):
    store = phone
    store.report_incident(
        fg.NewIncident(grid_id="grid-a", category="neighbour_dispute", description="x"),
        [fg.NewPhoto(source=fg.PhotoSource.BYTES(JPEG))],
    )
    with pytest.raises(fg.FieldGridError.Conflict):
        store.wipe(False)
    # Still open and whole.
    assert len(store.list_incidents(fg.IncidentQuery(), fg.PageRequest()).items) == 1
    store.wipe(True)
    assert not (tmp / "phone.db").exists()
    assert not (tmp / "phone.db.photos").exists() or not any((tmp / "phone.db.photos").iterdir())
    with pytest.raises(fg.FieldGridError.Conflict):
        store.status_counts()


def test_cancelling_the_callers_task_stops_the_sync_and_loses_nothing(tmp, phone, server):
    report = phone.import_residents([resident(f"批量{i}", 100 + i) for i in range(400)])
    assert report.rejected == []
    queued = len(report.created)
    client = fg.SyncClient(phone, fg.SyncSettings(server_url=server, batch_operations=2))

    async def start_then_cancel():
        loop = asyncio.get_running_loop()
        started = asyncio.Event()

        class FirstStep(fg.SyncListener):
            def on_progress(self, progress):
                try:
                    loop.call_soon_threadsafe(started.set)
                except RuntimeError:
                    pass  # the loop has ended; the cancelled sync is winding down

        task = asyncio.ensure_future(client.sync(FirstStep()))
        await asyncio.wait_for(started.wait(), 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(start_then_cancel())

    # The cancelled sync stops at its next await (a store write under way finishes first);
    # until then a new one is refused.
    async def sync_when_free():
        for _ in range(300):
            try:
                return await client.sync()
            except fg.FieldGridError.Conflict:
                await asyncio.sleep(0.05)
        raise AssertionError("the cancelled sync never stopped")

    rest = asyncio.run(sync_when_free())
    assert 0 < rest.confirmed < queued, "the first sync stopped part way"
    counts = phone.status_counts()
    assert counts.on_server == counts.records >= queued  # (plus what other tests sent and this phone pulled)
    assert counts.only_on_device == counts.sending == 0
    # The server holds each resident once: a second phone receives exactly them.
    other = fg.FieldGridStore.open(str(tmp / "other.db"), None)
    sign_in(other, server, "wa2")
    asyncio.run(fg.SyncClient(other, fg.SyncSettings(server_url=server)).sync())
    page = other.search_residents(fg.ResidentQuery(name="批量"), fg.PageRequest(limit=500))
    seen = len(page.items)
    while page.next:
        page = other.search_residents(fg.ResidentQuery(name="批量"), fg.PageRequest(limit=500, after=page.next))
        seen += len(page.items)
    assert seen == queued


def test_a_concurrent_edit_shows_as_a_conflict_with_both_values(tmp, phone, server):
    r = phone.create_resident(resident("郑十", 7))
    mine = fg.SyncClient(phone, fg.SyncSettings(server_url=server))
    asyncio.run(mine.sync())
    other = fg.FieldGridStore.open(str(tmp / "other.db"), None)
    theirs = sign_in(other, server, "wa2")
    asyncio.run(theirs.sync())
    # Both phones change the same field offline; the other phone syncs first.
    other.update_resident(r.id, [fg.ResidentChange.PHONE("13900000002")])
    phone.update_resident(r.id, [fg.ResidentChange.PHONE("13900000001")])
    asyncio.run(theirs.sync())
    asyncio.run(mine.sync())
    asyncio.run(theirs.sync())
    for store in (phone, other):
        got = store.get_resident(r.id)
        assert got.phone == "13900000001", "the later write wins on both phones"
        assert got.meta.sync == fg.SyncStatus.CONFLICT(["phone"])
        [c] = store.conflicts_of(r.id)
        assert (c.field, c.kept_json, c.replaced_json) == ("phone", '"13900000001"', '"13900000002"')
    phone.acknowledge_conflicts(r.id)
    assert phone.get_resident(r.id).meta.sync == fg.SyncStatus.ON_SERVER()


def test_a_session_lists_the_grids_assigned_now_and_a_grid_taken_away_leaves_at_the_next_sync(tmp, server):
    store = fg.FieldGridStore.open(str(tmp / "phone.db"), None)
    client = fg.SyncClient(store, fg.SyncSettings(server_url=server))
    assert [g.id for g in asyncio.run(client.login("wa2", PASSWORD)).grids] == ["grid-a"]
    r = store.create_resident(resident("冯十一", 21))
    try:
        assign("wa2", ["grid-b"])
        session = asyncio.run(client.login("wa2", PASSWORD))
        assert [g.id for g in session.grids] == ["grid-b"]
        # grid-a stays on the phone until its waiting work has reached the server.
        assert {g.id for g in store.grids()} == {"grid-a", "grid-b"}
        report = asyncio.run(client.sync())
        assert report.confirmed == 1 and report.evicted_grids == ["grid-a"]
        assert [g.id for g in store.grids()] == ["grid-b"]
        with pytest.raises(fg.FieldGridError.NotFound):
            store.get_resident(r.id)
    finally:
        assign("wa2", ["grid-a"])


def test_signing_out_ends_the_session(tmp, key, server):
    store = fg.FieldGridStore.open(str(tmp / "phone.db"), key)
    client = sign_in(store, server)
    asyncio.run(client.sync())
    asyncio.run(client.sign_out())
    with pytest.raises(fg.FieldGridError.AuthExpired):
        asyncio.run(client.sync())


def test_a_remote_wipe_arriving_during_sync_erases_the_store(tmp, key, server):
    store = fg.FieldGridStore.open(str(tmp / "lost.db"), key)
    client = sign_in(store, server)
    store.create_resident(resident("吴十", 51))
    asyncio.run(client.sync())
    subprocess.run(SERVER["admin"] + ["wipe-device", "--username", "wa1", "--device", store.device_id()],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    store.create_resident(resident("郑十一", 52))
    with pytest.raises(fg.FieldGridError.Wiped):
        asyncio.run(client.sync())
    assert not (tmp / "lost.db").exists()
    with pytest.raises(fg.FieldGridError.Conflict):
        store.status_counts()


def test_switching_accounts_keeps_each_workers_store_and_sends_the_first_ones_work(tmp, key, server):
    stores = tmp / "stores"
    stores.mkdir()
    first = fg.FieldGridStore.open(fg.store_path_for_account(str(stores), "wa1"), key)
    first_client = sign_in(first, server, "wa1")
    made = first.create_resident(resident("王十二", 53))
    with pytest.raises(fg.FieldGridError.Conflict):
        asyncio.run(first_client.login("wa2", PASSWORD))
    sent = asyncio.run(first_client.send_pending())
    assert (sent.confirmed, sent.pulled) == (1, 0)
    first.wipe(False)
    second = fg.FieldGridStore.open(fg.store_path_for_account(str(stores), "wa2"), os.urandom(32))
    second_client = sign_in(second, server, "wa2")
    asyncio.run(second_client.sync())
    assert second.get_resident(made.id).name == "王十二"
    counts = second.status_counts()
    assert counts.only_on_device + counts.sending == 0


def test_a_keyed_store_is_stock_sqlcipher_4(tmp, key, phone):
    """The store the library writes with its own crypto provider opens in the
    reference SQLCipher 4 (over OpenSSL), with the settings the core documents
    (core/src/store.rs): a raw key, HMAC-SHA256, 8 KiB pages."""
    import sqlcipher3

    r = phone.create_resident(resident("王五", 5))
    path = str(tmp / "phone.db")
    stock = sqlcipher3.connect(path)
    stock.execute(f"PRAGMA key = \"x'{key.hex()}'\"")
    stock.execute("PRAGMA cipher_hmac_algorithm = HMAC_SHA256")
    stock.execute("PRAGMA cipher_page_size = 8192")
    assert stock.execute("PRAGMA cipher_provider").fetchone()[0] == "openssl"
    assert stock.execute("SELECT name FROM residents WHERE id = ?", (r.id,)).fetchone() == ("王五",)
    assert stock.execute("PRAGMA cipher_integrity_check").fetchall() == []
    stock.close()
    # And with a byte of the key changed, it cannot read a thing.
    wrong = bytearray(key)
    wrong[0] ^= 1
    other = sqlcipher3.connect(path)
    other.execute(f"PRAGMA key = \"x'{bytes(wrong).hex()}'\"")
    other.execute("PRAGMA cipher_hmac_algorithm = HMAC_SHA256")
    other.execute("PRAGMA cipher_page_size = 8192")
    with pytest.raises(sqlcipher3.DatabaseError):
        other.execute("SELECT count(*) FROM residents").fetchone()


class Changes(fg.ChangeListener):
    def __init__(self):
        self.seen = []
        self.lock = threading.Lock()

    def on_change(self, change):
        with self.lock:
            self.seen.append(change)


def test_a_phone_hears_which_kinds_and_grids_a_sync_changed(tmp, key, server):
    """The change listener (what the Kotlin and Swift layers' observed lists
    stand on): a record another phone made arrives by sync, and the listener
    is told its kind and grid, never its content."""
    first = fg.FieldGridStore.open(str(tmp / "first.db"), key)
    first_client = sign_in(first, server)
    second = fg.FieldGridStore.open(str(tmp / "second.db"), key)
    second_client = sign_in(second, server, user="wa2")
    asyncio.run(second_client.sync())
    heard = Changes()
    second.set_change_listener(heard)

    r = first.create_resident(resident("冯十一", 9))
    asyncio.run(first_client.sync())
    assert heard.seen == [], "nothing changed on this phone yet"
    asyncio.run(second_client.sync())
    assert any(fg.RecordKind.RESIDENT in c.kinds and "grid-a" in c.grids for c in heard.seen), heard.seen
    assert second.get_resident(r.id).name == "冯十一"
    assert "冯十一" not in repr(heard.seen)

    second.set_change_listener(None)
    heard.seen.clear()
    second.create_resident(resident("陈十二", 10))
    assert heard.seen == []
