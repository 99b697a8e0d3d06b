package cn.fieldgrid.tests

import cn.fieldgrid.core.Answer
import cn.fieldgrid.core.AnswerType
import cn.fieldgrid.core.CoordinateSystem
import cn.fieldgrid.core.DueVisit
import cn.fieldgrid.core.FieldGridException
import cn.fieldgrid.core.FieldGridStore
import cn.fieldgrid.core.IncidentQuery
import cn.fieldgrid.core.IncidentStatus
import cn.fieldgrid.core.ItemAnswer
import cn.fieldgrid.core.ItemPhoto
import cn.fieldgrid.core.Location
import cn.fieldgrid.core.LogLevel
import cn.fieldgrid.core.LogRecord
import cn.fieldgrid.core.NewIncident
import cn.fieldgrid.core.NewInspection
import cn.fieldgrid.core.NewPhoto
import cn.fieldgrid.core.NewResident
import cn.fieldgrid.core.NewServiceLog
import cn.fieldgrid.core.PageRequest
import cn.fieldgrid.core.PhotoSource
import cn.fieldgrid.core.RecordKind
import cn.fieldgrid.core.ResidenceStatus
import cn.fieldgrid.core.ResidentQuery
import cn.fieldgrid.core.Sex
import cn.fieldgrid.core.StorageProblem
import cn.fieldgrid.core.SyncPhase
import cn.fieldgrid.core.SyncSettings
import cn.fieldgrid.core.SyncStatus
import cn.fieldgrid.core.VisitState
import cn.fieldgrid.core.storePathForAccount
import cn.fieldgrid.shell.CareTags
import cn.fieldgrid.shell.FieldGrid
import cn.fieldgrid.shell.FieldGridLog
import cn.fieldgrid.shell.KeyProvider
import cn.fieldgrid.shell.ServiceKinds
import cn.fieldgrid.shell.SyncEvent
import cn.fieldgrid.shell.maskedName
import cn.fieldgrid.shell.maskedPhone
import cn.fieldgrid.shell.safeLabel
import java.io.File
import java.nio.file.Files
import java.util.Collections
import java.util.concurrent.CountDownLatch
import java.util.concurrent.Executors
import java.util.concurrent.TimeUnit
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.async
import kotlinx.coroutines.awaitAll
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.delay
import kotlinx.coroutines.flow.first
import kotlinx.coroutines.flow.toList
import kotlinx.coroutines.launch
import kotlinx.coroutines.runBlocking
import kotlinx.coroutines.withTimeout
import org.junit.After
import org.junit.Assert.assertEquals
import org.junit.Assert.assertFalse
import org.junit.Assert.assertNotNull
import org.junit.Assert.assertTrue
import org.junit.Assert.fail
import org.junit.Before
import org.junit.Test

/** The library as an Android app uses it, on the desktop JVM. */
class BindingsTest {
    private lateinit var dir: File
    private val key = randomKey()
    private val keys = KeyProvider { key.copyOf() }

    @Before
    fun setUp() {
        dir = Files.createTempDirectory("fieldgrid-kt-").toFile()
    }

    @After
    fun tearDown() {
        dir.deleteRecursively()
    }

    /** A keyed store signed in as [user]: the grids arrive with the session. */
    private fun phone(
        name: String,
        user: String = "wa1",
    ): FieldGrid =
        runBlocking {
            val grid = FieldGrid.open(File(dir, name).path, keys)
            grid.syncWith(SyncSettings(serverUrl = TestServer.url)).use { it.login(user, PASSWORD) }
            grid
        }

