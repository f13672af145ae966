/// `holds/<id>.json`: a backup retention must never delete, until released.
public struct BackupHold: Codable, Equatable, Sendable {
    public var backupID: BackupID
    public var heldAt: UTCTimestamp
    public var reason: String?

    public init(backupID: BackupID, heldAt: UTCTimestamp, reason: String?) {
        self.backupID = backupID
        self.heldAt = heldAt
        self.reason = reason
    }
}

/// `prunes/<time>-<run>.json`: what one prune deleted, written before it deletes anything, so
/// `verify --chain` can tell a predecessor pruned by retention from one that went missing.
public struct PruneRecord: Codable, Equatable, Sendable {
    public struct Deleted: Codable, Equatable, Sendable {
        public var backupID: BackupID
        /// SHA-256 of the deleted manifest's stored bytes: what its successor's
        /// `previousManifestSHA256` names.
        public var manifestSHA256: String
        public var reasons: [String]

        public init(backupID: BackupID, manifestSHA256: String, reasons: [String]) {
            self.backupID = backupID
            self.manifestSHA256 = manifestSHA256
            self.reasons = reasons
        }
    }

    public var prunedAt: UTCTimestamp
    /// Tells apart two prunes in the same second.
    public var runID: String
    /// The rules, as `--keep-*` would write them.
    public var retention: String
    public var deleted: [Deleted]
    public var toolVersion: String

    public init(prunedAt: UTCTimestamp, runID: String, retention: String, deleted: [Deleted], toolVersion: String) {
        self.prunedAt = prunedAt
        self.runID = runID
        self.retention = retention
        self.deleted = deleted
        self.toolVersion = toolVersion
    }
}

extension RetentionPolicy {
    /// The rules as flags, e.g. `--keep-within 30d --keep-daily 7 --min-age 1h --time-zone Etc/UTC`.
    public var summary: String {
        var parts: [String] = []
        if let within = keep.within { parts.append("--keep-within \(within)") }
        for (name, value) in [("last", keep.last), ("hourly", keep.hourly), ("daily", keep.daily), ("weekly", keep.weekly),
                              ("monthly", keep.monthly), ("yearly", keep.yearly)] {
            if let value, value != 0 { parts.append("--keep-\(name) \(value < 0 ? "unlimited" : String(value))") }
        }
        parts.append("--min-age \(minAge)")
        parts.append("--time-zone \(timeZone)")
        return parts.joined(separator: " ")
    }
}

/// `drills/<time>-<run>.json`: one restore drill — the backup restored into a scratch database,
/// its schema and row counts compared with the backup, the database dropped — and how long the
/// restore took, the RTO evidence `backstop doctor` and the controller read.
public struct DrillRecord: Codable, Equatable, Sendable {
    public enum Outcome: String, Codable, Sendable {
        case succeeded = "Succeeded"
        case failed = "Failed"
    }

    public var backupID: BackupID
    public var startedAt: UTCTimestamp
    public var completedAt: UTCTimestamp
    /// Tells apart two drills in the same second.
    public var runID: String
    /// Seconds the restore itself took (pg_restore and the row counts), the measured RTO.
    public var restoreSeconds: Double?
    public var outcome: Outcome
    /// What was proven, or why it failed.
    public var message: String
    public var tablesChecked: Int?
    /// Whether the restored schema equals the archive's (owners and privileges ignored); nil
    /// when it was not compared.
    public var schemaMatches: Bool?
    public var toolVersion: String

    /// `2.5`, `0.125`, `12`: a restore time as a decimal, to the millisecond.
    public static func seconds(_ value: Double) -> String {
        var text = String(Double((value * 1000).rounded()) / 1000)
        if text.hasSuffix(".0") { text.removeLast(2) }
        return text
    }

    public init(backupID: BackupID, startedAt: UTCTimestamp, completedAt: UTCTimestamp, runID: String, restoreSeconds: Double?,
                outcome: Outcome, message: String, tablesChecked: Int?, schemaMatches: Bool?, toolVersion: String) {
        self.backupID = backupID
        self.startedAt = startedAt
        self.completedAt = completedAt
        self.runID = runID
        self.restoreSeconds = restoreSeconds
        self.outcome = outcome
        self.message = message
        self.tablesChecked = tablesChecked
        self.schemaMatches = schemaMatches
        self.toolVersion = toolVersion
    }
}
