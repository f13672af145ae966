internal import Foundation
public import KubeObjects

/// `BackupPolicy` (`backstop.dev/v1alpha1`): what a user applies. Optional fields take their
/// defaults in `resolvedEnvironments()`; `validate()` names the first wrong field and the fix.
/// The CRD in `k8s/crds/backuppolicy.yaml` carries the same rules for the API server.
public struct BackupPolicy: Codable, Sendable, Equatable {
    public static let apiVersion = "backstop.dev/v1alpha1"
    public static let kind = "BackupPolicy"

    public struct SecretKeySelector: Codable, Sendable, Equatable {
        public var name: String
        public var key: String?
    }

    public struct Database: Codable, Sendable, Equatable {
        public var host: String?
        public var port: Int?
        public var name: String?
        /// A Secret with keys `username` and `password`.
        public var credentialsSecret: String?
        public var sslMode: String?

        public init(host: String? = nil, port: Int? = nil, name: String? = nil, credentialsSecret: String? = nil, sslMode: String? = nil) {
            self.host = host
            self.port = port
            self.name = name
            self.credentialsSecret = credentialsSecret
            self.sslMode = sslMode
        }

        /// `self` with the fields `override` sets replaced.
        func overridden(by override: Database?) -> Database {
            guard let override else { return self }
            return Database(host: override.host ?? host, port: override.port ?? port, name: override.name ?? name,
                            credentialsSecret: override.credentialsSecret ?? credentialsSecret, sslMode: override.sslMode ?? sslMode)
        }
    }

    public struct Compression: Codable, Sendable, Equatable {
        public var algorithm: CompressionAlgorithm?
        public var level: Int?
    }

    public struct Encryption: Codable, Sendable, Equatable {
        public var keySecret: SecretKeySelector?
        public var passphraseSecret: SecretKeySelector?
    }

    public struct S3: Codable, Sendable, Equatable {
        public var bucket: String
        public var prefix: String?
        public var region: String?
        public var endpoint: String?
        public var forcePathStyle: Bool?
        /// A Secret with keys `AWS_ACCESS_KEY_ID` and `AWS_SECRET_ACCESS_KEY`; none means web identity.
        public var credentialsSecret: String?
        /// A Secret with key `ca.crt`.
        public var caSecret: String?
        public var serverSideEncryption: String?
        public var kmsKeyId: String?
        public var storageClass: String?
    }

    public struct FileStorage: Codable, Sendable, Equatable {
        /// Where the PVC is mounted, e.g. `/backups`.
        public var path: String
        public var claimName: String?
    }

    public struct Storage: Codable, Sendable, Equatable {
        public var s3: S3?
        public var file: FileStorage?
    }

    public struct Retention: Codable, Sendable, Equatable {
        public struct Keep: Codable, Sendable, Equatable {
            public var within: String?
            public var last: Int?
            public var hourly: Int?
            public var daily: Int?
            public var weekly: Int?
            public var monthly: Int?
            public var yearly: Int?
        }
        public struct Tier: Codable, Sendable, Equatable {
            public var after: String
            public var storageClass: String
        }
        public var keep: Keep
        public var minAge: String?
        public var tiers: [Tier]?
    }

    public struct Objectives: Codable, Sendable, Equatable {
        public var rpo: String?
        public var rto: String?

        public init(rpo: String? = nil, rto: String? = nil) {
            self.rpo = rpo
            self.rto = rto
        }
    }

    /// Restore drills on a schedule: the newest backup restored into a scratch database,
    /// checked, dropped, the restore timed against the RTO.
    public struct Drill: Codable, Sendable, Equatable {
        public struct Scratch: Codable, Sendable, Equatable {
            /// A server the drill may create and drop its own database on. Without it, a
            /// PostgreSQL of the backup's major version runs beside the worker (a native
            /// sidecar, Kubernetes 1.29 or later), on an emptyDir, reachable on localhost only.
            public var database: Database?
            /// The sidecar's image instead of `postgres:<major>`.
            public var image: String?

            public init(database: Database? = nil, image: String? = nil) {
                self.database = database
                self.image = image
            }
        }
        public var schedule: String
        public var suspend: Bool?
        public var scratch: Scratch?

