import Foundation

/// The worker's last word: one JSON line on stdout and, when `BACKSTOP_REPORT_PATH` is set,
/// the pod's termination message. The controller reads it to write the policy status, so it
/// must stay under Kubernetes' 4 KiB termination-message limit.
public struct WorkerReport: Codable, Equatable, Sendable {
    public static let maximumEncodedSize = 4096

    public enum Outcome: String, Codable, Sendable {
        case succeeded
        case failed
    }

    public var command: String
    public var outcome: Outcome
    public var backupID: BackupID?
    public var startedAt: UTCTimestamp
    public var completedAt: UTCTimestamp
    public var durationSeconds: Double
    /// Stored bytes (compressed and encrypted).
    public var storedBytes: Int64?
    /// pg_dump output bytes.
    public var dumpBytes: Int64?
    public var verified: Bool?
    /// Why it failed, one line; or a short note on success.
    public var message: String?

    public init(command: String, outcome: Outcome, backupID: BackupID? = nil, startedAt: UTCTimestamp,
                completedAt: UTCTimestamp, durationSeconds: Double, storedBytes: Int64? = nil,
                dumpBytes: Int64? = nil, verified: Bool? = nil, message: String? = nil) {
        self.command = command
        self.outcome = outcome
        self.backupID = backupID
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.durationSeconds = durationSeconds
        self.storedBytes = storedBytes
        self.dumpBytes = dumpBytes
        self.verified = verified
        self.message = message
    }

    /// One line of JSON within `maximumEncodedSize`; an over-long message is shortened.
    public func encodedLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var report = self
        while true {
            // Encoding plain strings, numbers and optionals cannot fail.
            let data = (try? encoder.encode(report)) ?? Data("{}".utf8)
            if data.count <= Self.maximumEncodedSize || (report.message ?? "").isEmpty {
                return String(decoding: data, as: UTF8.self)
            }
            let message = report.message ?? ""
            report.message = String(message.prefix(max(0, message.count - (data.count - Self.maximumEncodedSize) - 16))) + "…"
        }
    }
}
