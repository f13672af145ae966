internal import Foundation
public import KubeObjects

/// `BackupRestore` (`backstop.dev/v1alpha1`): one restore of one environment's backup, run in
/// the cluster as one Job. The CRD in `k8s/crds/backuprestore.yaml` carries the same rules
/// for the API server; `resolve(against:)` applies the defaults and names the first wrong
/// field and the fix.
public struct BackupRestore: Codable, Sendable, Equatable {
    public static let apiVersion = "backstop.dev/v1alpha1"
    public static let kind = "BackupRestore"

    public enum Mode: String, Codable, Sendable, CaseIterable {
        /// Into a new database; the restore fails if it exists and holds anything.
        case newDatabase = "NewDatabase"
        /// Into a temporary database, swapped in for the target once checked; `confirm` must
        /// equal the target database's name.
        case replace = "Replace"
    }

    public struct Target: Codable, Sendable, Equatable {
        /// Unset fields come from the environment's database; the name from `defaultDatabaseName`.
        public var database: BackupPolicy.Database?

        public init(database: BackupPolicy.Database?) {
            self.database = database
        }
    }

    public struct Spec: Codable, Sendable, Equatable {
        public var policy: String
        public var environment: String
        /// `latest` (the default) or a backup id.
        public var backup: String?
        public var target: Target?
        public var mode: Mode?
        public var confirm: String?
        public var noOwner: Bool?
        public var activeDeadlineSeconds: Int?

        public init(policy: String, environment: String, backup: String? = nil, target: Target? = nil, mode: Mode? = nil,
                    confirm: String? = nil, noOwner: Bool? = nil, activeDeadlineSeconds: Int? = nil) {
            self.policy = policy
            self.environment = environment
            self.backup = backup
            self.target = target
            self.mode = mode
            self.confirm = confirm
            self.noOwner = noOwner
            self.activeDeadlineSeconds = activeDeadlineSeconds
        }
    }

    public enum Phase: String, Codable, Sendable {
        case pending = "Pending"
        case running = "Running"
        case succeeded = "Succeeded"
        case failed = "Failed"

        public var isFinished: Bool { self == .succeeded || self == .failed }
    }

    public struct Status: Codable, Sendable, Hashable {
        public var observedGeneration: Int?
        public var phase: Phase?
        public var jobName: String?
        /// The database restored into, every default applied.
        public var targetDatabase: String?
        public var backupID: String?
        public var startedAt: KubeTimestamp?
        public var completedAt: KubeTimestamp?
        public var durationSeconds: Double?
        public var storedBytes: Int64?
        public var dumpBytes: Int64?
        /// Tables whose row counts were compared with the backup's manifest.
        public var tablesChecked: Int?
        public var message: String?
        public var conditions: [Condition]?

        public init() {}
    }

    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status?

    public init(metadata: ObjectMeta, spec: Spec) {
        apiVersion = Self.apiVersion
        kind = Self.kind
        self.metadata = metadata
        self.spec = spec
    }

    /// What the restore Job runs with, every default applied.
    public struct Resolved: Sendable, Equatable {
        public var environment: BackupPolicy.ResolvedEnvironment
        public var backup: String
        public var target: BackupPolicy.Database
        public var mode: Mode
        public var noOwner: Bool
        public var activeDeadlineSeconds: Int
    }

    public static let defaultActiveDeadlineSeconds = 6 * 3_600