    @Test
    fun keyedStoreCapturesResidentAndIncidentWithPhotoAndFindsThem() =
        runBlocking {
            val grid = phone("phone.db")
            val r = grid.createResident(resident("张三丰", 1))
            assertEquals("1950-01-01", r.birthDate)
            assertEquals(SyncStatus.OnlyOnDevice, r.meta.sync)
            val incident =
                grid.reportIncident(
                    NewIncident(
                        gridId = "grid-a",
                        category = "broken_facility",
                        description = "楼道灯损坏",
                        location = Location(37.46, 118.49, 8.0, CoordinateSystem.WGS84),
                    ),
                    listOf(NewPhoto(PhotoSource.Bytes(JPEG))),
                )
            assertEquals(IncidentStatus.REPORTED, incident.status)
            assertEquals(1, incident.photos.size)
            assertTrue(grid.call { it.photoBytes(incident.photos[0]) }.contentEquals(JPEG))
            val onDisk = File(dir, "phone.db.photos/${incident.photos[0].sha256}").readBytes()
            assertFalse("photo stored in the clear", onDisk.copyOf(3).contentEquals(JPEG.copyOf(3)))

            assertEquals(listOf(r.id), grid.searchResidents(ResidentQuery(name = "三丰")).items.map { it.id })
            assertEquals(listOf(r.id), grid.searchResidents(ResidentQuery(idNumber = r.idNumber!!.takeLast(4))).items.map { it.id })
            assertEquals(listOf(incident.id), grid.listIncidents(IncidentQuery(gridId = "grid-a")).items.map { it.id })
            assertEquals("张*丰", r.maskedName)
            assertEquals("138****0001", r.maskedPhone)
            assertFalse(r.safeLabel.contains("三"))
            grid.close()

            FieldGrid.open(File(dir, "phone.db").path, keys).use { again ->
                assertEquals("张三丰", again.call { it.getResident(r.id) }.name)
            }
            try {
                FieldGrid.open(File(dir, "phone.db").path, KeyProvider { ByteArray(32) })
                fail("opened with a wrong key")
            } catch (e: FieldGridException.Storage) {
                assertEquals(StorageProblem.WRONG_KEY, e.problem)
            }
        }

    @Test
    fun theDueListShowsWhoToVisitAndAServiceLogCompletesTheVisit() =
        runBlocking {
            val grid = phone("visits.db")
            val alone = grid.createResident(resident("王秀英", 21).copy(careTags = listOf(CareTags.ELDERLY_LIVING_ALONE)))
            grid.createResident(resident("刘强", 22))
            val due = grid.dueVisits("grid-a")
            assertEquals(
                listOf("elderly_alone_monthly_visit", "elderly_alone_weekly_call"),
                due.map { it.rule }.sorted(),
            )
            assertTrue(due.all { it.resident.id == alone.id && it.state == VisitState.OVERDUE })
            assertEquals(2uL, grid.dashboard("grid-a").visits.overdue)
            grid.createServiceLog(NewServiceLog(gridId = "grid-a", kind = ServiceKinds.VISIT, residentIds = listOf(alone.id)))
            assertEquals(emptyList<DueVisit>(), grid.dueVisits("grid-a"))
            assertEquals(2uL, grid.dashboard("grid-a").visits.done)
            grid.close()
        }

    @Test
    fun anInspectionWithAFailedItemRaisesAnIncidentWithTheItemsPhoto() =
        runBlocking {
            val grid = phone("inspection.db")
            val gas = grid.call { it.checklists() }.first { it.code == "gas_safety" }
            assertEquals("gas_no_alarm", gas.items.first().raises)
            val answers =
                listOf("detector_installed", "nothing_on_pipes", "ventilation_ok").map {
                    ItemAnswer(it, Answer.YesNo(it != "detector_installed"))
                } + ItemAnswer("hose_years", Answer.Number(3.0))
            val report =
                grid.recordInspection(
                    NewInspection(
                        gridId = "grid-a",
                        checklist = "gas_safety",
                        answers = answers,
                        photos = listOf(ItemPhoto("detector_installed", NewPhoto(PhotoSource.Bytes(JPEG)))),
                        location = Location(37.46, 118.49, 8.0, CoordinateSystem.WGS84),
                    ),
                )
            assertEquals(listOf("gas_no_alarm"), report.raised.map { it.category })
            assertEquals(IncidentStatus.REPORTED, report.raised[0].status)
            assertEquals(listOf(report.raised[0].id), report.inspection.raisedIncidents)
            try {
                grid.recordInspection(
                    NewInspection(gridId = "grid-a", checklist = "gas_safety", answers = answers.dropLast(2), location = null),
                )
                fail("an unanswered required item was accepted")
            } catch (e: FieldGridException.Validation) {
                assertEquals("answers.ventilation_ok", e.field)
            }
            grid.close()
        }

