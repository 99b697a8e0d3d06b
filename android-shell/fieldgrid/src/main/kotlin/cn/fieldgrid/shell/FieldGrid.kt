package cn.fieldgrid.shell

import cn.fieldgrid.core.ChangeListener
import cn.fieldgrid.core.ChecklistItem
import cn.fieldgrid.core.Dashboard
import cn.fieldgrid.core.DataChange
import cn.fieldgrid.core.DueVisit
import cn.fieldgrid.core.FieldGridStore
import cn.fieldgrid.core.Grid
import cn.fieldgrid.core.Incident
import cn.fieldgrid.core.IncidentPage
import cn.fieldgrid.core.IncidentQuery
import cn.fieldgrid.core.InspectionReport
import cn.fieldgrid.core.ItemAnswer
import cn.fieldgrid.core.NewIncident
import cn.fieldgrid.core.NewInspection
import cn.fieldgrid.core.NewPhoto
import cn.fieldgrid.core.NewResident
import cn.fieldgrid.core.NewServiceLog
import cn.fieldgrid.core.PageRequest
import cn.fieldgrid.core.RecordKind
import cn.fieldgrid.core.Resident
import cn.fieldgrid.core.ResidentChange
import cn.fieldgrid.core.ResidentPage
import cn.fieldgrid.core.ResidentQuery
import cn.fieldgrid.core.ServiceLog
import cn.fieldgrid.core.Session
import cn.fieldgrid.core.StatusCounts
import cn.fieldgrid.core.SyncClient
import cn.fieldgrid.core.SyncListener
import cn.fieldgrid.core.SyncProgress
import cn.fieldgrid.core.SyncReport
import cn.fieldgrid.core.Term
import cn.fieldgrid.core.SyncSettings
import kotlinx.coroutines.CoroutineDispatcher
import kotlinx.coroutines.Dispatchers
import kotlinx.coroutines.FlowPreview
import kotlinx.coroutines.channels.BufferOverflow
import kotlinx.coroutines.channels.Channel
import kotlinx.coroutines.flow.Flow
import kotlinx.coroutines.flow.MutableSharedFlow
import kotlinx.coroutines.flow.buffer
import kotlinx.coroutines.flow.channelFlow
import kotlinx.coroutines.flow.debounce
import kotlinx.coroutines.flow.filter
import kotlinx.coroutines.flow.map
import kotlinx.coroutines.flow.onStart
import kotlinx.coroutines.withContext

/**
 * The app's handle on its FieldGrid store: the generated [FieldGridStore]
 * with its blocking calls moved onto [io], as suspend functions.
 *
 * Open one per signed-in worker and keep it for the life of the process
 * (an `Application` field). Safe to call from any coroutine or thread.
 * Every call throws [cn.fieldgrid.core.FieldGridException] on failure;
 * a `Validation` names the field to highlight.
 */
