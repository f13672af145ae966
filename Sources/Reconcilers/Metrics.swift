internal import BackstopAPI
internal import Foundation
internal import KubeClient
internal import KubeObjects
internal import Synchronization

/// The controller's counters and the per-environment backup gauges, in Prometheus' text format.
public final class Metrics: Sendable {
    private struct State {
        var reconciles = 0
        var reconcileErrors = 0
        var reconcileSeconds = 0.0
        /// Reconciles that took at most `Metrics.durationBuckets[i]` seconds.
        var reconcileBuckets = [Int](repeating: 0, count: Metrics.durationBuckets.count)
        var queueDepth = 0
        /// BackupRestores finished, by outcome.
        var restoresSucceeded = 0
        var restoresFailed = 0
        /// namespace/policy/environment → its gauges (numbers only: one per environment of
        /// every policy is kept).
        var environments: [String: Gauges] = [:]
        /// namespace/policy/target → delivery attempts that failed, and deliveries made.
        var notificationFailures: [NotificationTargetKey: Int] = [:]
        var notificationsSent: [NotificationTargetKey: Int] = [:]
    }
    struct NotificationTargetKey: Hashable, Comparable {
        let namespace: String, policy: String, target: String
        static func < (lhs: Self, rhs: Self) -> Bool { (lhs.namespace, lhs.policy, lhs.target) < (rhs.namespace, rhs.policy, rhs.target) }
        var labels: String { "{namespace=\"\(namespace)\",policy=\"\(policy)\",target=\"\(target)\"}" }
    }
    struct Gauges {
        let namespace: String, policy: String, environment: String
        var lastSuccess: Double?
        var duration: Double?
        var bytes: Int64?
        var rpoMet: Bool?
        /// When the last failure counted happened: a new time is a new failure.
        var lastFailureTime: KubeTimestamp?
        var failures = 0
        /// The same for failed prunes.
        var lastRetentionFailureTime: KubeTimestamp?
        var retentionFailures = 0
        /// The last drill's restore time, and when a drill last proved a restore.
        var drillSeconds: Double?
        var lastVerifiedRestore: Double?
        var lastDrillFailureTime: KubeTimestamp?
        var drillFailures = 0
        /// The newest archived WAL file's time, and pg_stat_archiver's failed_count (the
        /// server's own counter: it restarts when the server's statistics are reset).
        var walLastArchived: Double?
        var walArchiveFailures: Int64?
        /// The objectives, so alert rules can compare without knowing the policies.
        var rpoObjective: Int64?
        var rtoObjective: Int64?
    }
    private let state = Mutex(State())

    /// Upper bounds of the reconcile duration histogram, in seconds.
    static let durationBuckets = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

    public init() {}

    func recordReconcile(seconds: Double, failed: Bool) {
        state.withLock {
            $0.reconciles += 1
            $0.reconcileSeconds += seconds
            for (index, bound) in Self.durationBuckets.enumerated() where seconds <= bound { $0.reconcileBuckets[index] += 1 }
            if failed { $0.reconcileErrors += 1 }
        }
    }

    public func setQueueDepth(_ depth: Int) { state.withLock { $0.queueDepth = depth } }

    func recordNotification(namespace: String, policy: String, target: String, delivered: Bool) {
        let key = NotificationTargetKey(namespace: namespace, policy: policy, target: target)
        state.withLock {
            if delivered { $0.notificationsSent[key, default: 0] += 1 } else { $0.notificationFailures[key, default: 0] += 1 }
        }
    }

    func recordRestore(succeeded: Bool) {
        state.withLock { if succeeded { $0.restoresSucceeded += 1 } else { $0.restoresFailed += 1 } }
    }

    func record(_ policy: BackupPolicy) {
        let namespace = policy.metadata.namespace ?? ""
        state.withLock { state in
            for environment in policy.status?.environments ?? [] {
                let key = "\(namespace)/\(policy.metadata.name)/\(environment.name)"
                var gauges = state.environments[key] ?? Gauges(namespace: namespace, policy: policy.metadata.name, environment: environment.name)
                let success = environment.lastSuccessfulBackup
                gauges.lastSuccess = success?.time.date.timeIntervalSince1970
                gauges.duration = success?.durationSeconds
                gauges.bytes = success?.bytes
                gauges.rpoMet = environment.rpo.map { $0 == .met }
                if let failure = environment.lastFailure?.time, failure != gauges.lastFailureTime {
                    gauges.failures += 1
                    gauges.lastFailureTime = failure
                }
                if let retention = environment.lastRetention, retention.outcome == .failed, retention.time != gauges.lastRetentionFailureTime {
                    gauges.retentionFailures += 1
                    gauges.lastRetentionFailureTime = retention.time
                }
                if let drill = environment.lastDrill {
                    if drill.outcome == .succeeded {
                        gauges.drillSeconds = drill.restoreSeconds
                        gauges.lastVerifiedRestore = drill.time.date.timeIntervalSince1970
                    } else if drill.time != gauges.lastDrillFailureTime {
                        gauges.drillFailures += 1
                        gauges.lastDrillFailureTime = drill.time
                    }
                }
                gauges.walLastArchived = environment.walArchiving?.lastArchivedAt?.date.timeIntervalSince1970
                gauges.walArchiveFailures = environment.walArchiving?.failedCount
                let objectives = policy.spec.environments.first { $0.name == environment.name }?.objectives
                gauges.rpoObjective = objectives?.rpo.flatMap { try? FixedDuration(parsing: $0, field: "rpo").seconds }
                gauges.rtoObjective = objectives?.rto.flatMap { try? FixedDuration(parsing: $0, field: "rto").seconds }
                state.environments[key] = gauges
            }
        }
    }

