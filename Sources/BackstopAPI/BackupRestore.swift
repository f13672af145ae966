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

    /// A point-in-time recovery of a physical environment into an empty PersistentVolumeClaim,
    /// for a new PostgreSQL to start on: it recovers to the target as it starts, fetching WAL
    /// with the worker bundle (k8s/examples/postgres-archiving.yaml).
    public struct PointInTime: Codable, Sendable, Equatable {
        /// The empty claim the data directory goes to.
        public var claimName: String
        /// The data directory's folder in the claim (a volume's root holds lost+found, and
        /// PostgreSQL wants a folder of its own): `pgdata` unless set.
        public var subPath: String?
        /// At most one of these; none recovers to the end of the archive.
        public var targetTime: String?
        public var targetLSN: String?
        public var targetName: String?
        public var targetImmediate: Bool?
        /// The uid the server runs as, which writes the files (999 in the official image).
        public var runAsUser: Int?
        /// Where the server's container has the worker bundle's binary, for restore_command.
        public var walFetchPath: String?

        public init(claimName: String, subPath: String? = nil, targetTime: String? = nil, targetLSN: String? = nil, targetName: String? = nil,
                    targetImmediate: Bool? = nil, runAsUser: Int? = nil, walFetchPath: String? = nil) {
            self.claimName = claimName
            self.subPath = subPath
            self.targetTime = targetTime
            self.targetLSN = targetLSN
            self.targetName = targetName
            self.targetImmediate = targetImmediate
            self.runAsUser = runAsUser
            self.walFetchPath = walFetchPath
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
        public var pointInTime: PointInTime?
        /// Also put back the Secrets and ConfigMaps the backup stored (those missing from the
        /// namespace; existing ones are kept), as the environment's objects ServiceAccount.
        public var objects: Bool?

        public init(policy: String, environment: String, backup: String? = nil, target: Target? = nil, mode: Mode? = nil,
                    confirm: String? = nil, noOwner: Bool? = nil, activeDeadlineSeconds: Int? = nil, pointInTime: PointInTime? = nil,
                    objects: Bool? = nil) {
            self.objects = objects
            self.policy = policy
            self.environment = environment
            self.backup = backup
            self.target = target
            self.mode = mode
            self.confirm = confirm
            self.noOwner = noOwner
            self.activeDeadlineSeconds = activeDeadlineSeconds
            self.pointInTime = pointInTime
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
        /// Restore the Secrets and ConfigMaps too.
        public var objects = false
        /// Set for a point-in-time recovery into a claim.
        public var pointInTime: ResolvedPointInTime?
    }

    public struct ResolvedPointInTime: Sendable, Equatable {
        public var claimName: String
        /// Where the Job mounts the claim, and the data directory in it.
        public var mountPath: String
        public var dataDirectory: String
        public var target: RecoveryTarget
        public var runAsUser: Int
        public var walFetchPath: String
    }

    public static let pointInTimeMountPath = "/recovery"
    public static let defaultPostgresUser = 999
    public static let defaultWALFetchPath = "/backstop/bin/backstop"

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
        if let deadline = spec.activeDeadlineSeconds, deadline < 1 {
            throw BackstopAPIError(field: "spec.activeDeadlineSeconds", problem: "\(deadline) is not a positive number of seconds", fix: "use e.g. 3600")
        }
        if spec.objects == true {
            guard environment.objects != nil else {
                throw BackstopAPIError(field: "spec.objects", problem: "environment \(environment.name) stores no Secrets or ConfigMaps (its policy has no objects)",
                                       fix: "remove objects, or set objects in the policy first (backups after that hold them)")
            }
            guard spec.pointInTime == nil else {
                throw BackstopAPIError(field: "spec.objects", problem: "a point-in-time recovery restores the cluster's files only",
                                       fix: "restore the objects with a BackupRestore of a logical environment, or with backstop restore-objects")
            }
        }
        if let pointInTime = spec.pointInTime {
            return try resolvePointInTime(pointInTime, environment: environment, backup: backup)
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
        var resolved = Resolved(environment: environment, backup: backup, target: target, mode: mode, noOwner: spec.noOwner ?? false,
                                activeDeadlineSeconds: spec.activeDeadlineSeconds ?? Self.defaultActiveDeadlineSeconds)
        resolved.objects = spec.objects ?? false
        return resolved
    }

    private func resolvePointInTime(_ pointInTime: PointInTime, environment: BackupPolicy.ResolvedEnvironment,
                                    backup: String) throws(BackstopAPIError) -> Resolved {
        guard environment.method == .physical else {
            throw BackstopAPIError(field: "spec.pointInTime", problem: "environment \(environment.name) takes logical backups (database dumps), which recover to the time they were taken only",
                                   fix: "restore without pointInTime, or recover an environment with method: physical")
        }
        for (field, given) in [("spec.target", spec.target != nil), ("spec.mode", spec.mode != nil), ("spec.confirm", spec.confirm != nil),
                               ("spec.noOwner", spec.noOwner != nil)] where given {
            throw BackstopAPIError(field: field, problem: "\(field.dropFirst(5)) is for restores into a database; pointInTime fills a claim with a data directory",
                                   fix: "remove \(field.dropFirst(5))")
        }
        guard !pointInTime.claimName.isEmpty else {
            throw BackstopAPIError(field: "spec.pointInTime.claimName", problem: "empty", fix: "name the empty PersistentVolumeClaim the new server will use")
        }
        let subPath = pointInTime.subPath ?? "pgdata"
        guard !subPath.isEmpty, !subPath.hasPrefix("/"), !subPath.split(separator: "/").contains("..") else {
            throw BackstopAPIError(field: "spec.pointInTime.subPath", problem: "\"\(subPath)\" is not a folder inside the claim", fix: "use a relative path such as pgdata")
        }
        let target = try RecoveryTarget.chosen(time: pointInTime.targetTime, lsn: pointInTime.targetLSN, name: pointInTime.targetName,
                                               immediate: pointInTime.targetImmediate == true, fields: .backupRestore)
        let user = pointInTime.runAsUser ?? Self.defaultPostgresUser
        guard user > 0 else {
            throw BackstopAPIError(field: "spec.pointInTime.runAsUser", problem: "\(user) is root or not a user id", fix: "use the server image's user, 999 for the official postgres image")
        }
        return Resolved(environment: environment, backup: backup, target: environment.database, mode: .newDatabase, noOwner: false,
                        activeDeadlineSeconds: spec.activeDeadlineSeconds ?? Self.defaultActiveDeadlineSeconds,
                        pointInTime: ResolvedPointInTime(claimName: pointInTime.claimName, mountPath: Self.pointInTimeMountPath,
                                                         dataDirectory: Self.pointInTimeMountPath + "/" + subPath, target: target,
                                                         runAsUser: user, walFetchPath: pointInTime.walFetchPath ?? Self.defaultWALFetchPath))
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
