@preconcurrency import FieldGridCore
import Foundation

/// The app's handle on its FieldGrid store: the generated `FieldGridStore`
/// with its blocking calls moved off the caller's thread, as `async` functions.
///
/// Open one per signed-in worker and keep it for the life of the app. Safe
/// to use from any task or thread. Every call throws `FieldGridError` on
/// failure; `.Validation(field:code:reason:)` names the field to highlight.
public final class FieldGrid: @unchecked Sendable {
    /// The generated object, for calls this layer does not wrap. Its calls block: never on the main thread.
    public let store: FieldGridStore
    private let queue = DispatchQueue(label: "cn.fieldgrid.store", qos: .userInitiated, attributes: .concurrent)
    private let hub = ChangeHub()

    private init(store: FieldGridStore) {
        self.store = store
        store.setChangeListener(listener: hub)
    }

    deinit {
        store.setChangeListener(listener: nil)
    }

    /// A list that follows the data (like Kotlin's `Flow` from Room): `query`
    /// runs at once, and again whenever a change to one of `kinds` (in
    /// `gridId`, or any grid when `nil`) is committed, here or by a sync; at
    /// most once per `debounceMs`. Iterate it from the view's task; ending
    /// the iteration stops it.
    public func observe<T: Sendable>(
        kinds: Set<RecordKind>,
        gridId: String? = nil,
        debounceMs: UInt64 = 100,
        query: @escaping @Sendable (FieldGrid) async throws -> T
    ) -> AsyncThrowingStream<T, Error> {
        AsyncThrowingStream { continuation in
            let id = UUID()
            // Changes while a query runs or waits collapse into one re-run.
            let (signals, signal) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
            hub.add(id) { change in
                guard change.kinds.contains(where: { kinds.contains($0) }) else { return }
                if let gridId, !change.anyGrid, !change.grids.contains(gridId) { return }
                signal.yield(())
            }
            let task = Task { [weak self] in
                do {
                    guard let self else { return }
                    continuation.yield(try await query(self))
                    for await _ in signals {
                        try await Task.sleep(nanoseconds: debounceMs * 1_000_000)
                        continuation.yield(try await query(self))
                    }
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { [hub] _ in
                hub.remove(id)
                signal.finish()
                task.cancel()
            }
        }
    }

    /// Residents matching `query`, re-read when residents change.
    public func observeResidents(_ query: ResidentQuery, page: PageRequest = PageRequest()) -> AsyncThrowingStream<ResidentPage, Error> {
        observe(kinds: [.resident], gridId: query.gridId) { try await $0.searchResidents(query, page: page) }
    }

    /// Incidents matching `query`, re-read when incidents or their timelines change.
    public func observeIncidents(_ query: IncidentQuery = IncidentQuery(), page: PageRequest = PageRequest()) -> AsyncThrowingStream<IncidentPage, Error> {
        observe(kinds: [.incident, .incidentEvent], gridId: query.gridId) { try await $0.listIncidents(query, page: page) }
    }

    /// Opens (or creates) the store at `path`, encrypted with the key from
    /// `keys` (`nil`: unencrypted, for tests only).
    public static func open(path: String, keys: KeyProvider?) async throws -> FieldGrid {
        let key = try keys?.databaseKey()
        return try await Self.blocking(DispatchQueue.global(qos: .userInitiated)) {
            FieldGrid(store: try FieldGridStore.open(path: path, key: key))
        }
    }

    /// Runs any blocking store call off the caller's thread.
    public func call<T>(_ body: @escaping @Sendable (FieldGridStore) throws -> T) async throws -> T {
        let store = self.store
        return try await Self.blocking(queue) { try body(store) }
    }

    private static func blocking<T>(_ queue: DispatchQueue, _ body: @escaping () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try body() }) }
        }
    }

    public func grids() async throws -> [Grid] { try await call { try $0.grids() } }

    public func createResident(_ input: NewResident) async throws -> Resident {
        try await call { try $0.createResident(input: input) }
    }

    public func updateResident(id: String, changes: [ResidentChange]) async throws -> Resident {
        try await call { try $0.updateResident(id: id, changes: changes) }
    }

    public func searchResidents(_ query: ResidentQuery, page: PageRequest = PageRequest()) async throws -> ResidentPage {
        try await call { try $0.searchResidents(query: query, page: page) }
    }

    public func reportIncident(_ input: NewIncident, photos: [NewPhoto] = []) async throws -> Incident {
        try await call { try $0.reportIncident(input: input, photos: photos) }
    }

    public func listIncidents(_ query: IncidentQuery = IncidentQuery(), page: PageRequest = PageRequest()) async throws -> IncidentPage {
        try await call { try $0.listIncidents(query: query, page: page) }
    }

    public func createServiceLog(_ input: NewServiceLog) async throws -> ServiceLog {
        try await call { try $0.createServiceLog(input: input) }
    }

    public func dashboard(gridId: String) async throws -> Dashboard {
        try await call { try $0.dashboard(gridId: gridId) }
    }

    /// The care tags to offer on a resident's form: built-in, then the district's.
    public func careTags() async throws -> [Term] { try await call { try $0.careTags() } }

    /// The service kinds to offer on a service log's form: built-in, then the district's.
    public func serviceKinds() async throws -> [Term] { try await call { try $0.serviceKinds() } }

    /// The district's own fields on `kind`'s forms (retired ones left out), in the catalogue's order.
    public func formFields(kind: RecordKind) async throws -> [ChecklistItem] {
        try await call { try $0.formFields(kind: kind) }
    }

    /// Sets and clears values of the district's own fields of a record; returns the record's values.
    public func updateExtra(
        kind: RecordKind, id: String, set: [ItemAnswer], clear: [String] = []
    ) async throws -> [ItemAnswer] {
        try await call { try $0.updateExtra(kind: kind, id: id, set: set, clear: clear) }
    }

    /// Visits and phone check-ins not yet made in their period, overdue first, then by due date.
    public func dueVisits(gridId: String) async throws -> [DueVisit] {
        try await call { try $0.dueVisits(gridId: gridId) }
    }

    /// Records an inspection; failed items that raise an incident report one at once.
    public func recordInspection(_ input: NewInspection) async throws -> InspectionReport {
        try await call { try $0.recordInspection(input: input) }
    }

    public func statusCounts() async throws -> StatusCounts { try await call { try $0.statusCounts() } }

    /// Removes the store for good; `.Conflict` while work is unsynced unless `force`.
    public func wipe(force: Bool) async throws { try await call { try $0.wipe(force: force) } }

    /// A sync client for this store and server.
    public func syncWith(_ settings: SyncSettings) throws -> FieldGridSync {
        FieldGridSync(client: try SyncClient(store: store, settings: settings))
    }
}

