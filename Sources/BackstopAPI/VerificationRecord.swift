/// `verified.json`: the result of the latest verification of a backup. Lives beside the
/// manifest but outside the hash chain, because it is rewritten by every later verify.
public struct VerificationRecord: Codable, Equatable, Sendable {
    public static let fileName = "verified.json"

    public var backupID: BackupID
    public var verifiedAt: UTCTimestamp
    public var succeeded: Bool
    /// What was checked, in order, e.g. "sizes", "block hashes", "decryption", "pg_restore --list".
    public var checks: [String]
    /// Entries `pg_restore --list` found in the archive.
    public var archiveEntries: Int?
    /// The first problem, when `succeeded` is false.
    public var failure: String?
    public var toolVersion: String

    public init(backupID: BackupID, verifiedAt: UTCTimestamp, succeeded: Bool, checks: [String],
                archiveEntries: Int?, failure: String?, toolVersion: String) {
        self.backupID = backupID
        self.verifiedAt = verifiedAt
        self.succeeded = succeeded
        self.checks = checks
        self.archiveEntries = archiveEntries
        self.failure = failure
        self.toolVersion = toolVersion
    }
}
