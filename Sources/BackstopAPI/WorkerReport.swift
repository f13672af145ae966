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

    /// What the retention pass after a backup did. Its failure is reported here and never
    /// turns a committed, verified backup into a failed one: a failed Job would run the
    /// whole backup again.
    public struct Prune: Codable, Equatable, Sendable {
        public var outcome: Outcome
        public var deleted: Int
        public var kept: Int
        /// Why it failed, or a short note (damaged backups left alone, leftovers removed).
        public var message: String?

        public init(outcome: Outcome, deleted: Int, kept: Int, message: String? = nil) {
            self.outcome = outcome
            self.deleted = deleted
            self.kept = kept
            self.message = message
        }
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
    /// A restore's: tables whose row counts were compared with the manifest.
    public var tablesChecked: Int?
    /// A drill's: seconds the restore itself took (the measured RTO).
    public var restoreSeconds: Double?
    /// A backup's: the major version of the server dumped (what a drill's scratch server runs).
    public var serverMajorVersion: Int?
    /// Why it failed, one line; or a short note on success.
    public var message: String?
    /// The prune after a backup (`backup --keep-*`), when one ran.
    public var prune: Prune?
    /// `wal-status`: how the environment's WAL archiving stands.
    public var walArchiving: WALArchiving?

    /// The newest archived WAL file and, when the server answered, `pg_stat_archiver`.
    public struct WALArchiving: Codable, Sendable, Equatable {
        public var lastArchivedAt: UTCTimestamp?
        public var lastArchivedFile: String?
        /// pg_stat_archiver's failed_count (since the server's statistics were last reset).
        public var failedCount: Int64?
        /// The last attempt failed: archive_command is failing now.
        public var failing: Bool?
        public var lastFailedFile: String?
        /// Why the server could not be asked, when it could not.
        public var serverProblem: String?

        public init(lastArchivedAt: UTCTimestamp? = nil, lastArchivedFile: String? = nil, failedCount: Int64? = nil, failing: Bool? = nil,
                    lastFailedFile: String? = nil, serverProblem: String? = nil) {
            self.lastArchivedAt = lastArchivedAt
            self.lastArchivedFile = lastArchivedFile
            self.failedCount = failedCount
            self.failing = failing
            self.lastFailedFile = lastFailedFile
            self.serverProblem = serverProblem
        }
    }

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

    /// One line of JSON within `maximumEncodedSize`; over-long messages are shortened, the
    /// longer of the report's and the prune's first.
    public func encodedLine() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var report = self
        while true {
            // Encoding plain strings, numbers and optionals cannot fail.
            let data = (try? encoder.encode(report)) ?? Data("{}".utf8)
            let main = report.message?.count ?? 0, prune = report.prune?.message?.count ?? 0
            guard data.count > Self.maximumEncodedSize, max(main, prune) > 1 else {
                return String(decoding: data, as: UTF8.self)
            }
            let excess = data.count - Self.maximumEncodedSize
            if main >= prune {
                report.message = Self.shortened(report.message ?? "", by: excess)
            } else {
                let shorter = Self.shortened(report.prune?.message ?? "", by: excess)
                report.prune?.message = shorter
            }
        }
    }

    private static func shortened(_ text: String, by excess: Int) -> String {
        String(text.prefix(max(0, text.count - excess - 16))) + "…"
    }
}
