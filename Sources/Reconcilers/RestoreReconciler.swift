public import BackstopAPI
public import Foundation
public import HTTP
public import KubeClient
public import KubeObjects
public import KubeRuntime
public import Logging
internal import Workloads

/// A BackupRestore as watched: the typed restore, or why it does not decode (a restore the API
/// server accepted may still not read, e.g. under a hand-made CRD).
public struct ObservedRestore: KubeObject, JSONValueDecodable {
    public var metadata: ObjectMeta
    public let restore: BackupRestore?
    public let decodingError: String?

    public static var unreadFields: [[String]] { [["metadata", "managedFields"]] }

    public init(json: JSONValue) throws(JSONValue.ShapeError) {
        metadata = try ObjectMeta(json: json["metadata"] ?? .null)
        metadata.managedFields = nil
        do {
            restore = try JSONDecoder().decode(BackupRestore.self, from: json.encoded())
            decodingError = nil
        } catch let error as DecodingError {
            restore = nil
            decodingError = ObservedPolicy.describe(error)
        } catch {
            restore = nil
            decodingError = "\(error)"
        }
    }

    public init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        try restore.encode(to: encoder)
    }
}

/// Reconciles a BackupRestore into exactly one Job (named after the restore, owned by it,
/// never retried, never made twice) and its status from that Job and the worker's report.
/// A restore is one-shot: once it has succeeded or failed, nothing more happens; a new
/// restore is a new BackupRestore.
public struct RestoreReconciler: Sendable {
    let client: KubeClient
    let builder: CronJobBuilder
    let jobs: ObjectCache<ObservedJob>
    let logger: Logger
    let metrics: Metrics
    let events: EventRecorder
    let now: @Sendable () -> Date

    public init(client: KubeClient, workerImage: String, jobs: ObjectCache<ObservedJob>, logger: Logger, metrics: Metrics = Metrics(),
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.client = client
        self.builder = CronJobBuilder(settings: .init(workerImage: workerImage))
        self.jobs = jobs
        self.logger = logger
        self.metrics = metrics
        self.events = EventRecorder(client: client, component: "backstop-controller", logger: logger, now: now)
        self.now = now
    }

    /// How long a restore whose policy is missing waits before it is looked at again: the
    /// policy may be applied after the restore (e.g. in one `kubectl apply -f dir/`).
    static let missingPolicyRetry: Duration = .seconds(60)

    public func reconcile(key: String, object: ObservedRestore?) async throws -> ReconcileAction {
        guard let object else { return .awaitChange }
        guard let restore = object.restore else {
            let message = "the BackupRestore does not read: \(object.decodingError ?? "unknown error"); fix the field and apply again"
            var status = BackupRestore.Status()
            status.phase = .failed
            status.message = message
            setReady(&status, false, .invalidSpec, message, generation: object.metadata.generation)
            try await write(status, over: nil, of: object.metadata)
            return .awaitChange
        }
        let current = restore.status ?? BackupRestore.Status()
        if current.phase?.isFinished == true { return .awaitChange }

        let jobName = CronJobBuilder.restoreJobName(restore.metadata.name)
        let namespace = restore.metadata.namespace ?? client.connection.namespace
        var status = current
        let step: Step
        if let job = try await job(named: jobName, namespace: namespace, madeBefore: current.jobName != nil) {
            step = try await follow(job, of: restore, namespace: namespace, status: &status)
        } else if current.jobName != nil {
            step = jobLost(jobName, of: restore, status: &status)
        } else {
            step = try await start(restore, jobName: jobName, namespace: namespace, status: &status)
        }
        let wrote = try await write(status, over: current, of: restore.metadata)
        if wrote, let event = step.event {
            await events.record(Self.involvedObject(restore.metadata), event.type, reason: event.reason, message: event.message)
        }
        return step.action
    }

    /// What a pass did besides the status: the Event to record with it, and when to look again.
    struct Step {
        var event: PlannedEvent?
        var action: ReconcileAction = .awaitChange
    }

    /// The restore's Job from the cache; asked of the server when an earlier pass made it and
    /// the watch has not shown it yet.
    func job(named name: String, namespace: String, madeBefore: Bool) async throws(KubeAPIError) -> ObservedJob? {
        if let cached = jobs.get("\(namespace)/\(name)") { return cached }
        guard madeBefore else { return nil }
        do {
            return try await client.get(.jobs, namespace: namespace, name: name, as: ObservedJob.self)
        } catch where error.isNotFound {
            return nil
        }
    }