    /// The restore against its policy: the environment must exist, the target defaults from
    /// the environment's database, and a Replace must be confirmed with the target's name.
    public func resolve(against policy: BackupPolicy) throws(BackstopAPIError) -> Resolved {
        let environments = try policy.resolvedEnvironments()
        guard let environment = environments.first(where: { $0.name == spec.environment }) else {
            throw BackstopAPIError(field: "spec.environment", problem: "policy \(policy.metadata.name) has no environment \"\(spec.environment)\"",
                                   fix: "use one of \(environments.map(\.name).joined(separator: ", "))")
        }
        let backup = spec.backup ?? "latest"
        if backup != "latest" {
            do { _ = try BackupID(backup) } catch {
                throw BackstopAPIError(field: "spec.backup", problem: "\"\(backup)\" is not a backup id",
                                       fix: "use latest, or an id from `backstop list` or the policy's status, like 20261201T020000Z-3f9a")
            }
        }
        let mode = spec.mode ?? .newDatabase
        let source = environment.database
        let given = spec.target?.database
        var target = source.overridden(by: given)
        target.name = given?.name ?? (mode == .replace ? source.name : Self.defaultDatabaseName(source: source.name ?? "", restore: metadata.name))
        let name = target.name ?? ""
        guard !name.isEmpty, name.utf8.count <= 63 else {
            throw BackstopAPIError(field: "spec.target.database.name", problem: "\"\(name)\" is not a database name PostgreSQL accepts",
                                   fix: "use 1 to 63 bytes, e.g. \(source.name ?? "orders")_restored")
        }
        guard !["template0", "template1"].contains(name) else {
            throw BackstopAPIError(field: "spec.target.database.name", problem: "\(name) is a template every new database is copied from",
                                   fix: "restore into a database of its own, e.g. \(source.name ?? "orders")_restored")
        }
        let sameServer = target.host == source.host && target.port == source.port
        switch mode {
        case .newDatabase:
            if sameServer && name == source.name {
                throw BackstopAPIError(field: "spec.target.database.name", problem: "\(name) is the database the backups are taken from",
                                       fix: "restore into a new name (leave it out for \(Self.defaultDatabaseName(source: name, restore: metadata.name))), or set mode: Replace with confirm: \(name) to put the backup in its place")
            }
            if spec.confirm != nil {
                throw BackstopAPIError(field: "spec.confirm", problem: "confirm goes with mode: Replace", fix: "remove it, or set mode: Replace")
            }
        case .replace:
            guard spec.confirm == name else {
                throw BackstopAPIError(field: "spec.confirm", problem: "mode: Replace swaps the restored copy in for \(name) and drops the old database",
                                       fix: "set confirm: \(name) to confirm")
            }
        }
        if let deadline = spec.activeDeadlineSeconds, deadline < 1 {
            throw BackstopAPIError(field: "spec.activeDeadlineSeconds", problem: "\(deadline) is not a positive number of seconds", fix: "use e.g. 3600")
        }
        return Resolved(environment: environment, backup: backup, target: target, mode: mode, noOwner: spec.noOwner ?? false,
                        activeDeadlineSeconds: spec.activeDeadlineSeconds ?? Self.defaultActiveDeadlineSeconds)
    }

    /// `<source>_restore_<restore>` (dashes as underscores), within PostgreSQL's 63 bytes: a
    /// name of its own for every BackupRestore, never the source's.
    public static func defaultDatabaseName(source: String, restore: String) -> String {
        let full = "\(source)_restore_\(restore.replacingOccurrences(of: "-", with: "_"))"
        guard full.utf8.count > 63 else { return full }
        return Self.prefix(full, bytes: 54) + "_" + FNV1a.hex(of: full).prefix(8)
    }

    /// The longest prefix of `text`, in whole characters, within `bytes` UTF-8 bytes: what
    /// fits in a PostgreSQL name (63 bytes) beside a suffix.
    public static func prefix(_ text: String, bytes: Int) -> String {
        var prefix = ""
        for character in text where prefix.utf8.count + character.utf8.count <= bytes { prefix.append(character) }
        return prefix
    }
}

/// The conditions a BackupRestore's status carries (besides `Ready`).
extension Condition.ConditionType {
    /// The restore finished and its row counts match the backup.
    public static let restored: Self = "Restored"
}

extension Condition.Reason {
    public static let policyNotFound: Self = "PolicyNotFound"
    public static let jobCreated: Self = "JobCreated"
    public static let jobConflict: Self = "JobConflict"
    public static let restoreRunning: Self = "RestoreRunning"
    public static let restoreSucceeded: Self = "RestoreSucceeded"
    public static let restoreFailed: Self = "RestoreFailed"
}