        public init(schedule: String, suspend: Bool? = nil, scratch: Scratch? = nil) {
            self.schedule = schedule
            self.suspend = suspend
            self.scratch = scratch
        }
    }

    public struct Environment: Codable, Sendable, Equatable {
        public var name: String
        public var schedule: String?
        public var suspend: Bool?
        public var database: Database?
        public var retention: Retention?
        public var objectives: Objectives?
        public var drill: Drill?
        /// `logical` (pg_dump of the database; the default) or `physical` (pg_basebackup of the
        /// cluster, for point-in-time recovery with the WAL archive).
        public var method: BackupMethod?
        public var walArchiving: WALArchiving?
        /// Secrets and ConfigMaps this environment's backups store; replaces `spec.objects` whole.
        public var objects: NamespaceObjects?
    }

    public enum BackupMethod: String, Codable, Sendable, Equatable, CaseIterable {
        case logical
        case physical
    }

    /// The cluster archives its WAL into this environment (`archive_command = 'backstop
    /// wal-push %p'`, set up in the PostgreSQL pod); physical backups need it.
    public struct WALArchiving: Codable, Sendable, Equatable {
        public var enabled: Bool?
        public init(enabled: Bool?) { self.enabled = enabled }
    }

    /// How the worker's pods run: what clusters need of every workload (pull secrets, nodes,
    /// a mesh sidecar kept out by an annotation …).
    public struct JobTemplate: Codable, Sendable, Equatable {
        public struct LocalObjectReference: Codable, Sendable, Hashable {
            public var name: String
        }
        public var image: String?
        public var imagePullSecrets: [LocalObjectReference]?
        public var serviceAccountName: String?
        /// `requests`/`limits` → `cpu`/`memory` quantities.
        public var resources: [String: [String: String]]?
        public var nodeSelector: [String: String]?
        /// Kubernetes' own shapes, passed through as written.
        public var tolerations: [JSONValue]?
        public var affinity: JSONValue?
        public var priorityClassName: String?
        /// Added to the pods' labels and annotations (never over Backstop's own labels).
        public var labels: [String: String]?
        public var annotations: [String: String]?
        public var activeDeadlineSeconds: Int?
        public var backoffLimit: Int?
    }

    public struct Spec: Codable, Sendable, Equatable {
        public var schedule: String?
        public var timeZone: String?
        public var suspend: Bool?
        public var concurrencyPolicy: String?
        public var startingDeadlineSeconds: Int?
        public var database: Database?
        public var compression: Compression?
        public var encryption: Encryption?
        public var storage: Storage
        public var environments: [Environment]
        public var jobTemplate: JobTemplate?
        /// Secrets and ConfigMaps every environment's backups store (unless it names its own).
        public var objects: NamespaceObjects?
        /// Who hears about failures and breaches.
        public var notifications: [NotificationTarget]?
    }

    /// An environment's record of its backups, filled from its Jobs' reports.
    public struct EnvironmentStatus: Codable, Sendable, Hashable {
        public struct Success: Codable, Sendable, Hashable {
            public var id: String
            public var time: KubeTimestamp
            public var bytes: Int64?
            public var durationSeconds: Double?

            public init(id: String, time: KubeTimestamp, bytes: Int64?, durationSeconds: Double?) {
                self.id = id
                self.time = time
                self.bytes = bytes
                self.durationSeconds = durationSeconds
            }
        }
        public struct Failure: Codable, Sendable, Hashable {
            public var time: KubeTimestamp
            public var reason: Condition.Reason
            public var message: String

            public init(time: KubeTimestamp, reason: Condition.Reason, message: String) {
                self.time = time
                self.reason = reason
                self.message = message
            }
        }
        /// What the prune after the last backup did (the worker's report).
        public struct Retention: Codable, Sendable, Hashable {
            public var time: KubeTimestamp
            public var outcome: WorkerReport.Outcome
            public var deleted: Int
            public var kept: Int
            public var message: String?