    /// A Job exists: its state becomes the restore's; a finished one's pods give the report.
    func follow(_ job: ObservedJob, of restore: BackupRestore, namespace: String, status: inout BackupRestore.Status) async throws(KubeAPIError) -> Step {
        let generation = restore.metadata.generation
        guard Self.controls(job, restore) else {
            let message = Self.conflictMessage(job.metadata.name)
            let known = status.conditions?[.ready]?.reason == .jobConflict
            setReady(&status, false, .jobConflict, message, generation: generation)
            return Step(event: known ? nil : PlannedEvent(.warning, Condition.Reason.jobConflict.rawValue, message), action: .requeue(after: .seconds(300)))
        }
        guard let outcome = job.outcome, let finished = job.finishedAt else {
            status.phase = job.startedAt == nil ? .pending : .running
            status.startedAt = job.startedAt
            status.conditions.set(Condition(type: .restored, status: .unknown, reason: .restoreRunning,
                                            message: "restoring \(restore.spec.backup ?? "latest") into \(status.targetDatabase ?? "the target")",
                                            lastTransitionTime: KubeTimestamp(now()), observedGeneration: generation))
            return Step()
        }
        let pods = try await client.listAll(.pods, namespace: namespace, labelSelector: "job-name=\(job.metadata.name)", as: ObservedPod.self).items
        let run = PolicyReconciler.run(of: job, environment: restore.spec.environment, outcome: outcome, finished: finished, pods: pods)
        Self.record(run, startedAt: job.startedAt, in: &status)
        let reason: Condition.Reason = run.succeeded ? .restoreSucceeded : .restoreFailed
        status.conditions.set(Condition(type: .restored, status: .init(run.succeeded), reason: reason, message: status.message ?? "",
                                        lastTransitionTime: finished, observedGeneration: generation))
        metrics.recordRestore(succeeded: run.succeeded)
        return Step(event: PlannedEvent(run.succeeded ? .normal : .warning, reason.rawValue, status.message ?? ""))
    }

    /// Made once and gone before it finished: the restore failed, and no second Job is made.
    func jobLost(_ jobName: String, of restore: BackupRestore, status: inout BackupRestore.Status) -> Step {
        status.phase = .failed
        status.completedAt = KubeTimestamp(now())
        status.message = "the restore Job \(jobName) was deleted before it finished; create a new BackupRestore to restore again"
        status.conditions.set(Condition(type: .restored, status: .false, reason: .restoreFailed, message: status.message ?? "",
                                        lastTransitionTime: KubeTimestamp(now()), observedGeneration: restore.metadata.generation))
        return Step(event: PlannedEvent(.warning, Condition.Reason.restoreFailed.rawValue, status.message ?? ""))
    }

    /// No Job yet: made now, or refused with the reason on the status.
    func start(_ restore: BackupRestore, jobName: String, namespace: String, status: inout BackupRestore.Status) async throws(KubeAPIError) -> Step {
        let generation = restore.metadata.generation
        switch try await createJob(for: restore, named: jobName, namespace: namespace) {
        case .created(let target):
            status.phase = .pending
            status.jobName = jobName
            status.targetDatabase = target
            status.observedGeneration = generation
            let message = "Job \(jobName) restores \(restore.spec.backup ?? "latest") of \(restore.spec.policy)/\(restore.spec.environment) into \(target)"
            setReady(&status, true, .jobCreated, message, generation: generation)
            return Step(event: PlannedEvent(.normal, Condition.Reason.jobCreated.rawValue, message))
        case .refused(let reason, let message, let retry):
            let known = status.conditions?[.ready]?.message == message
            setReady(&status, false, reason, message, generation: generation)
            return Step(event: known ? nil : PlannedEvent(.warning, reason.rawValue, message), action: retry.map { .requeue(after: $0) } ?? .awaitChange)
        }
    }

    static func conflictMessage(_ jobName: String) -> String {
        "Job \(jobName) exists and is not this BackupRestore's: delete it, or create the restore under another name"
    }

    enum Creation {
        case created(targetDatabase: String)
        /// No Job: why, and when to look again (nil: when the restore changes).
        case refused(Condition.Reason, String, retry: Duration?)
    }

    /// Builds the Job from the restore and its policy, and creates it.
    func createJob(for restore: BackupRestore, named jobName: String, namespace: String) async throws(KubeAPIError) -> Creation {
        guard let observed = try await policy(named: restore.spec.policy, namespace: namespace) else {
            return .refused(.policyNotFound, "spec.policy: no BackupPolicy \(restore.spec.policy) in namespace \(namespace); create it, or name an existing one",
                            retry: Self.missingPolicyRetry)
        }
        guard let policy = observed.policy else {
            return .refused(.invalidSpec, "BackupPolicy \(restore.spec.policy) does not read (\(observed.decodingError ?? "unknown error")); fix the policy first",
                            retry: Self.missingPolicyRetry)
        }
        let job: Job
        let target: String
        do {
            job = try builder.restoreJob(for: restore, policy: policy)
            // A point-in-time restore fills a claim, not a database: the status names the claim.
            let resolved = try restore.resolve(against: policy)
            target = resolved.pointInTime.map { "claim \($0.claimName) (\($0.dataDirectory))" } ?? resolved.target.name ?? ""
        } catch {
            return .refused(.invalidSpec, error.description, retry: nil)
        }
        do {
            let _: Acknowledgement = try await client.create(.jobs, namespace: namespace, job, as: Acknowledgement.self)
        } catch where error.isAlreadyExists {
            // Made by a pass whose answer was lost, or by someone else: the next pass reads it.
            let existing = try await client.get(.jobs, namespace: namespace, name: jobName, as: ObservedJob.self)
            guard Self.controls(existing, restore) else {
                return .refused(.jobConflict, Self.conflictMessage(jobName), retry: .seconds(300))
            }
        }
        logger.info("created restore Job \(namespace)/\(jobName) for BackupRestore \(restore.metadata.name)")
        return .created(targetDatabase: target)
    }