class FieldGrid private constructor(
    /** The generated object, for calls this layer does not wrap. Its calls block: never on the main thread. */
    val store: FieldGridStore,
    private val io: CoroutineDispatcher,
) : AutoCloseable {
    companion object {
        /**
         * Opens (or creates) the store at [path], encrypted with the key from
         * [keys] (`null`: unencrypted, for tests only). The key bytes are
         * cleared from memory once the store has them.
         */
        suspend fun open(
            path: String,
            keys: KeyProvider?,
            io: CoroutineDispatcher = Dispatchers.IO,
        ): FieldGrid =
            withContext(io) {
                val key = keys?.databaseKey()
                try {
                    FieldGrid(FieldGridStore.open(path, key), io)
                } finally {
                    key?.fill(0)
                }
            }
    }

    /**
     * Every change committed to this store (captures here, pages a sync
     * brought): kinds of record and grids, never content. Busy moments drop
     * the oldest; [observe] only needs to know that something changed.
     */
    val changes = MutableSharedFlow<DataChange>(extraBufferCapacity = 64, onBufferOverflow = BufferOverflow.DROP_OLDEST)

    init {
        store.setChangeListener(
            object : ChangeListener {
                override fun onChange(change: DataChange) {
                    changes.tryEmit(change)
                }
            },
        )
    }

    /**
     * A list that follows the data, like Room's `Flow<List<T>>`: [query] runs
     * at once, and again whenever a change to one of [kinds] (in [gridId],
     * or any grid when `null`) is committed, at most once per [debounceMs].
     * Collect it from the screen's lifecycle scope; it runs [query] on [io].
     */
    @OptIn(FlowPreview::class)
    fun <T> observe(
        kinds: Set<RecordKind>,
        gridId: String? = null,
        debounceMs: Long = 100,
        query: suspend FieldGrid.() -> T,
    ): Flow<T> =
        changes
            .filter { c -> c.kinds.any { it in kinds } && (gridId == null || c.anyGrid || gridId in c.grids) }
            .map { }
            .onStart { emit(Unit) }
            .debounce(debounceMs)
            .map { withContext(io) { query() } }

    /** Residents matching [query], re-read when residents change. */
    fun observeResidents(
        query: ResidentQuery,
        page: PageRequest = PageRequest(),
    ): Flow<ResidentPage> = observe(setOf(RecordKind.RESIDENT), query.gridId) { searchResidents(query, page) }

    /** Incidents matching [query], re-read when incidents or their timelines change. */
    fun observeIncidents(
        query: IncidentQuery = IncidentQuery(),
        page: PageRequest = PageRequest(),
    ): Flow<IncidentPage> =
        observe(setOf(RecordKind.INCIDENT, RecordKind.INCIDENT_EVENT), query.gridId) { listIncidents(query, page) }

    /** A grid's dashboard, re-read when anything in it changes. */
    fun observeDashboard(gridId: String): Flow<Dashboard> = observe(RecordKind.entries.toSet(), gridId) { dashboard(gridId) }

    /** Runs any blocking store call on the IO dispatcher. */
    suspend fun <T> call(block: (FieldGridStore) -> T): T = withContext(io) { block(store) }

    suspend fun grids(): List<Grid> = call { it.grids() }

    suspend fun createResident(input: NewResident): Resident = call { it.createResident(input) }

    suspend fun updateResident(
        id: String,
        changes: List<ResidentChange>,
    ): Resident = call { it.updateResident(id, changes) }

    suspend fun searchResidents(
        query: ResidentQuery,
        page: PageRequest = PageRequest(),
    ): ResidentPage = call { it.searchResidents(query, page) }

    suspend fun reportIncident(
        input: NewIncident,
        photos: List<NewPhoto> = emptyList(),
    ): Incident = call { it.reportIncident(input, photos) }

    suspend fun listIncidents(
        query: IncidentQuery = IncidentQuery(),
        page: PageRequest = PageRequest(),
    ): IncidentPage = call { it.listIncidents(query, page) }

    suspend fun createServiceLog(input: NewServiceLog): ServiceLog = call { it.createServiceLog(input) }

    /** Records an inspection; failed items that raise an incident report one at once. */
    suspend fun recordInspection(input: NewInspection): InspectionReport = call { it.recordInspection(input) }

    suspend fun dashboard(gridId: String): Dashboard = call { it.dashboard(gridId) }

    /** The care tags to offer on a resident's form: built-in, then the district's. */
    suspend fun careTags(): List<Term> = call { it.careTags() }

    /** The service kinds to offer on a service log's form: built-in, then the district's. */
    suspend fun serviceKinds(): List<Term> = call { it.serviceKinds() }

    /** The district's own fields on [kind]'s forms (retired ones left out), in the catalogue's order. */
    suspend fun formFields(kind: RecordKind): List<ChecklistItem> = call { it.formFields(kind) }

    /** Sets and clears values of the district's own fields of a record; returns the record's values. */
    suspend fun updateExtra(
        kind: RecordKind,
        id: String,
        set: List<ItemAnswer>,
        clear: List<String> = emptyList(),
    ): List<ItemAnswer> = call { it.updateExtra(kind, id, set, clear) }

    /** Visits and phone check-ins not yet made in their period, overdue first, then by due date. */
    suspend fun dueVisits(gridId: String): List<DueVisit> = call { it.dueVisits(gridId) }

    suspend fun statusCounts(): StatusCounts = call { it.statusCounts() }

    /** Removes the store for good; refused (`Conflict`) while work is unsynced unless [force]. */
    suspend fun wipe(force: Boolean) = call { it.wipe(force) }

    /** A sync client for this store and server. */
    fun syncWith(settings: SyncSettings): FieldGridSync = FieldGridSync(SyncClient(store, settings))

    /** Closes the database file and releases the native object. */
    override fun close() {
        store.setChangeListener(null)
        store.closeStore()
        store.close()
    }
}

/** What a running sync reports. */
sealed class SyncEvent {
    /** A step finished. */
    data class Progress(val progress: SyncProgress) : SyncEvent()

    /** The sync finished; the last event of the flow. */
    data class Finished(val report: SyncReport) : SyncEvent()
}

/**
 * Sign-in and sync for one store. The network work runs on the library's
 * own threads; these functions only suspend.
 */
class FieldGridSync internal constructor(
    /** The generated client, for calls this layer does not wrap. */
    val client: SyncClient,
) : AutoCloseable {
    /** Signs in; throws `BadCredentials`, `Offline`, `ProtocolTooOld`. */
    suspend fun login(
        username: String,
        password: String,
    ): Session = client.login(username, password)

    /**
     * Signs out: the server ends the session (when it can be reached) and
     * this phone forgets it; captured data stays.
     */
    suspend fun signOut() = client.signOut()

    /** Forgets the session on this phone only (the server is not told). */
    suspend fun logout() = withContext(Dispatchers.IO) { client.logout() }

    /**
     * A handover: sends what this store holds under its account, receiving
     * nothing, before another worker's store takes the phone. Then
     * `FieldGrid.wipe(force = false)` removes the store (refused while
     * anything could not be sent).
     */
    suspend fun sendPending(): SyncReport = client.sendPending()

    /**
     * One sync as a cold [Flow]: collecting it starts the sync, which emits
     * [SyncEvent.Progress] after each step and [SyncEvent.Finished] last.
     * Cancelling the collector stops the sync at once: a request in flight
     * is abandoned, and what was committed stays. Failures are thrown from `collect`:
     * `AuthExpired` (sign in again), `Offline` (try later), `Wiped` (the
     * district had this phone wiped: the store is gone; delete its key with
     * the key provider and show the sign-in screen), ...
     * Progress events may be skipped when the collector is slow; the
     * finished event never is.
     */
    fun run(): Flow<SyncEvent> =
        channelFlow {
            val listener =
                object : SyncListener {
                    override fun onProgress(progress: SyncProgress) {
                        trySend(SyncEvent.Progress(progress))
                    }
                }
            val report = client.sync(listener)
            send(SyncEvent.Finished(report))
        }.buffer(Channel.BUFFERED)

    /** One sync, reporting progress to [onProgress] (on a library thread). */
    suspend fun syncNow(onProgress: (SyncProgress) -> Unit = {}): SyncReport =
        client.sync(
            object : SyncListener {
                override fun onProgress(progress: SyncProgress) = onProgress(progress)
            },
        )

    /** Stops a running sync at once (it throws `Cancelled`); what was committed stays. */
    fun cancel() = client.cancel()

    override fun close() = client.close()
}
