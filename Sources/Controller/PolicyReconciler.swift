internal import BackstopAPI
public import Foundation
public import KubeClient
public import KubeRuntime
public import Logging
internal import Synchronization
internal import Workloads

/// Level-based reconcile of one BackupPolicy: its CronJobs are made to match the builder's
/// (created, updated, hand edits restored, removed environments deleted), and its status
/// says whether that worked. What exists is read from the owned-object caches, not asked of
/// the API server, so a converged policy costs no request at all; nothing is written when
/// nothing changed.
public struct PolicyReconciler: Sendable {
    let client: KubeClient
    let builder: CronJobBuilder
    let owned: OwnedObjects
    let logger: Logger
    let metrics: Metrics
    let memo = ReconcileMemo()
    /// The clock, injected so tests can name times.
    let now: @Sendable () -> Date

    public init(client: KubeClient, workerImage: String, owned: OwnedObjects, logger: Logger, metrics: Metrics = Metrics(),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.client = client
        self.builder = CronJobBuilder(settings: .init(workerImage: workerImage))
        self.owned = owned
        self.logger = logger
        self.metrics = metrics
        self.now = now
    }

    /// A policy needs a pass when what the user controls changed — spec (generation), labels,
    /// annotations (run-now), deletion — not when only the status this controller wrote did.
    public static let needsReconcile: @Sendable (ObservedPolicy?, ObservedPolicy) -> Bool = { old, new in
        guard let old else { return true }
        return old.metadata.generation != new.metadata.generation || old.metadata.annotations != new.metadata.annotations
            || old.metadata.labels != new.metadata.labels || old.metadata.deletionTimestamp != new.metadata.deletionTimestamp
    }

    /// Reconciles and records the pass in the metrics.
    public func reconcile(key: String, object: ObservedPolicy?) async throws -> ReconcileAction {
        let started = ContinuousClock.now
        do {
            let action = try await reconcilePolicy(key: key, object: object)
            metrics.recordReconcile(seconds: (ContinuousClock.now - started) / .seconds(1), failed: false)
            return action
        } catch {
            metrics.recordReconcile(seconds: (ContinuousClock.now - started) / .seconds(1), failed: true)
            throw error
        }
    }

    func reconcilePolicy(key: String, object: ObservedPolicy?) async throws -> ReconcileAction {
        // Deleted: owner references take its CronJobs and Jobs; backups are never touched.
        guard let object else {
            memo.forget(key)
            return .awaitChange
        }
        guard let policy = object.policy else {
            try await reportUndecodable(object)
            return .awaitChange
        }
        let namespace = policy.metadata.namespace ?? client.connection.namespace
        let desired: [CronJob]
        do {
            desired = try builder.cronJobs(for: policy)
        } catch {
            try await writeStatus(key: key, of: policy, ready: false, reason: "InvalidSpec", message: error.description, cronJobs: [],
                                  events: [("Warning", "InvalidSpec", error.description)])
            return .awaitChange
        }
        var existing = Dictionary(owned.cronJobs.objects(inGroup: key).map { ($0.metadata.name, $0) }, uniquingKeysWith: { first, _ in first })
        var created: [String] = [], updated: [String] = [], deleted: [String] = []
        for cronJob in desired {
            if let current = existing.removeValue(forKey: cronJob.metadata.name) {
                guard try await !matches(current, cronJob, namespace: namespace) else { continue }
                var replacement = cronJob
                replacement.metadata.resourceVersion = current.metadata.resourceVersion
                _ = try await client.update(.cronJobs, namespace: namespace, name: cronJob.metadata.name, replacement)
                updated.append(cronJob.metadata.name)
            } else {
                switch try await create(cronJob, namespace: namespace, for: policy) {
                case .created: created.append(cronJob.metadata.name)
                case .alreadyOurs: break
                case .someoneElses:
                    let message = "CronJob \(cronJob.metadata.name) exists and is not this policy's: delete or rename it, or rename the environment"
                    try await writeStatus(key: key, of: policy, ready: false, reason: "CronJobConflict", message: message, cronJobs: [],
                                          events: [("Warning", "CronJobConflict", message)])
                    return .awaitChange
                }
            }
        }
        // What is left belongs to environments the policy no longer has.
        for stale in existing.values.sorted(by: { $0.metadata.name < $1.metadata.name })
        where stale.metadata.ownerReferences?.contains(where: { $0.uid == policy.metadata.uid }) ?? false {
            try await deleteCronJob(stale.metadata.name, namespace: namespace)
            deleted.append(stale.metadata.name)
        }
        // One event per kind of change, naming every CronJob it touched.
        let metadata = ObjectMeta(policy.metadata)
        if !created.isEmpty { await event(metadata, type: "Normal", reason: "CronJobCreated", message: "created \(created.joined(separator: ", "))") }
        if !updated.isEmpty { await event(metadata, type: "Normal", reason: "CronJobUpdated", message: "updated \(updated.joined(separator: ", ")) to the policy") }
        if !deleted.isEmpty {
            await event(metadata, type: "Normal", reason: "CronJobDeleted", message: "deleted \(deleted.joined(separator: ", ")): their environments left the policy")
        }

        let current = try await runNow(policy, desired, key: key, namespace: namespace)
        let results = try await newResults(key: key, namespace: namespace, status: current.status)
        let objectives = Dictionary(uniqueKeysWithValues: try current.resolvedEnvironments().map { ($0.name, $0.rpo) })
        let nextCheck = try await writeStatus(key: key, of: current, ready: true, reason: "Reconciled", message: "\(desired.count) CronJobs match the policy",
                                              cronJobs: desired.map { ($0.metadata.labels?[CronJobBuilder.environmentLabel] ?? "", $0.metadata.name) },
                                              results: results, objectives: objectives)
        // The RPO is a clock, not an event: look again when the next one would be breached.
        return .requeue(after: nextCheck)
    }