            public init(time: KubeTimestamp, outcome: WorkerReport.Outcome, deleted: Int, kept: Int, message: String?) {
                self.time = time
                self.outcome = outcome
                self.deleted = deleted
                self.kept = kept
                self.message = message
            }
        }
        /// The last restore drill's outcome (its worker's report).
        public struct DrillResult: Codable, Sendable, Hashable {
            public var backupID: String?
            public var time: KubeTimestamp
            /// Seconds the restore took: the measured RTO.
            public var restoreSeconds: Double?
            public var outcome: DrillRecord.Outcome
            public var message: String

            public init(backupID: String?, time: KubeTimestamp, restoreSeconds: Double?, outcome: DrillRecord.Outcome, message: String) {
                self.backupID = backupID
                self.time = time
                self.restoreSeconds = restoreSeconds
                self.outcome = outcome
                self.message = message
            }
        }
        public var name: String
        public var cronJob: String?
        public var drillCronJob: String?
        /// The CronJob that checks WAL archiving (`wal-status`), for environments with walArchiving.
        public var archivingCronJob: String?
        /// What the last archiving check found.
        public var walArchiving: WALArchivingState?
        /// The major version of the server the last backup dumped (the drill sidecar's image).
        public var serverMajorVersion: Int?
        public var lastDrill: DrillResult?
        public var lastScheduleTime: KubeTimestamp?
        public var lastSuccessfulBackup: Success?
        public var lastFailure: Failure?
        public var lastRetention: Retention?
        public var backups: Int?
        public var rpo: RPOState?

        public init(name: String, cronJob: String? = nil) {
            self.name = name
            self.cronJob = cronJob
        }

        /// Whether its newest backup result is a failure.
        public var isFailing: Bool {
            guard let failure = lastFailure else { return false }
            return failure.time > (lastSuccessfulBackup?.time ?? KubeTimestamp(.distantPast))
        }
    }

    /// The last `wal-status` check of an environment's archiving.
    public struct WALArchivingState: Codable, Sendable, Hashable {
        /// When the check ran.
        public var checkedAt: KubeTimestamp
        public var lastArchivedAt: KubeTimestamp?
        public var lastArchivedFile: String?
        /// pg_stat_archiver's failed_count, and whether the last attempt failed.
        public var failedCount: Int64?
        public var failing: Bool?
        public var lastFailedFile: String?
        /// Why the check could not ask the server, or why it failed.
        public var message: String?

        public init(checkedAt: KubeTimestamp, lastArchivedAt: KubeTimestamp? = nil, lastArchivedFile: String? = nil, failedCount: Int64? = nil,
                    failing: Bool? = nil, lastFailedFile: String? = nil, message: String? = nil) {
            self.checkedAt = checkedAt
            self.lastArchivedAt = lastArchivedAt
            self.lastArchivedFile = lastArchivedFile
            self.failedCount = failedCount
            self.failing = failing
            self.lastFailedFile = lastFailedFile
            self.message = message
        }
    }

    public enum RPOState: String, Codable, Sendable {
        case met = "Met"
        case breached = "Breached"
    }

    /// One line per policy for `kubectl get bp`: printer columns show the first value of a
    /// list, so what spans environments is summed up here.
    public struct Summary: Codable, Sendable, Hashable {
        /// `production, staging, development`
        public var environments: String
        /// The oldest of the environments' last successes: how far back the weakest one is.
        public var oldestLastSuccess: KubeTimestamp?
        /// `3/3 succeeded`, or which environments failed or never ran.
        public var backups: String

        public init(environments: String, oldestLastSuccess: KubeTimestamp?, backups: String) {
            self.environments = environments
            self.oldestLastSuccess = oldestLastSuccess
            self.backups = backups
        }
    }

    public struct Status: Codable, Sendable, Hashable {
        public var observedGeneration: Int?
        public var conditions: [Condition]?
        public var environments: [EnvironmentStatus]?
        public var summary: Summary?
        public var lastHandledRunNow: String?
        public var notifications: NotificationStatus?

        public init() {}
    }

    public var apiVersion: String?
    public var kind: String?
    public var metadata: ObjectMeta
    public var spec: Spec
    public var status: Status?
}