/// What a running sync reports.
public enum SyncEvent: Sendable {
    /// A step finished.
    case progress(SyncProgress)
    /// The sync finished; the last element of the stream.
    case finished(SyncReport)
}

/// Sign-in and sync for one store. The network work runs on the library's threads.
public final class FieldGridSync: @unchecked Sendable {
    /// The generated client, for calls this layer does not wrap.
    public let client: SyncClient

    init(client: SyncClient) {
        self.client = client
    }

    /// Signs in; throws `.BadCredentials`, `.Offline`, `.ProtocolTooOld`.
    public func login(username: String, password: String) async throws -> Session {
        try await client.login(username: username, password: password)
    }

    /// Signs out: the server ends the session (when it can be reached) and
    /// this phone forgets it; captured data stays.
    public func signOut() async throws {
        try await client.signOut()
    }

    /// A handover: sends what this store holds under its account, receiving
    /// nothing, before another worker's store takes the phone. Then
    /// `FieldGrid.wipe(force: false)` removes the store.
    public func sendPending() async throws -> SyncReport {
        try await client.sendPending()
    }

    /// One sync as an `AsyncThrowingStream`: iterating starts it; it yields
    /// `.progress` after each step and `.finished` last. Cancelling the
    /// iterating task stops the sync at once (a request in flight is
    /// abandoned; what was committed stays). Errors end the stream: `.AuthExpired` (sign in again),
    /// `.Offline` (try later), `.Wiped` (the district had this phone wiped:
    /// the store is gone; delete its key from the Keychain and show the
    /// sign-in screen).
    public func run() -> AsyncThrowingStream<SyncEvent, Error> {
        AsyncThrowingStream { continuation in
            let listener = StreamListener(continuation)
            let task = Task {
                do {
                    let report = try await client.sync(listener: listener)
                    continuation.yield(.finished(report))
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { [client] _ in
                client.cancel()
                task.cancel()
            }
        }
    }

    /// Stops a running sync at once (it throws `.Cancelled`); what was committed stays.
    public func cancel() { client.cancel() }
}

private final class StreamListener: SyncListener, @unchecked Sendable {
    private let continuation: AsyncThrowingStream<SyncEvent, Error>.Continuation

    init(_ continuation: AsyncThrowingStream<SyncEvent, Error>.Continuation) {
        self.continuation = continuation
    }

    func onProgress(progress: SyncProgress) {
        continuation.yield(.progress(progress))
    }
}

/// Fans the store's one change listener out to every observed list.
private final class ChangeHub: ChangeListener, @unchecked Sendable {
    private let lock = NSLock()
    private var subscribers: [UUID: (DataChange) -> Void] = [:]

    func onChange(change: DataChange) {
        lock.lock()
        let targets = Array(subscribers.values)
        lock.unlock()
        for target in targets {
            target(change)
        }
    }

    func add(_ id: UUID, _ target: @escaping (DataChange) -> Void) {
        lock.lock()
        subscribers[id] = target
        lock.unlock()
    }

    func remove(_ id: UUID) {
        lock.lock()
        subscribers[id] = nil
        lock.unlock()
    }
}
