internal import BackstopAPI
public import Foundation
public import KubeClient
public import KubeRuntime
public import Logging
internal import Workloads

/// Level-based reconcile of one BackupPolicy: its CronJobs are made to match the builder's
/// (created, updated, hand edits restored, removed environments deleted), and its status
/// says whether that worked. Nothing is written when nothing changed.
public struct PolicyReconciler: Sendable {
    let client: KubeClient
    let builder: CronJobBuilder
    let logger: Logger
    let metrics: Metrics
    /// The clock, injected so tests can name times.
    let now: @Sendable () -> Date

    public init(client: KubeClient, workerImage: String, logger: Logger, metrics: Metrics = Metrics(),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.client = client
        self.builder = CronJobBuilder(settings: .init(workerImage: workerImage))
        self.logger = logger
        self.metrics = metrics
        self.now = now
    }

    public enum Failure: Error, CustomStringConvertible {
        case decoding(String)
        public var description: String {
            switch self { case .decoding(let message): message }
        }
    }

    /// A policy needs a pass when what the user controls changed — spec (generation), labels,
    /// annotations (run-now), deletion — not when only the status this controller wrote did.
    public static let needsReconcile: @Sendable (GenericObject?, GenericObject) -> Bool = { old, new in
        guard let old else { return true }
        return old.metadata.generation != new.metadata.generation || old.metadata.annotations != new.metadata.annotations
            || old.metadata.labels != new.metadata.labels || old.metadata.deletionTimestamp != new.metadata.deletionTimestamp
    }

