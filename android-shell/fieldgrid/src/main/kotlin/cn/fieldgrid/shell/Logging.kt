package cn.fieldgrid.shell

import cn.fieldgrid.core.LogLevel
import cn.fieldgrid.core.LogRecord
import cn.fieldgrid.core.LogSink
import cn.fieldgrid.core.setLogSink

/** Routes FieldGrid's log lines (free of personal data) to the app's logger. */
object FieldGridLog {
    /**
     * Sends lines at [level] and above to [handler], replacing any handler set
     * before. The handler runs on the thread that logged: keep it quick, never throw.
     */
    fun install(
        level: LogLevel,
        handler: (LogRecord) -> Unit,
    ) {
        setLogSink(
            object : LogSink {
                override fun log(record: LogRecord) {
                    try {
                        handler(record)
                    } catch (_: Throwable) {
                        // A failing logger must not fail the call that logged.
                    }
                }
            },
            level,
        )
    }

    /** Stops logging. */
    fun remove() = setLogSink(null, LogLevel.ERROR)
}