    func policy(named name: String, namespace: String) async throws(KubeAPIError) -> ObservedPolicy? {
        do {
            return try await client.get(.backupPolicies, namespace: namespace, name: name, as: ObservedPolicy.self)
        } catch where error.isNotFound {
            return nil
        }
    }

    static func controls(_ job: ObservedJob, _ restore: BackupRestore) -> Bool {
        guard let uid = restore.metadata.uid else { return false }
        return job.metadata.ownerReferences?.contains { $0.uid == uid && $0.controller == true } ?? false
    }

    /// A finished restore's status, from its Job's outcome and the worker's report.
    static func record(_ run: FinishedRun, startedAt: KubeTimestamp?, in status: inout BackupRestore.Status) {
        status.phase = run.succeeded ? .succeeded : .failed
        status.startedAt = startedAt ?? status.startedAt
        status.completedAt = run.time
        status.message = run.message.isEmpty ? (run.succeeded ? "restored" : "the restore failed") : run.message
        if let report = run.report {
            status.backupID = report.backupID?.rawValue ?? status.backupID
            status.durationSeconds = (report.durationSeconds * 10).rounded() / 10
            status.storedBytes = report.storedBytes
            status.dumpBytes = report.dumpBytes
            status.tablesChecked = report.tablesChecked
        } else if let startedAt {
            status.durationSeconds = max(0, run.time.date.timeIntervalSince(startedAt.date).rounded())
        }
    }

    func setReady(_ status: inout BackupRestore.Status, _ ready: Bool, _ reason: Condition.Reason, _ message: String, generation: Int?) {
        status.conditions.set(Condition(type: .ready, status: .init(ready), reason: reason, message: message,
                                        lastTransitionTime: KubeTimestamp(now()), observedGeneration: generation))
    }

    /// One merge patch of what changed; nothing when nothing did. Returns whether it wrote.
    @discardableResult
    func write(_ status: BackupRestore.Status, over current: BackupRestore.Status?, of metadata: ObjectMeta) async throws(KubeAPIError) -> Bool {
        guard let patch = JSONValue.mergePatch(from: PolicyReconciler.json(current ?? BackupRestore.Status()), to: PolicyReconciler.json(status)) else {
            return false
        }
        do {
            let _: Acknowledgement = try await client.patch(.backupRestores, namespace: metadata.namespace, name: metadata.name,
                                                            .merge(["status": patch]), subresource: "status")
        } catch where error.isNotFound {
            return false
        }
        return true
    }

    static func involvedObject(_ metadata: ObjectMeta) -> EventRecorder.InvolvedObject {
        .init(apiVersion: BackupRestore.apiVersion, kind: BackupRestore.kind, namespace: metadata.namespace, name: metadata.name, uid: metadata.uid)
    }
}

extension Optional where Wrapped == [Condition] {
    /// Sets a condition on a status's optional list.
    mutating func set(_ condition: Condition) {
        var conditions = self ?? []
        conditions.set(condition)
        self = conditions
    }
}

extension RestoreReconciler {
    /// The BackupRestore controller for one scope: the restore watch, and the watch of the
    /// restore Jobs (by label) into the cache the reconciler reads.
    public static func controller(client: KubeClient, namespace: String?, workerImage: String, workers: Int = 1,
                                  logger: Logger, metrics: Metrics = Metrics(), backoff: Backoff = Backoff(),
                                  now: @escaping @Sendable () -> Date = { Date() }) -> Controller<ObservedRestore> {
        let jobs = ObjectCache<ObservedJob>()
        let reconciler = RestoreReconciler(client: client, workerImage: workerImage, jobs: jobs, logger: logger, metrics: metrics, now: now)
        let selector = "app.kubernetes.io/managed-by=\(CronJobBuilder.managedBy),app.kubernetes.io/name=\(CronJobBuilder.restoreWorkerName)"
        return Controller(
            watcher: Watcher(client: client, resource: .backupRestores, namespace: namespace, backoff: backoff),
            owned: [
                .init(Watcher(client: client, resource: .jobs, namespace: namespace, labelSelector: selector, backoff: backoff),
                      cache: jobs, owner: { job in
                          guard let restore = job.metadata.labels?[CronJobBuilder.restoreLabel], let namespace = job.metadata.namespace else { return nil }
                          return "\(namespace)/\(restore)"
                      }),
            ],
            workers: workers, logger: logger,
            // The spec and deletion matter; the status is this controller's own.
            needsReconcile: { old, new in old?.metadata.generation != new.metadata.generation || old?.metadata.deletionTimestamp != new.metadata.deletionTimestamp },
            errorPolicy: PolicyReconciler.errorPolicy) { key, object in
                try await reconciler.reconcile(key: key, object: object)
            }
    }
}
