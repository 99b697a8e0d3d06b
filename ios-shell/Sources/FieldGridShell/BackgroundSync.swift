#if canImport(BackgroundTasks)
import BackgroundTasks
@preconcurrency import FieldGridCore
import Foundation

/// Background sync with `BGTaskScheduler`. Add `identifier` to the app's
/// `BGTaskSchedulerPermittedIdentifiers` in Info.plist, enable the
/// "Background processing" mode, call `register` before the app finishes
/// launching and `schedule` after each capture and when entering the background.
public enum FieldGridBackgroundSync {
    public static let identifier = "cn.fieldgrid.sync"

    /// Registers the handler. `fieldGrid` returns the app's open store,
    /// `settings` the district server; `onSignInNeeded` is called when the
    /// session expired (post a notification).
    public static func register(
        fieldGrid: @escaping @Sendable () async throws -> FieldGrid,
        settings: @escaping @Sendable () -> SyncSettings,
        onSignInNeeded: @escaping @Sendable () -> Void = {}
    ) {
        BGTaskScheduler.shared.register(forTaskWithIdentifier: identifier, using: nil) { task in
            schedule() // the next one
            let work = Task {
                do {
                    let sync = try await fieldGrid().syncWith(settings())
                    for try await _ in sync.run() {}
                    // A cancelled stream ends without an error: not a success.
                    task.setTaskCompleted(success: !Task.isCancelled)
                } catch FieldGridError.AuthExpired {
                    onSignInNeeded()
                    task.setTaskCompleted(success: false)
                } catch {
                    task.setTaskCompleted(success: false)
                }
            }
            // Cancelling the work ends the stream, which stops the sync at once (a request in flight is abandoned; what was committed stays).
            task.expirationHandler = { work.cancel() }
        }
    }

    /// Asks iOS to run a sync when there is a network, no sooner than `after`
    /// seconds. iOS decides when: processing tasks tend to run when the phone
    /// is idle (often on charge, overnight), and each call replaces the pending
    /// request. Sync from the app as well while it is in the foreground.
    public static func schedule(after seconds: TimeInterval = 15 * 60) {
        let request = BGProcessingTaskRequest(identifier: identifier)
        request.requiresNetworkConnectivity = true
        request.earliestBeginDate = Date(timeIntervalSinceNow: seconds)
        try? BGTaskScheduler.shared.submit(request)
    }
}
#endif