    /// Reconciles and records the pass in the metrics.
    public func reconcile(key: String, object: GenericObject?) async throws -> ReconcileAction {
        let started = ContinuousClock.now
        do {
            let action = try await reconcilePolicy(key: key, object: object)
            metrics.recordReconcile(seconds: Self.seconds(ContinuousClock.now - started), failed: false)
            return action
        } catch {
            metrics.recordReconcile(seconds: Self.seconds(ContinuousClock.now - started), failed: true)
            throw error
        }
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    func reconcilePolicy(key: String, object: GenericObject?) async throws -> ReconcileAction {
        // Deleted: owner references take its CronJobs and Jobs; backups are never touched.
        guard let object else { return .awaitChange }
        let policy = try Self.decode(BackupPolicy.self, from: object)
        let namespace = policy.metadata.namespace ?? client.connection.namespace
        let desired: [CronJob]
        do {
            desired = try builder.cronJobs(for: policy)
        } catch {
            try await writeStatus(of: policy, ready: false, reason: "InvalidSpec", message: error.description, cronJobs: [])
            try await event(policy, type: "Warning", reason: "InvalidSpec", message: error.description)
            return .awaitChange
        }
        let existing = try await client.listAll(.cronJobs, namespace: namespace,
                                                labelSelector: "\(CronJobBuilder.policyLabel)=\(policy.metadata.name)", as: GenericObject.self).items
        var byName = Dictionary(existing.map { ($0.metadata.name, $0) }, uniquingKeysWith: { first, _ in first })
        for cronJob in desired {
            let wanted = try Self.json(cronJob)
            if let current = byName.removeValue(forKey: cronJob.metadata.name) {
                let actual = try Self.json(current)
                guard !Self.contains(actual, wanted) else { continue }
                var replacement = try Self.decode(GenericObject.self, from: wanted)
                replacement.metadata.resourceVersion = current.metadata.resourceVersion
                _ = try await client.update(.cronJobs, namespace: namespace, name: cronJob.metadata.name, replacement)
                try await event(policy, type: "Normal", reason: "CronJobUpdated", message: "CronJob \(cronJob.metadata.name) updated to the policy")
            } else {
                _ = try await client.create(.cronJobs, namespace: namespace, try Self.decode(GenericObject.self, from: wanted))
                try await event(policy, type: "Normal", reason: "CronJobCreated", message: "CronJob \(cronJob.metadata.name) created for environment \(cronJob.metadata.labels?[CronJobBuilder.environmentLabel] ?? "")")
            }
        }
        // What is left belongs to environments the policy no longer has.
        for stale in byName.values where stale.metadata.ownerReferences?.contains(where: { $0.uid == policy.metadata.uid }) ?? false {
            try await client.delete(.cronJobs, namespace: namespace, name: stale.metadata.name, propagation: .background)
            try await event(policy, type: "Normal", reason: "CronJobDeleted", message: "CronJob \(stale.metadata.name) deleted: its environment left the policy")
        }
        let current = try await runNow(policy, desired, namespace: namespace)
        let results = try await latestResults(of: current, namespace: namespace)
        let objectives = Dictionary(uniqueKeysWithValues: try current.resolvedEnvironments().map { ($0.name, $0.rpo) })
        let nextCheck = try await writeStatus(of: current, ready: true, reason: "Reconciled", message: "\(desired.count) CronJobs match the policy",
                                              cronJobs: desired.map { ($0.metadata.labels?[CronJobBuilder.environmentLabel] ?? "", $0.metadata.name) },
                                              results: results, objectives: objectives)
        // The RPO is a clock, not an event: look again when the next one would be breached.
        return .requeue(after: nextCheck)
    }

    /// Writes conditions, per-environment CronJobs, results and RPO only when they change (a
    /// condition's time moves only with its status). Returns when the status should be looked
    /// at again for the RPO.
    @discardableResult
    func writeStatus(of policy: BackupPolicy, ready: Bool, reason: String, message: String, cronJobs: [(String, String)],
                     results: [String: Result] = [:], objectives: [String: RetentionDuration?] = [:]) async throws -> Duration {
        var status = policy.status ?? BackupPolicy.Status()
        let now = now()
        var conditions = status.conditions ?? []
        func set(_ type: String, _ value: String, _ reason: String, _ message: String) {
            let condition = BackupPolicy.Condition(type: type, status: value, reason: reason, message: message,
                                                   lastTransitionTime: Self.timestamp(now), observedGeneration: policy.metadata.generation)
            if let index = conditions.firstIndex(where: { $0.type == type }) {
                var updated = condition
                if conditions[index].status == value { updated.lastTransitionTime = conditions[index].lastTransitionTime }
                conditions[index] = updated
            } else {
                conditions.append(condition)
            }
        }
        set("Ready", ready ? "True" : "False", reason, message)
        status.observedGeneration = policy.metadata.generation

        var environments = status.environments ?? []
        for (environment, cronJob) in cronJobs {
            if let index = environments.firstIndex(where: { $0.name == environment }) {
                environments[index].cronJob = cronJob
            } else {
                environments.append(.init(name: environment, cronJob: cronJob))
            }
        }
        // Environments that left the policy keep no status; the others keep their history.
        if ready { environments.removeAll { entry in !cronJobs.contains { $0.0 == entry.name } } }
        var events = Self.apply(results, to: &environments)

        var nextCheck: Duration = .seconds(300)
        var breached: [String] = []
        var judged = 0
        for index in environments.indices {
            guard let rpo = objectives[environments[index].name] ?? nil else { environments[index].rpo = nil; continue }
            judged += 1
            let last = environments[index].lastSuccessfulBackup.flatMap { Self.date($0.time) }
            let age = last.map { now.timeIntervalSince($0) } ?? .infinity
            let met = age <= Double(rpo.seconds)
            if !met {
                breached.append(environments[index].name)
                if environments[index].rpo == "Met" {
                    events.append(("Warning", "RPOBreached", "\(environments[index].name): no successful backup for longer than \(rpo)"))
                }
            } else {
                nextCheck = min(nextCheck, .seconds(max(1, Double(rpo.seconds) - age)))
            }
            environments[index].rpo = met ? "Met" : "Breached"
        }
        if judged > 0 {
            set("RPOMet", breached.isEmpty ? "True" : "False", breached.isEmpty ? "WithinObjective" : "RPOBreached",
                breached.isEmpty ? "every environment's last success is within its RPO" : "no recent enough backup in \(breached.joined(separator: ", "))")
        }
        let failing = environments.filter { entry in
            guard let failure = entry.lastFailure else { return false }
            return failure.time > (entry.lastSuccessfulBackup?.time ?? "")
        }
        if !failing.isEmpty {
            set("LastBackupSucceeded", "False", "BackupFailed", failing.map { "\($0.name): \($0.lastFailure?.message ?? "")" }.joined(separator: "; "))
        } else if environments.contains(where: { $0.lastSuccessfulBackup != nil }) {
            set("LastBackupSucceeded", "True", "BackupSucceeded", "the last backup of every environment that ran succeeded")
        }
        status.conditions = conditions
        status.environments = environments
        var updated = policy
        updated.status = status
        if status != policy.status {
            _ = try await client.updateStatus(.backupPolicies, namespace: policy.metadata.namespace, name: policy.metadata.name, updated)
        }
        metrics.record(updated)
        for event in events { try await self.event(policy, type: event.type, reason: event.reason, message: event.message) }
        return nextCheck
    }

    static func date(_ text: String) -> Date? {
        let formatter = ISO8601DateFormatter()
        if let date = formatter.date(from: text) { return date }
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.date(from: text)
    }

    /// `backstop.dev/run-now=<value>`: one Job per environment (or the one named by
    /// `backstop.dev/run-now-environment`), once per distinct value; an environment whose Job
    /// is still running is skipped. The value handled is recorded in status.
    /// Returns the policy as stored afterwards (its status may have moved).
    func runNow(_ policy: BackupPolicy, _ cronJobs: [CronJob], namespace: String) async throws -> BackupPolicy {
        guard let value = policy.metadata.annotations?[CronJobBuilder.runNowAnnotation], !value.isEmpty,
              value != policy.status?.lastHandledRunNow else { return policy }
        let only = policy.metadata.annotations?[CronJobBuilder.runNowEnvironmentAnnotation]
        let jobs = try await client.listAll(.jobs, namespace: namespace,
                                            labelSelector: "\(CronJobBuilder.policyLabel)=\(policy.metadata.name)", as: GenericObject.self).items
        for cronJob in cronJobs {
            let environment = cronJob.metadata.labels?[CronJobBuilder.environmentLabel] ?? ""
            if let only, only != environment { continue }
            let running = jobs.contains { job in
                job.metadata.labels?[CronJobBuilder.environmentLabel] == environment
                    && !(job.fields["status"]?["conditions"]?.array ?? []).contains { $0["status"] == .string("True") }
            }
            if running {
                try await event(policy, type: "Normal", reason: "RunNowSkipped", message: "\(environment): a backup is already running")
                continue
            }
            do {
                _ = try await client.create(.jobs, namespace: namespace, try Self.decode(GenericObject.self, from: CronJobBuilder.runNowJob(from: cronJob, value: value)))
                try await event(policy, type: "Normal", reason: "RunNowStarted", message: "\(environment): backup started for run-now \(value)")
            } catch let error as KubeAPIError where error.isAlreadyExists {
                continue  // this value's Job exists: started by an earlier pass
            }
        }
        // Recorded right away (re-read: the status may have moved since the cache's copy).
        var fresh = try await client.get(.backupPolicies, namespace: namespace, name: policy.metadata.name, as: BackupPolicy.self)
        var status = fresh.status ?? BackupPolicy.Status()
        status.lastHandledRunNow = value
        fresh.status = status
        return try await client.updateStatus(.backupPolicies, namespace: namespace, name: policy.metadata.name, fresh)
    }

    func event(_ policy: BackupPolicy, type: String, reason: String, message: String) async throws {
        let timestamp = Self.timestamp(now())
        var event = GenericObject(metadata: ObjectMeta(name: "\(policy.metadata.name).\(UInt64(now().timeIntervalSince1970 * 1_000_000))"))
        event.metadata.generateName = nil
        event.fields = [
            "apiVersion": .string("v1"), "kind": .string("Event"),
            "involvedObject": .object(["apiVersion": .string(BackupPolicy.apiVersion), "kind": .string(BackupPolicy.kind),
                                       "name": .string(policy.metadata.name), "namespace": .string(policy.metadata.namespace ?? ""),
                                       "uid": .string(policy.metadata.uid ?? "")]),
            "type": .string(type), "reason": .string(reason), "message": .string(message),
            "firstTimestamp": .string(timestamp), "lastTimestamp": .string(timestamp), "count": .number(1),
            "source": .object(["component": .string("backstop-controller")]),
        ]
        logger.info("\(policy.metadata.namespace ?? "")/\(policy.metadata.name): \(reason): \(message)")
        do { _ = try await client.create(.events, namespace: policy.metadata.namespace, event) }
        catch { logger.warning("cannot record event \(reason): \(error)") }  // events are best effort
    }

    // MARK: JSON plumbing

    static func json(_ value: some Encodable) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
    }

    static func decode<T: Decodable>(_ type: T.Type, from value: some Encodable) throws -> T {
        do { return try JSONDecoder().decode(T.self, from: JSONEncoder().encode(value)) }
        catch { throw Failure.decoding("cannot read \(T.self): \(error)") }
    }

    /// Whether `actual` has every field `wanted` sets, with the same value: the API server may
    /// add defaults, but a changed or missing field of ours is drift.
    static func contains(_ actual: JSONValue, _ wanted: JSONValue) -> Bool {
        switch (actual, wanted) {
        case let (.object(have), .object(want)):
            return want.allSatisfy { key, value in
                // Server-owned metadata is not ours to compare.
                if ["resourceVersion", "uid", "creationTimestamp", "generation", "managedFields"].contains(key) { return true }
                return have[key].map { contains($0, value) } ?? (value == .null)
            }
        case let (.array(have), .array(want)):
            return have.count == want.count && zip(have, want).allSatisfy { contains($0, $1) }
        default:
            return actual == wanted
        }
    }

    static func timestamp(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter.string(from: date)
    }
}
