@preconcurrency import FieldGridCore
import os

// Masked forms for lists, notifications and anything that might be logged.
// The generated records print every field, personal data included: never
// log a record; log ids or these forms.
public extension Resident {
    /// `张*明`.
    var maskedName: String { FieldGridCore.maskName(name: name) }
    /// `370502********1234`, or empty.
    var maskedIdNumber: String { idNumber.map { FieldGridCore.maskIdNumber(idNumber: $0) } ?? "" }
    /// `138****5678`, or empty.
    var maskedPhone: String { phone.map { FieldGridCore.maskPhone(phone: $0) } ?? "" }
    /// A one-line label safe to show in a list.
    var safeLabel: String { [maskedName, maskedPhone].filter { !$0.isEmpty }.joined(separator: " · ") }
}

/// FieldGrid's log lines (free of personal data) to the unified log.
public enum FieldGridLog {
    private final class OSLogSink: LogSink, @unchecked Sendable {
        let logger = Logger(subsystem: "cn.fieldgrid", category: "core")
        func log(record: LogRecord) {
            let type: OSLogType
            switch record.level {
            case .error: type = .error
            case .warn: type = .default
            case .info: type = .info
            case .debug, .trace: type = .debug
            }
            logger.log(level: type, "\(record.target, privacy: .public): \(record.message, privacy: .public)")
        }
    }

    /// Sends lines at `level` and above to the unified log.
    public static func install(level: LogLevel = .info) { setLogSink(sink: OSLogSink(), level: level) }

    /// Stops logging.
    public static func remove() { setLogSink(sink: nil, level: .error) }
}