    @Test
    fun aFieldTheDistrictAddsIsOnTheFormAndValidatedByThePhone() =
        runBlocking {
            TestServer.admin(
                "set-field", "--entity", "resident", "--code", "blood_type", "--label", "血型",
                "--answer", "choice", "--options", "A,B,O,AB",
            )
            val grid = phone("fields.db")
            grid.syncWith(SyncSettings(serverUrl = TestServer.url)).use { it.syncNow() }
            val field = grid.formFields(RecordKind.RESIDENT).single()
            assertEquals("blood_type" to AnswerType.CHOICE, field.code to field.answer)
            assertEquals(listOf("A", "B", "O", "AB"), field.options)
            try {
                grid.createResident(resident("冯十一", 51).copy(extra = listOf(ItemAnswer("blood_type", Answer.Text("C")))))
                fail("a choice the field does not offer was accepted")
            } catch (e: FieldGridException.Validation) {
                assertEquals("extra.blood_type", e.field)
            }
            val r = grid.createResident(resident("冯十一", 51).copy(extra = listOf(ItemAnswer("blood_type", Answer.Text("O")))))
            assertEquals(listOf(ItemAnswer("blood_type", Answer.Text("O"))), r.extra)
            val changed = grid.updateExtra(RecordKind.RESIDENT, r.id, listOf(ItemAnswer("blood_type", Answer.Text("AB"))))
            assertEquals(listOf(ItemAnswer("blood_type", Answer.Text("AB"))), changed)
            grid.close()
        }

    @Test
    fun badIdNumberIsATypedValidationExceptionNamingTheField() =
        runBlocking {
            val grid = phone("phone.db")
            val good = idNumber("370502", "19500101", 1)
            val bad = good.dropLast(1) + (if (good.last() == '0') '1' else '0')
            try {
                grid.createResident(
                    NewResident(gridId = "grid-a", name = "李四", sex = Sex.MALE, idNumber = bad, residence = ResidenceStatus.REGISTERED),
                )
                fail("a wrong check character was accepted")
            } catch (e: FieldGridException.Validation) {
                assertEquals("id_number", e.field)
                assertEquals("bad_check_character", e.code)
                assertFalse(e.message!!.contains(bad))
                assertFalse(e.message!!.contains("李四"))
            }
            assertEquals(0uL, grid.statusCounts().records)
            try {
                grid.call { it.getResident("no-such-id") }
                fail("found a resident that does not exist")
            } catch (e: FieldGridException.NotFound) {
                assertEquals("resident", e.entity)
            }
            grid.close()
        }

    @Test
    fun syncAgainstTheReferenceServerReportsProgressAndAnotherPhoneReceivesTheRecords() =
        runBlocking {
            val grid = phone("phone1.db")
            val r = grid.createResident(resident("赵六", 3))
            val incident =
                grid.reportIncident(
                    NewIncident(gridId = "grid-a", category = "neighbour_dispute", description = "噪音纠纷"),
                    listOf(NewPhoto(PhotoSource.Bytes(JPEG))),
                )
            val events = grid.syncWith(SyncSettings(serverUrl = TestServer.url)).use { it.run().toList() }
            val finished = events.last() as SyncEvent.Finished
            assertTrue(finished.report.confirmed >= 2uL)
            assertEquals(0uL, finished.report.rejected)
            assertEquals(1uL, finished.report.photosUploaded)
            val phases = events.filterIsInstance<SyncEvent.Progress>().map { it.progress.phase }.toSet()
            assertTrue("progress phases: $phases", phases.containsAll(listOf(SyncPhase.PUSH, SyncPhase.PULL)))
            assertEquals(SyncStatus.OnServer, grid.call { it.getResident(r.id) }.meta.sync)

            val other = phone("phone2.db", user = "wa2")
            val pulled = other.syncWith(SyncSettings(serverUrl = TestServer.url)).use { it.syncNow() }
            assertTrue(pulled.pulled >= 2uL)
            assertEquals("赵六", other.call { it.getResident(r.id) }.name)
            assertEquals(IncidentStatus.REPORTED, other.call { it.getIncident(incident.id) }.status)
            grid.close()
            other.close()
        }

    @Test
    fun anObservedListUpdatesWhenASyncBringsAnotherPhonesRecord() =
        runBlocking {
            val first = phone("observer-a.db")
            val second = phone("observer-b.db", user = "wa2")
            val query = ResidentQuery(gridId = "grid-a", name = "郑十")
            val seen = Channel<List<String>>(Channel.UNLIMITED)
            val watching =
                launch(Dispatchers.IO) {
                    second.observeResidents(query).collect { page -> seen.send(page.items.map { it.name }) }
                }
            assertEquals(emptyList<String>(), withTimeout(5_000) { seen.receive() })
            val r = first.createResident(resident("郑十", 8))
            first.syncWith(SyncSettings(serverUrl = TestServer.url)).use { it.syncNow() }
            second.syncWith(SyncSettings(serverUrl = TestServer.url)).use { it.syncNow() }
            // The list re-ran by itself once the pulled page was committed.
            assertEquals(listOf("郑十"), withTimeout(5_000) { seen.receive() })
            // A capture on this phone in another kind does not re-run it.
            second.reportIncident(NewIncident(gridId = "grid-a", category = "neighbour_dispute", description = "噪音"))
            delay(400)
            assertTrue("no re-run for an incident", seen.tryReceive().isFailure)
            watching.cancel()
            assertEquals(r.id, second.call { it.getResident(r.id) }.id)
            first.close()
            second.close()
        }