    enum Creation { case created, alreadyOurs, someoneElses }

    /// Creates a CronJob. One of that name may exist already: made by an earlier pass whose
    /// watch event has not arrived (ours), or by someone else (a conflict to report).
    func create(_ cronJob: CronJob, namespace: String, for policy: BackupPolicy) async throws(KubeAPIError) -> Creation {
        do {
            _ = try await client.create(.cronJobs, namespace: namespace, cronJob)
            return .created
        } catch where error.isAlreadyExists {}
        let other = try await client.get(.cronJobs, namespace: namespace, name: cronJob.metadata.name, as: ObservedCronJob.self)
        return other.metadata.ownerReferences?.contains { $0.uid == policy.metadata.uid } == true ? .alreadyOurs : .someoneElses
    }

    /// Deletes a CronJob (and, in the background, its Jobs); one already gone (the watch has
    /// not said so yet) is fine.
    func deleteCronJob(_ name: String, namespace: String) async throws(KubeAPIError) {
        do {
            try await client.delete(.cronJobs, namespace: namespace, name: name, propagation: .background)
        } catch where error.isNotFound {}
    }

    /// Whether a CronJob is as the builder wants it: every label, annotation and owner
    /// reference of ours present, and the spec equal (by hash, from the cache) — or, when the
    /// API server filled in defaults for fields we leave unset, equal in every field we set
    /// (read whole once, then remembered for that version of the CronJob).
    func matches(_ actual: ObservedCronJob, _ wanted: CronJob, namespace: String) async throws -> Bool {
        let metadata = actual.metadata
        let labels = (wanted.metadata.labels ?? [:]).allSatisfy { metadata.labels?[$0.key] == $0.value }
        let annotations = (wanted.metadata.annotations ?? [:]).allSatisfy { metadata.annotations?[$0.key] == $0.value }
        let owners = (wanted.metadata.ownerReferences ?? []).allSatisfy { reference in
            metadata.ownerReferences?.contains { $0.uid == reference.uid && $0.controller == reference.controller } ?? false
        }
        guard labels, annotations, owners, let specHash = actual.specHash else { return false }
        let wantedHash = wanted.spec.hashValue
        if specHash == wantedHash { return true }
        if memo.isVerified(actual.key, version: metadata.resourceVersion, wanted: wantedHash) { return true }
        let whole = try await client.get(.cronJobs, namespace: namespace, name: metadata.name, as: GenericObject.self)
        guard let have = whole.fields["spec"], Self.contains(have, try Self.json(wanted.spec)) else { return false }
        memo.verified(actual.key, version: whole.metadata.resourceVersion, wanted: wantedHash)
        return true
    }

    /// Whether `actual` has every field `wanted` sets, with the same value.
    static func contains(_ actual: JSONValue, _ wanted: JSONValue) -> Bool {
        switch (actual, wanted) {
        case let (.object(have), .object(want)):
            return want.allSatisfy { key, value in have[key].map { contains($0, value) } ?? (value == .null) }
        case let (.array(have), .array(want)):
            return have.count == want.count && zip(have, want).allSatisfy { contains($0, $1) }
        default:
            return actual == wanted
        }
    }

