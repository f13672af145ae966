/// Where an environment's backups live under the storage root (DESIGN §4):
/// `<namespace>/<policy>/<environment>/backups/<id>/…`. Every listing and deletion is
/// confined to `environmentPrefix`, so no command ever touches another environment.
public struct BackupLocation: Equatable, Sendable {
    public let namespace: String
    public let policy: String
    public let environment: String

    public init(namespace: String, policy: String, environment: String) throws(BackstopAPIError) {
        try Self.checkName(namespace, field: "namespace")
        try Self.checkName(policy, field: "policy")
        try Self.checkName(environment, field: "environment")
        self.namespace = namespace
        self.policy = policy
        self.environment = environment
    }

    /// `ns/policy/env/` — always ends with a slash so `prod` never matches `production`.
    public var environmentPrefix: String { "\(namespace)/\(policy)/\(environment)/" }
    public var backupsPrefix: String { environmentPrefix + "backups/" }

    public func backupPrefix(_ id: BackupID) -> String { backupsPrefix + id.rawValue + "/" }
    public func manifestKey(_ id: BackupID) -> String { backupPrefix(id) + BackupManifest.fileName }
    public func verificationKey(_ id: BackupID) -> String { backupPrefix(id) + VerificationRecord.fileName }
    public func objectKey(_ id: BackupID, name: String) -> String { backupPrefix(id) + name }

    public var holdsPrefix: String { environmentPrefix + "holds/" }
    public func holdKey(_ id: BackupID) -> String { holdsPrefix + id.rawValue + ".json" }
    public var prunesPrefix: String { environmentPrefix + "prunes/" }
    /// Read leases of running restores (and drills): each names the backup it reads.
    public var readsPrefix: String { environmentPrefix + "reads/" }
    /// The WAL archive: `wal/<timeline>/<file>` (segments, `.history`, `.backup` and
    /// `.partial` files), each with its record `<file>.json` beside it.
    public var walPrefix: String { environmentPrefix + "wal/" }
    public func walObjectKey(_ file: WALFileName) -> String { walPrefix + file.timeline + "/" + file.rawValue }
    public func walRecordKey(_ file: WALFileName) -> String { walObjectKey(file) + ".json" }
    /// Restore drills' results, `drills/<time>-<run>.json`: readable without the cluster.
    public var drillsPrefix: String { environmentPrefix + "drills/" }
    public func drillRecordKey(_ record: DrillRecord) -> String {
        drillsPrefix + record.startedAt.description.filter { $0 != "-" && $0 != ":" } + "-" + record.runID + ".json"
    }
    public func pruneRecordKey(_ record: PruneRecord) -> String {
        prunesPrefix + record.prunedAt.description.filter { $0 != "-" && $0 != ":" } + "-" + record.runID + ".json"
    }

    /// Kubernetes names (RFC 1123 labels): they become path segments, so nothing else is allowed.
    static func checkName(_ value: String, field: String) throws(BackstopAPIError) {
        let bytes = Array(value.utf8)
        let allowed = bytes.allSatisfy { ($0 >= 0x61 && $0 <= 0x7A) || ($0 >= 0x30 && $0 <= 0x39) || $0 == 0x2D }
        guard !bytes.isEmpty, bytes.count <= 63, allowed, bytes.first != 0x2D, bytes.last != 0x2D else {
            throw BackstopAPIError(
                field: field, problem: "\"\(value)\" is not a valid name",
                fix: "use 1-63 lowercase letters, digits and '-', starting and ending with a letter or digit")
        }
    }
}