    @Test
    fun offlineSyncThrowsOfflineAndLosesNothing() =
        runBlocking {
            val grid = phone("phone.db")
            val r = grid.createResident(resident("孙七", 4))
            val dead = SyncSettings(serverUrl = "http://127.0.0.1:9", maxAttempts = 1u, requestTimeoutMs = 2000uL)
            try {
                grid.syncWith(dead).use { it.syncNow() }
                fail("synced with no server")
            } catch (e: FieldGridException.Offline) {
                assertNotNull(e.reason)
            }
            assertEquals(0uL, grid.statusCounts().onServer)
            grid.syncWith(SyncSettings(serverUrl = TestServer.url)).use { assertEquals(1uL, it.syncNow().confirmed) }
            assertEquals(SyncStatus.OnServer, grid.call { it.getResident(r.id) }.meta.sync)
            grid.close()
        }

    @Test
    fun logSinkReceivesTheCoresLinesWithoutPersonalData() =
        runBlocking {
            val lines = Collections.synchronizedList(mutableListOf<LogRecord>())
            FieldGridLog.install(LogLevel.TRACE) { lines.add(it) }
            val r: cn.fieldgrid.core.Resident
            val grid: FieldGrid
            try {
                grid = phone("phone.db")
                r = grid.createResident(resident("周八", 5))
                grid.syncWith(SyncSettings(serverUrl = TestServer.url)).use { it.syncNow() }
            } finally {
                FieldGridLog.remove()
            }
            val text = synchronized(lines) { lines.joinToString("\n") { "${it.target} ${it.message}" } }
            assertTrue(text, lines.any { it.message.startsWith("store opened") })
            assertTrue(lines.any { it.target.startsWith("fieldgrid_core::sync") })
            for (secret in listOf("周八", r.idNumber!!, r.idNumber!!.takeLast(6), r.phone!!)) {
                assertFalse("log shows personal data", text.contains(secret))
            }
            val count = lines.size
            grid.createResident(resident("吴九", 6))
            assertEquals("the sink was removed", count, lines.size)
            grid.close()
        }

    @Test
    fun eightThreadsOnOneStoreCompleteWithoutErrorOrCorruption() {
        val grid = phone("phone.db")
        val store: FieldGridStore = grid.store
        val perThread = 40
        val pool = Executors.newFixedThreadPool(8)
        val start = CountDownLatch(1)
        val errors = Collections.synchronizedList(mutableListOf<Throwable>())
        val created = Collections.synchronizedList(mutableListOf<String>())
        repeat(8) { t ->
            pool.execute {
                start.await()
                try {
                    repeat(perThread) { i ->
                        created.add(store.createResident(resident("线程${t}号$i", t * perThread + i)).id)
                        store.searchResidents(ResidentQuery(gridId = "grid-a"), PageRequest(limit = 20u))
                        store.dashboard("grid-a")
                    }
                } catch (e: Throwable) {
                    errors.add(e)
                }
            }
        }
        start.countDown()
        pool.shutdown()
        assertTrue(pool.awaitTermination(5, TimeUnit.MINUTES))
        assertEquals(listOf<Throwable>(), errors)
        assertEquals(8 * perThread, created.toSet().size)
        assertEquals((8 * perThread).toULong(), store.dashboard("grid-a").residents)
        grid.close()
        runBlocking {
            FieldGrid.open(File(dir, "phone.db").path, keys).use { again ->
                assertEquals((8 * perThread).toULong(), again.statusCounts().records)
                // Coroutines on the IO dispatcher, as an app would call it.
                val ids =
                    (0 until 8).map { t ->
                        async(Dispatchers.IO) { again.createResident(resident("协程$t", 400 + t)).id }
                    }.awaitAll()
                assertEquals(8, ids.toSet().size)
            }
        }
    }

