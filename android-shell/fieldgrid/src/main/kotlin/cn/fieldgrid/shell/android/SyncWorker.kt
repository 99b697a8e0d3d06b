package cn.fieldgrid.shell.android

import android.content.Context
import android.util.Log
import androidx.work.BackoffPolicy
import androidx.work.Constraints
import androidx.work.CoroutineWorker
import androidx.work.ExistingPeriodicWorkPolicy
import androidx.work.ExistingWorkPolicy
import androidx.work.NetworkType
import androidx.work.OneTimeWorkRequestBuilder
import androidx.work.PeriodicWorkRequestBuilder
import androidx.work.WorkManager
import androidx.work.WorkerParameters
import cn.fieldgrid.core.FieldGridException
import cn.fieldgrid.core.LogLevel
import cn.fieldgrid.core.SyncSettings
import cn.fieldgrid.shell.FieldGrid
import cn.fieldgrid.shell.FieldGridLog
import java.util.concurrent.TimeUnit

/**
 * Implemented by the app's `Application`: the one open store of the process
 * and where to sync it. The worker uses the same [FieldGrid] as the UI, so
 * there is one sync at a time.
 */
interface FieldGridHost {
    /** The open store (opened once, with [AndroidKeys.provider]). */
    suspend fun fieldGrid(): FieldGrid

    /** The district server. */
    fun syncSettings(): SyncSettings

    /** The session expired: ask the worker to sign in (a notification). */
    fun onSignInNeeded() {}
}

/** Syncs in the background: when the network comes back, and every hour. */
class SyncWorker(
    context: Context,
    params: WorkerParameters,
) : CoroutineWorker(context, params) {
    override suspend fun doWork(): Result {
        val host = applicationContext as FieldGridHost
        return try {
            host.fieldGrid().syncWith(host.syncSettings()).use { it.syncNow() }
            Result.success()
        } catch (e: FieldGridException.Offline) {
            Result.retry()
        } catch (e: FieldGridException.AuthExpired) {
            host.onSignInNeeded()
            Result.failure()
        } catch (e: FieldGridException.Conflict) {
            Result.retry() // a sync started by the UI is running
        } catch (e: FieldGridException) {
            Log.w(TAG, "background sync failed: ${e.javaClass.simpleName}")
            Result.failure()
        }
    }

    companion object {
        private const val TAG = "FieldGrid"
        private const val PERIODIC = "fieldgrid-sync-periodic"
        private const val ON_NETWORK = "fieldgrid-sync-on-network"

        private val connected = Constraints.Builder().setRequiredNetworkType(NetworkType.CONNECTED).build()

        /** Call once at start-up: hourly syncs while connected. */
        fun schedule(context: Context) {
            val periodic =
                PeriodicWorkRequestBuilder<SyncWorker>(1, TimeUnit.HOURS)
                    .setConstraints(connected)
                    .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 1, TimeUnit.MINUTES)
                    .build()
            WorkManager.getInstance(context).enqueueUniquePeriodicWork(PERIODIC, ExistingPeriodicWorkPolicy.KEEP, periodic)
        }

        /** Call after each capture: syncs as soon as there is a network (now, if there is one). */
        fun syncWhenConnected(context: Context) {
            val once =
                OneTimeWorkRequestBuilder<SyncWorker>()
                    .setConstraints(connected)
                    .setBackoffCriteria(BackoffPolicy.EXPONENTIAL, 30, TimeUnit.SECONDS)
                    .build()
            // Append: a capture must not cancel a sync that is already running.
            WorkManager.getInstance(context).enqueueUniqueWork(ON_NETWORK, ExistingWorkPolicy.APPEND_OR_REPLACE, once)
        }

        /** FieldGrid's log lines (no personal data in them) to Logcat. */
        fun logToLogcat(level: LogLevel = LogLevel.INFO) {
            FieldGridLog.install(level) { r ->
                val priority =
                    when (r.level) {
                        LogLevel.ERROR -> Log.ERROR
                        LogLevel.WARN -> Log.WARN
                        LogLevel.INFO -> Log.INFO
                        LogLevel.DEBUG -> Log.DEBUG
                        LogLevel.TRACE -> Log.VERBOSE
                    }
                Log.println(priority, TAG, "${r.target}: ${r.message}")
            }
        }
    }
}