    /// A policy that does not decode cannot be built into CronJobs; its status says which
    /// field is wrong, keeping its other conditions (a merge patch: there is no typed policy
    /// to update from).
    func reportUndecodable(_ object: ObservedPolicy) async throws {
        let message = "the policy does not read: \(object.decodingError ?? "unknown error"); fix the field and apply again"
        let existing = memo.condition(object.key)
        guard existing != message else { return }
        var conditions = (object.statusOfUndecodable?.conditions ?? []).filter { $0.type != "Ready" }
        conditions.insert(BackupPolicy.Condition(type: "Ready", status: "False", reason: "InvalidSpec", message: message,
                                                 lastTransitionTime: KubeTime.time(now()), observedGeneration: object.metadata.generation), at: 0)
        let patch: JSONValue = ["status": ["conditions": try Self.json(conditions),
                                           "observedGeneration": object.metadata.generation.map { .number(Double($0)) } ?? .null]]
        _ = try await client.patch(.backupPolicies, namespace: object.metadata.namespace, name: object.metadata.name,
                                   .merge(patch), subresource: "status", as: ObservedPolicy.self)
        memo.remember(object.key, condition: message)
        await event(object.metadata, type: "Warning", reason: "InvalidSpec", message: message)
    }

    /// Writes conditions, per-environment CronJobs, results and RPO only when they change (a
    /// condition's time moves only with its status), then the events of what changed (`events`
    /// and those the new results bring): a status already written means its events went out
    /// with it. Returns when the status should be looked at again for the RPO.
    @discardableResult
    func writeStatus(key: String, of policy: BackupPolicy, ready: Bool, reason: String, message: String, cronJobs: [(String, String)],
                     results: [String: Result] = [:], objectives: [String: FixedDuration?] = [:],
                     events: [(type: String, reason: String, message: String)] = []) async throws -> Duration {
        var status = policy.status ?? BackupPolicy.Status()
        let now = now()
        var conditions = status.conditions ?? []
        func set(_ type: String, _ value: String, _ reason: String, _ message: String) {
            let condition = BackupPolicy.Condition(type: type, status: value, reason: reason, message: message,
                                                   lastTransitionTime: KubeTime.time(now), observedGeneration: policy.metadata.generation)
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
        var events = events + Self.apply(results, to: &environments)

        var nextCheck: Duration = .seconds(300)
        var breached: [String] = []
        var judged = 0
        for index in environments.indices {
            guard let rpo = objectives[environments[index].name] ?? nil else { environments[index].rpo = nil; continue }
            judged += 1
            let last = environments[index].lastSuccessfulBackup.flatMap { KubeTime.parse($0.time) }
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
        metrics.record(updated)
        // Unchanged, or already written on top of the version the cache still shows (its
        // watch event is on the way): nothing to write, and the events went out with it.
        guard status != policy.status, !memo.isWritten(key, status: status, over: policy.metadata.resourceVersion) else { return nextCheck }
        _ = try await client.updateStatus(.backupPolicies, namespace: policy.metadata.namespace, name: policy.metadata.name, updated)
        memo.remember(key, status: status, over: policy.metadata.resourceVersion)
        for event in events {
            await self.event(ObjectMeta(policy.metadata), type: event.type, reason: event.reason, message: event.message)
        }
        return nextCheck
    }

    /// `backstop.dev/run-now=<value>`: one Job per environment (or the one named by
    /// `backstop.dev/run-now-environment`), once per distinct value; an environment whose Job
    /// is still running is skipped. The value handled is recorded in status.
    /// Returns the policy as stored afterwards (its status may have moved).
    func runNow(_ policy: BackupPolicy, _ cronJobs: [CronJob], key: String, namespace: String) async throws -> BackupPolicy {
        guard let value = policy.metadata.annotations?[CronJobBuilder.runNowAnnotation], !value.isEmpty,
              value != policy.status?.lastHandledRunNow else { return policy }
        let only = policy.metadata.annotations?[CronJobBuilder.runNowEnvironmentAnnotation]
        let jobs = owned.jobs.objects(inGroup: key)
        for cronJob in cronJobs {
            let environment = cronJob.metadata.labels?[CronJobBuilder.environmentLabel] ?? ""
            if let only, only != environment { continue }
            let running = jobs.contains { $0.metadata.labels?[CronJobBuilder.environmentLabel] == environment && $0.finished == nil }
            if running {
                await event(ObjectMeta(policy.metadata), type: "Normal", reason: "RunNowSkipped", message: "\(environment): a backup is already running")
                continue
            }
            do {
                _ = try await client.create(.jobs, namespace: namespace, CronJobBuilder.runNowJob(from: cronJob, value: value))
                await event(ObjectMeta(policy.metadata), type: "Normal", reason: "RunNowStarted", message: "\(environment): backup started for run-now \(value)")
            } catch {
                guard error.isAlreadyExists else { throw error }  // else this value's Job exists: started by an earlier pass
            }
        }
        // Recorded right away (re-read: the status may have moved since the cache's copy).
        var fresh = try await client.get(.backupPolicies, namespace: namespace, name: policy.metadata.name, as: BackupPolicy.self)
        var status = fresh.status ?? BackupPolicy.Status()
        status.lastHandledRunNow = value
        fresh.status = status
        return try await client.updateStatus(.backupPolicies, namespace: namespace, name: policy.metadata.name, fresh)
    }

    /// Records an Event on the policy; best effort (a lost event must not fail the pass).
    func event(_ policy: ObjectMeta, type: String, reason: String, message: String) async {
        let timestamp = KubeTime.time(now())
        var event = GenericObject(metadata: ObjectMeta(name: "\(policy.name).\(UInt64(now().timeIntervalSince1970 * 1_000_000))"))
        event.fields = [
            "apiVersion": .string("v1"), "kind": .string("Event"),
            "involvedObject": .object(["apiVersion": .string(BackupPolicy.apiVersion), "kind": .string(BackupPolicy.kind),
                                       "name": .string(policy.name), "namespace": .string(policy.namespace ?? ""),
                                       "uid": .string(policy.uid ?? "")]),
            "type": .string(type), "reason": .string(reason), "message": .string(message),
            "firstTimestamp": .string(timestamp), "lastTimestamp": .string(timestamp), "count": .number(1),
            "source": .object(["component": .string("backstop-controller")]),
        ]
        logger.info("\(policy.namespace ?? "")/\(policy.name): \(reason): \(message)")
        do { _ = try await client.create(.events, namespace: policy.namespace, event) }
        catch { logger.warning("cannot record event \(reason): \(error)") }
    }

    static func json(_ value: some Encodable) throws -> JSONValue {
        try JSONDecoder().decode(JSONValue.self, from: JSONEncoder().encode(value))
    }
}

extension ObjectMeta {
    init(_ metadata: BackupPolicy.Metadata) {
        self.init(name: metadata.name, namespace: metadata.namespace, labels: metadata.labels)
        uid = metadata.uid
    }
}

/// What earlier passes learnt, so the next pass neither repeats a write the cache has not
/// caught up with (a watch event behind) nor re-reads a CronJob already found to match.
/// Hashes, not values: this is kept for every policy.
final class ReconcileMemo: Sendable {
    private struct State {
        /// policy key → hash of the status written, and the version it was written over.
        var statuses: [String: (status: Int, over: String?)] = [:]
        /// policy key → the "does not read" message written for an undecodable policy.
        var conditions: [String: String] = [:]
        /// CronJob key → its version and the hash of the spec it was found to contain.
        var cronJobs: [String: (version: String?, wanted: Int)] = [:]
    }
    private let state = Mutex(State())

    func isWritten(_ key: String, status: BackupPolicy.Status, over version: String?) -> Bool {
        state.withLock { $0.statuses[key].map { $0.status == status.hashValue && $0.over == version } ?? false }
    }

    func remember(_ key: String, status: BackupPolicy.Status, over version: String?) {
        state.withLock {
            $0.statuses[key] = (status.hashValue, version)
            $0.conditions[key] = nil
        }
    }

    func condition(_ key: String) -> String? { state.withLock { $0.conditions[key] } }

    func remember(_ key: String, condition: String) {
        state.withLock {
            $0.conditions[key] = condition
            $0.statuses[key] = nil
        }
    }

    func isVerified(_ cronJob: String, version: String?, wanted: Int) -> Bool {
        state.withLock { $0.cronJobs[cronJob].map { $0.version == version && $0.wanted == wanted } ?? false }
    }

    func verified(_ cronJob: String, version: String?, wanted: Int) {
        state.withLock { $0.cronJobs[cronJob] = (version, wanted) }
    }

    /// A deleted policy: forget it and its CronJobs (the name prefix may catch another
    /// policy's CronJob too, which then costs that one a single re-read).
    func forget(_ key: String) {
        state.withLock { state in
            state.statuses[key] = nil
            state.conditions[key] = nil
            state.cronJobs = state.cronJobs.filter { !$0.key.hasPrefix(key + "-") }
        }
    }
}