    @Test
    fun cancellingTheCollectorStopsTheSyncAndLosesNothing() =
        runBlocking {
            val grid = phone("phone.db")
            val queued = grid.call { s -> s.importResidents((0 until 400).map { resident("取消$it", 100 + it) }) }.created.size
            assertEquals(400, queued)
            val sync = grid.syncWith(SyncSettings(serverUrl = TestServer.url, batchOperations = 2u))
            // `first` stops collecting after the first progress event: the flow is cancelled.
            assertTrue(sync.run().first() is SyncEvent.Progress)
            var rest: cn.fieldgrid.core.SyncReport? = null
            repeat(300) {
                if (rest == null) {
                    try {
                        rest = sync.syncNow()
                    } catch (_: FieldGridException.Conflict) {
                        delay(50) // the cancelled sync is finishing the store write under way
                    }
                }
            }
            val confirmed = rest!!.confirmed
            assertTrue("the first sync stopped part way: $confirmed", confirmed > 0uL && confirmed < queued.toULong())
            val counts = grid.statusCounts()
            assertEquals(counts.records, counts.onServer)
            assertEquals(0uL, counts.onlyOnDevice + counts.sending)
            sync.close()
            grid.close()
        }

    @Test
    fun wipeRefusesWhileWorkIsUnsyncedAndRemovesEverythingWhenForced() =
        runBlocking {
            val grid = phone("phone.db")
            grid.reportIncident(
                NewIncident(gridId = "grid-a", category = "neighbour_dispute", description = "x"),
                listOf(NewPhoto(PhotoSource.Bytes(JPEG))),
            )
            try {
                grid.wipe(force = false)
                fail("wiped unsynced work")
            } catch (e: FieldGridException.Conflict) {
                assertTrue(e.reason.contains("sync"))
            }
            assertEquals(1, grid.listIncidents().items.size)
            grid.wipe(force = true)
            assertFalse(File(dir, "phone.db").exists())
            try {
                grid.statusCounts()
                fail("a wiped store answered")
            } catch (_: FieldGridException.Conflict) {
            }
        }

    @Test
    fun signingOutEndsTheSession() =
        runBlocking {
            val grid = phone("phone.db")
            grid.syncWith(SyncSettings(serverUrl = TestServer.url)).use { sync ->
                sync.syncNow()
                sync.signOut()
                try {
                    sync.syncNow()
                    fail("synced after signing out")
                } catch (_: FieldGridException.AuthExpired) {
                }
            }
            grid.close()
        }

    @Test
    fun aRemoteWipeArrivingDuringSyncErasesTheStore() =
        runBlocking {
            val grid = phone("lost.db")
            grid.syncWith(SyncSettings(serverUrl = TestServer.url)).use { sync ->
                grid.createResident(resident("钱七", 41))
                sync.syncNow()
                TestServer.admin("wipe-device", "--username", "wa1", "--device", grid.call { it.deviceId() })
                grid.createResident(resident("孙八", 42))
                try {
                    sync.run().toList()
                    fail("the sync did not report the wipe")
                } catch (_: FieldGridException.Wiped) {
                }
            }
            assertFalse(File(dir, "lost.db").exists())
            try {
                grid.statusCounts()
                fail("a wiped store answered")
            } catch (_: FieldGridException.Conflict) {
            }
        }

    @Test
    fun switchingAccountsKeepsEachWorkersStoreAndSendsTheFirstOnesWork() =
        runBlocking {
            val stores = File(dir, "stores").also { it.mkdirs() }
            val first = FieldGrid.open(storePathForAccount(stores.path, "wa1"), keys)
            val firstSync = first.syncWith(SyncSettings(serverUrl = TestServer.url))
            firstSync.login("wa1", PASSWORD)
            val r = first.createResident(resident("周九", 43))
            // The next worker may not use the first one's store.
            try {
                firstSync.login("wa2", PASSWORD)
                fail("another account signed in to the first worker's store")
            } catch (_: FieldGridException.Conflict) {
            }
            val sent = firstSync.sendPending()
            assertEquals(1uL, sent.confirmed)
            assertEquals(0uL, sent.pulled)
            firstSync.close()
            first.wipe(force = false)
            val second = FieldGrid.open(storePathForAccount(stores.path, "wa2"), keys)
            second.syncWith(SyncSettings(serverUrl = TestServer.url)).use {
                it.login("wa2", PASSWORD)
                it.syncNow()
            }
            assertEquals("周九", second.call { it.getResident(r.id) }.name)
            val counts = second.statusCounts()
            assertEquals(0uL, counts.onlyOnDevice + counts.sending)
            second.close()
        }
}