    /// The exposition text for `/metrics`.
    public func render() -> String {
        state.withLock { state in
            var lines = [
                "# HELP backstop_reconcile_total Reconciles run.", "# TYPE backstop_reconcile_total counter",
                "backstop_reconcile_total \(state.reconciles)",
                "# HELP backstop_reconcile_errors_total Reconciles that failed and were retried.", "# TYPE backstop_reconcile_errors_total counter",
                "backstop_reconcile_errors_total \(state.reconcileErrors)",
                "# HELP backstop_reconcile_duration_seconds How long reconciles took.", "# TYPE backstop_reconcile_duration_seconds histogram",
            ]
            for (index, bound) in Self.durationBuckets.enumerated() {
                lines.append("backstop_reconcile_duration_seconds_bucket{le=\"\(Self.format(bound))\"} \(state.reconcileBuckets[index])")
            }
            lines += [
                "backstop_reconcile_duration_seconds_bucket{le=\"+Inf\"} \(state.reconciles)",
                "backstop_reconcile_duration_seconds_sum \(state.reconcileSeconds)",
                "backstop_reconcile_duration_seconds_count \(state.reconciles)",
                "# HELP backstop_queue_depth Keys waiting to be reconciled.", "# TYPE backstop_queue_depth gauge",
                "backstop_queue_depth \(state.queueDepth)",
                "# HELP backstop_restores_total BackupRestores this controller saw finish, by outcome.", "# TYPE backstop_restores_total counter",
                "backstop_restores_total{outcome=\"succeeded\"} \(state.restoresSucceeded)",
                "backstop_restores_total{outcome=\"failed\"} \(state.restoresFailed)",
                "# HELP backstop_notifications_failed_total Notification deliveries that failed (each attempt), by target.",
                "# TYPE backstop_notifications_failed_total counter",
            ]
            lines += state.notificationFailures.keys.sorted().map { "backstop_notifications_failed_total\($0.labels) \(state.notificationFailures[$0] ?? 0)" }
            lines += ["# HELP backstop_notifications_sent_total Notifications delivered, by target.", "# TYPE backstop_notifications_sent_total counter"]
            lines += state.notificationsSent.keys.sorted().map { "backstop_notifications_sent_total\($0.labels) \(state.notificationsSent[$0] ?? 0)" }
            let families: [(String, String, String)] = [
                ("backstop_last_success_timestamp_seconds", "gauge", "Time of the environment's last successful backup."),
                ("backstop_backup_duration_seconds", "gauge", "Duration of the last successful backup."),
                ("backstop_backup_bytes", "gauge", "Stored bytes of the last successful backup."),
                ("backstop_backup_failures_total", "counter", "Failed backups seen by this controller."),
                ("backstop_retention_failures_total", "counter", "Failed prunes after a backup seen by this controller."),
                ("backstop_rpo_met", "gauge", "1 when the last success is within the environment's RPO."),
                ("backstop_restore_drill_seconds", "gauge", "Seconds the last successful restore drill took to restore."),
                ("backstop_last_verified_restore_timestamp_seconds", "gauge", "Time of the last restore drill that succeeded."),
                ("backstop_drill_failures_total", "counter", "Failed restore drills seen by this controller."),
                ("backstop_rpo_objective_seconds", "gauge", "The environment's recovery point objective."),
                ("backstop_rto_objective_seconds", "gauge", "The environment's recovery time objective."),
                ("backstop_wal_last_archived_timestamp_seconds", "gauge", "Time the environment's newest archived WAL file was archived."),
                ("backstop_wal_archive_failures_total", "counter", "archive_command failures the server counts (pg_stat_archiver.failed_count)."),
            ]
            for (name, type, help) in families {
                lines.append("# HELP \(name) \(help)")
                lines.append("# TYPE \(name) \(type)")
                for key in state.environments.keys.sorted() {
                    guard let gauges = state.environments[key] else { continue }
                    let labels = "{namespace=\"\(gauges.namespace)\",policy=\"\(gauges.policy)\",environment=\"\(gauges.environment)\"}"
                    let value: Double?
                    switch name {
                    case "backstop_last_success_timestamp_seconds": value = gauges.lastSuccess
                    case "backstop_backup_duration_seconds": value = gauges.duration
                    case "backstop_backup_bytes": value = gauges.bytes.map(Double.init)
                    case "backstop_backup_failures_total": value = Double(gauges.failures)
                    case "backstop_retention_failures_total": value = Double(gauges.retentionFailures)
                    case "backstop_restore_drill_seconds": value = gauges.drillSeconds
                    case "backstop_last_verified_restore_timestamp_seconds": value = gauges.lastVerifiedRestore
                    case "backstop_drill_failures_total": value = Double(gauges.drillFailures)
                    case "backstop_rpo_objective_seconds": value = gauges.rpoObjective.map(Double.init)
                    case "backstop_rto_objective_seconds": value = gauges.rtoObjective.map(Double.init)
                    case "backstop_wal_last_archived_timestamp_seconds": value = gauges.walLastArchived
                    case "backstop_wal_archive_failures_total": value = gauges.walArchiveFailures.map(Double.init)
                    default: value = gauges.rpoMet.map { $0 ? 1 : 0 }
                    }
                    if let value { lines.append("\(name)\(labels) \(Self.format(value))") }
                }
            }
            return lines.joined(separator: "\n") + "\n"
        }
    }

    static func format(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}
