internal import BackstopAPI
public import Foundation
public import KubeClient
internal import KubeObjects
public import KubeRuntime
public import Logging
internal import Synchronization
internal import Workloads

/// Level-based reconcile of one BackupPolicy, in three steps: observe (the owned-object
/// caches, and the pods of Jobs that finished since the status was written), plan
/// (`PolicyPlan`: pure), apply (server-side apply of CronJobs as field manager `backstop`,
/// deletions, run-now Jobs, then one merge patch of the status). A converged policy costs no
/// request at all: nothing is written when nothing changed.
public struct PolicyReconciler: Sendable {
    /// The field manager of every CronJob the controller applies.
    public static let fieldManager = "backstop"

    let client: KubeClient
    let workerImage: String
    let owned: OwnedObjects
    let logger: Logger
    let metrics: Metrics
    let capabilities: ServerCapabilities
    let events: EventRecorder
    let memo = ReconcileMemo()
    /// Delivers what `status.notifications` says is owed; none: nothing is sent.
    let notifications: NotificationOutbox?
    /// The clock, injected so tests can name times.
    let now: @Sendable () -> Date

    public init(client: KubeClient, workerImage: String, owned: OwnedObjects, logger: Logger, metrics: Metrics = Metrics(),
                capabilities: ServerCapabilities = ServerCapabilities(), notifications: NotificationOutbox? = nil,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.notifications = notifications
        self.client = client
        self.workerImage = workerImage
        self.owned = owned
        self.logger = logger
        self.metrics = metrics
        self.capabilities = capabilities
        self.events = EventRecorder(client: client, component: "backstop-controller", logger: logger, now: now)
        self.now = now
    }

    /// A policy needs a pass when what the user controls changed — spec (generation), labels,
    /// annotations (run-now), deletion — not when only the status this controller wrote did.
    public static let needsReconcile: @Sendable (ObservedPolicy?, ObservedPolicy) -> Bool = { old, new in
        guard let old else { return true }
        return old.metadata.generation != new.metadata.generation || old.metadata.annotations != new.metadata.annotations
            || old.metadata.labels != new.metadata.labels || old.metadata.deletionTimestamp != new.metadata.deletionTimestamp
    }

    /// Which failures are worth retrying soon: the server's or the network's may pass; a
    /// refusal (403, 404, 422) will not, so it is tried again in five minutes or when the
    /// policy changes.
    public static let errorPolicy: @Sendable (String, any Error) -> ErrorAction = { _, error in
        guard let error = error as? KubeAPIError, error.kind == .api, let code = error.code else { return .retryWithBackoff }
        return [400, 403, 404, 422].contains(code) ? .requeue(after: .seconds(300)) : .retryWithBackoff
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
        let cronJobs = owned.cronJobs.objects(inGroup: key)
        let jobs = owned.jobs.objects(inGroup: key)
        let finished = try await finishedRuns(of: jobs, namespace: namespace, status: policy.status)
        var observation = PolicyObservation(
            policy: policy, cronJobs: cronJobs, jobs: jobs, runs: finished.backups, drills: finished.drills, archivingChecks: finished.archiving,
            server: capabilities.snapshot, now: now(), acceptedFieldHashes: memo.acceptedFieldHashes(for: cronJobs))
        observation.notificationOutcomes = notifications?.outcomes(for: key, observed: policy.status?.notifications,
                                                                   targets: Set((policy.spec.notifications ?? []).map(\.name))) ?? []
        if let notifications { observation.notificationRetryBase = notifications.retryBase / .seconds(1) }

        var plan: PolicyPlan?
        var invalid = await missingServiceAccount(policy, namespace: namespace)
        let waitsForAccount = invalid != nil
        var outcome = ApplyOutcome()
        // At most twice: a server that refuses a field it does not serve is planned for again.
        for _ in 0..<(waitsForAccount ? 0 : 2) {
            do {
                plan = try PolicyPlan.make(observation, workerImage: workerImage)
            } catch {
                invalid = error.description
                break
            }
            guard let planned = plan else { break }
            memo.confirmed(planned.confirmed, among: cronJobs)
            let (result, refusedTimeZone) = try await execute(planned, policy: policy, namespace: namespace)
            outcome = result
            guard refusedTimeZone else { break }
            observation.server = capabilities.snapshot
        }

        let update = PolicyPlan.status(observation, plan: plan, invalid: invalid, outcome: outcome)
        var updated = policy
        updated.status = update.status
        metrics.record(updated)
        let wrote = try await writeStatus(key: key, policy: policy, status: update.status)
        // What the pass did happened either way; what the status says is told only once written.
        for event in update.actionEvents + (wrote == true ? update.statusEvents : []) {
            await events.record(Self.involvedObject(policy.metadata), event.type, reason: event.reason, message: event.message)
        }
        // The cache is behind the server: the watch brings the newer policy in a moment and
        // enqueues it; this pass wrote nothing and sends nothing.
        guard wrote != nil else { return .requeue(after: .milliseconds(200)) }
        // Only now, with the status holding what is owed, is it sent.
        notifications?.dispatch(NotificationLedger.due(update.status.notifications, now: observation.now), of: updated, key: key)
        // Only an edit can mend an invalid policy. Someone else's CronJob may be deleted or a
        // refused apply allowed without the policy changing (neither is watched): looked at
        // again in minutes, not hot. The RPO is a clock that needs looking at anyway.
        // ServiceAccounts are not watched: one made after the policy is seen within a minute.
        if waitsForAccount { return .requeue(after: .seconds(60)) }
        if invalid != nil { return .awaitChange }
        // Someone else changed a CronJob while it was being applied: look again now.
        if memo.takeUnexplained(key) { return .requeue(after: .zero) }
        let blocked = !outcome.conflicts.isEmpty || !(plan?.conflicts.isEmpty ?? true) || !outcome.failures.isEmpty
        return .requeue(after: blocked ? min(update.nextCheck, .seconds(300)) : update.nextCheck)
    }

    /// The first ServiceAccount an environment names to read Secrets and ConfigMaps that does
    /// not exist, as `Ready=False` says it: backup pods could not even be created. The
    /// controller may `get` ServiceAccounts and nothing more of them; a refusal or an
    /// unreachable server is not taken as missing.
    func missingServiceAccount(_ policy: BackupPolicy, namespace: String) async -> String? {
        // Most policies store no objects: they pay for no second resolve here.
        guard policy.spec.objects != nil || policy.spec.environments.contains(where: { $0.objects != nil }),
              let environments = try? policy.resolvedEnvironments() else { return nil }
        var checked: Set<String> = []
        for (index, environment) in environments.enumerated() {
            guard let account = environment.objects?.serviceAccountName, checked.insert(account).inserted else { continue }
            do {
                _ = try await client.get(.serviceAccounts, namespace: namespace, name: account, as: Acknowledgement.self)
            } catch where error.isNotFound {
                let field = policy.spec.environments[index].objects != nil ? "spec.environments[\(index)].objects" : "spec.objects"
                return "\(field).serviceAccountName: ServiceAccount \(account) does not exist in namespace \(namespace); create it and bind it to a Role with get and list on the selected Secrets and ConfigMaps (k8s/examples/objects-rbac.yaml)"
            } catch {
                logger.warning("cannot check ServiceAccount \(namespace)/\(account) of policy \(policy.metadata.name): \(error.message)")
            }
        }
        return nil
    }

    // MARK: Apply

    /// Carries out a plan. Returns how it went, and whether the server refused CronJob time
    /// zones (the plan must then be made again without them).
    func execute(_ plan: PolicyPlan, policy: BackupPolicy, namespace: String) async throws -> (ApplyOutcome, Bool) {
        var outcome = ApplyOutcome()
        for application in plan.apply {
            let name = application.cronJob.metadata.name
            switch await applyReporting(application, namespace: namespace, policy: policy) {
            case .created: outcome.created.append(name)
            case .updated: outcome.updated.append(name)
            case .someoneElses:
                outcome.conflicts[name] = "CronJob \(name) exists and is not this policy's: delete or rename it, or rename the environment"
            case .refused(let message): outcome.failures[name] = message
            case .timeZoneUnserved(let message):
                if capabilities.cronJobTimeZoneRefused() {
                    logger.warning("the API server does not serve CronJob spec.timeZone (\(message)); CronJobs are applied without it")
                }
                return (outcome, true)
            case .failed(let error): throw error
            }
        }
        for name in plan.delete {
            try await deleteCronJob(name, namespace: namespace)
            outcome.deleted.append(name)
        }
        for job in plan.runNow?.jobs ?? [] where try await start(job, namespace: namespace) {
            outcome.runNowStarted.append(job.metadata.labels?[CronJobBuilder.environmentLabel] ?? "")
        }
        return (outcome, false)
    }

    /// Deletes a CronJob (and, in the background, its Jobs); one already gone (the watch has
    /// not said so yet) is fine.
    func deleteCronJob(_ name: String, namespace: String) async throws(KubeAPIError) {
        do {
            try await client.delete(.cronJobs, namespace: namespace, name: name, propagation: .background)
        } catch where error.isNotFound {}
    }

    /// Creates a run-now Job; false when it exists (started by an earlier pass for this value).
    func start(_ job: Job, namespace: String) async throws(KubeAPIError) -> Bool {
        do {
            _ = try await client.create(.jobs, namespace: namespace, job)
            return true
        } catch where error.isAlreadyExists {
            return false
        }
    }

    enum ApplyResult {
        case created, updated, someoneElses
        /// The server refused it for good (403, 422): shown on the policy, not retried hot.
        case refused(String)
        case timeZoneUnserved(String)
        /// Worth retrying (5xx, transport).
        case failed(KubeAPIError)
    }

    /// Applies one CronJob and says how it went, sorting the server's answers.
    func applyReporting(_ application: PolicyPlan.Application, namespace: String, policy: BackupPolicy) async -> ApplyResult {
        let started = now()
        let applied: AppliedObject?
        do {
            applied = try await apply(application.cronJob, configuration: application.configuration, namespace: namespace,
                                      force: application.force, policy: policy)
        } catch {
            if error.isUnservedField && application.cronJob.spec.timeZone != nil { return .timeZoneUnserved(error.message) }
            if error.kind == .api && [400, 403, 422].contains(error.code ?? 0) { return .refused(error.message) }
            return .failed(error)
        }
        guard let applied else { return .someoneElses }
        // The server says 201 or 200, which the client does not pass on: an object made by
        // this very apply was created no earlier than the request (times are whole seconds).
        let creation = applied.creationTimestamp
        return !application.exists && (creation.map { $0.date >= started.addingTimeInterval(-1) } ?? false) ? .created : .updated
    }

    /// Server-side apply of one CronJob. Returns nil when an object of that name is someone
    /// else's: it is never applied to. Without force, a field another manager set with a
    /// different value is a 409: then the object is read to learn whose it is, and the
    /// apply forced only when the policy controls it.
    func apply(_ cronJob: CronJob, configuration: JSONValue, namespace: String, force: Bool,
               policy: BackupPolicy) async throws(KubeAPIError) -> AppliedObject? {
        do {
            return try await send(cronJob, configuration: configuration, namespace: namespace, force: force, policy: policy)
        } catch where !force && (error.isConflict || Self.isSecondController(error)) {
            let current = try await client.get(.cronJobs, namespace: namespace, name: cronJob.metadata.name, as: ObservedCronJob.self)
            guard current.isControlled(by: policy.metadata.uid) else { return nil }
            return try await apply(cronJob, configuration: configuration, namespace: namespace, force: true, policy: policy)
        }
    }

    /// The apply request itself, with the memo told it is in flight: the watch may bring its
    /// echo before the answer names the version to recognise it by.
    private func send(_ cronJob: CronJob, configuration: JSONValue, namespace: String, force: Bool,
                      policy: BackupPolicy) async throws(KubeAPIError) -> AppliedObject {
        let key = "\(namespace)/\(cronJob.metadata.name)", owner = "\(namespace)/\(policy.metadata.name)"
        memo.applying(key)
        do {
            let applied: AppliedObject = try await client.patch(.cronJobs, namespace: namespace, name: cronJob.metadata.name,
                                                                .apply(configuration, fieldManager: Self.fieldManager, force: force))
            memo.applied(key, answer: applied, policy: owner)
            return applied
        } catch {
            memo.applied(key, answer: nil, policy: owner)
            throw error
        }
    }

    /// The server refuses a second controller reference: the object is another controller's.
    static func isSecondController(_ error: KubeAPIError) -> Bool {
        error.code == 422 && error.message.contains("Only one reference can have Controller set to true")
    }

    // MARK: Observe

    /// The newest finished run of each environment that the status does not record yet, from
    /// the policy's Jobs (as cached) and their pods, backups, drills and archiving checks apart:
    /// read only for such a run, so a converged policy costs no request.
    func finishedRuns(of jobs: [ObservedJob], namespace: String, status: BackupPolicy.Status?) async throws(KubeAPIError)
        -> (backups: [String: FinishedRun], drills: [String: FinishedRun], archiving: [String: FinishedRun]) {
        var newest: [String?: [String: ObservedJob]] = [:]
        for job in jobs {
            guard let environment = job.environment, job.outcome != nil, let finished = job.finishedAt else { continue }
            if let known = newest[job.task]?[environment]?.finishedAt, known >= finished { continue }
            newest[job.task, default: [:]][environment] = job
        }
        func read(_ jobs: [String: ObservedJob], known: (BackupPolicy.EnvironmentStatus?) -> KubeTimestamp?) async throws(KubeAPIError) -> [String: FinishedRun] {
            var runs: [String: FinishedRun] = [:]
            for (environment, job) in jobs {
                guard let finished = job.finishedAt, let outcome = job.outcome else { continue }
                if let recorded = known(status?.environments?.first { $0.name == environment }), finished <= recorded { continue }
                let pods = try await client.listAll(.pods, namespace: namespace, labelSelector: "job-name=\(job.metadata.name)", as: ObservedPod.self).items
                runs[environment] = Self.run(of: job, environment: environment, outcome: outcome, finished: finished, pods: pods)
            }
            return runs
        }
        let backups = try await read(newest[nil] ?? [:]) { [$0?.lastSuccessfulBackup?.time, $0?.lastFailure?.time].compactMap { $0 }.max() }
        let drills = try await read(newest[CronJobBuilder.drillTask] ?? [:]) { $0?.lastDrill?.time }
        let archiving = try await read(newest[CronJobBuilder.archivingTask] ?? [:]) { $0?.walArchiving?.checkedAt }
        return (backups, drills, archiving)
    }

    /// A Job's result: its condition says whether it succeeded; the report is the succeeded
    /// pod's, or for a failed Job the newest failed pod's by termination time (pods listed by
    /// name come in no useful order).
    static func run(of job: ObservedJob, environment: String, outcome: ObservedJob.Outcome, finished: KubeTimestamp, pods: [ObservedPod]) -> FinishedRun {
        let succeeded = outcome == .complete
        let candidates = pods.filter { succeeded ? $0.phase == "Succeeded" : $0.phase == "Failed" }
        let chosen = candidates.max { ($0.terminated?.finishedAt ?? KubeTimestamp(.distantPast)) < ($1.terminated?.finishedAt ?? KubeTimestamp(.distantPast)) }
        let message = chosen?.terminated?.message ?? ""
        let report = message.split(separator: "\n").last.flatMap { try? JSONDecoder().decode(WorkerReport.self, from: Data($0.utf8)) }
        let text = report?.message ?? (message.isEmpty ? (job.message ?? (succeeded ? "" : "the Job failed")) : String(message.suffix(300)))
        return FinishedRun(environment: environment, jobName: job.metadata.name, time: finished, succeeded: succeeded, report: report, message: text)
    }

    // MARK: Status

    /// One merge patch of what changed; nothing when nothing did, or when the same status was
    /// already written over the version the cache still shows (its watch event is on the
    /// way). True when it wrote, false when there was nothing to write, nil when the server
    /// holds a newer policy than the one this pass started from.
    func writeStatus(key: String, policy: BackupPolicy, status: BackupPolicy.Status) async throws(KubeAPIError) -> Bool? {
        guard let patch = JSONValue.mergePatch(from: Self.json(policy.status ?? BackupPolicy.Status()), to: Self.json(status)),
              !memo.isWritten(key, status: status, over: policy.metadata.resourceVersion) else { return false }
        // Conditional on the version this pass started from: a pass that began from a cached
        // status older than the server's (the watch has not brought the last write yet) would
        // otherwise write back what it did not see, such as a notification already delivered.
        var body: JSONValue = ["status": patch]
        if let version = policy.metadata.resourceVersion { body["metadata"] = ["resourceVersion": .string(version)] }
        do {
            let _: Acknowledgement = try await client.patch(.backupPolicies, namespace: policy.metadata.namespace, name: policy.metadata.name,
                                                            .merge(body), subresource: "status")
        } catch where error.isNotFound {
            return false  // deleted meanwhile
        } catch where error.code == 409 {
            return nil
        }
        memo.remember(key, status: status, over: policy.metadata.resourceVersion)
        return true
    }

    /// A policy that does not decode cannot be built into CronJobs; its status says which
    /// field is wrong, keeping its other conditions.
    func reportUndecodable(_ object: ObservedPolicy) async throws(KubeAPIError) {
        let message = "the policy does not read: \(object.decodingError ?? "unknown error"); fix the field and apply again"
        guard memo.condition(object.key) != message else { return }
        var conditions = object.statusOfUndecodable?.conditions ?? []
        conditions.set(Condition(type: .ready, status: .false, reason: .invalidSpec, message: message, lastTransitionTime: KubeTimestamp(now()),
                                 observedGeneration: object.metadata.generation))
        let patch: JSONValue = ["status": ["conditions": Self.json(conditions),
                                           "observedGeneration": object.metadata.generation.map { .number(Double($0)) } ?? .null]]
        let _: JSONValue = try await client.patch(.backupPolicies, namespace: object.metadata.namespace, name: object.metadata.name,
                                                  .merge(patch), subresource: "status")
        memo.remember(object.key, condition: message)
        await events.record(Self.involvedObject(object.metadata), .warning, reason: "InvalidSpec", message: message)
    }

    static func involvedObject(_ metadata: ObjectMeta) -> EventRecorder.InvolvedObject {
        .init(apiVersion: BackupPolicy.apiVersion, kind: BackupPolicy.kind, namespace: metadata.namespace, name: metadata.name, uid: metadata.uid)
    }

    /// A value as JSON; the types encoded here (CronJobs, statuses) hold plain strings,
    /// numbers and lists, so encoding cannot fail.
    static func json(_ value: some Encodable) -> JSONValue {
        (try? JSONValueEncoder().encode(value)) ?? .null
    }
}

/// The metadata of an applied object, as the server answers the apply.
struct AppliedObject: Decodable, Sendable, JSONValueDecodable {
    let resourceVersion: String?
    let creationTimestamp: KubeTimestamp?
    /// The fields are checked from the watch (`ObservedCronJob`), not here.
    static var unreadFields: [[String]] { [["spec"], ["status"], ["metadata", "managedFields"]] }

    /// `Decodable` as the client requires; it reads this type through `init(json:)`.
    init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    init(json: JSONValue) throws(JSONValue.ShapeError) {
        resourceVersion = json[path: "metadata.resourceVersion"]?.string
        creationTimestamp = json[path: "metadata.creationTimestamp"]?.string.flatMap(KubeTimestamp.init)
    }
}

/// A Job's pod, as far as its result goes: phase and how its container ended. Read leniently;
/// a pod that says nothing useful is simply not chosen.
struct ObservedPod: Decodable, Sendable, JSONValueDecodable {
    struct Terminated: Sendable {
        let message: String?
        let finishedAt: KubeTimestamp?
    }

    let phase: String?
    let terminated: Terminated?

    static var unreadFields: [[String]] { [["spec"]] }

    /// `Decodable` as the client requires; it reads this type through `init(json:)`.
    init(from decoder: any Decoder) throws {
        self.init(json: try JSONValue(from: decoder))
    }

    init(json: JSONValue) {
        phase = json[path: "status.phase"]?.string
        terminated = json[path: "status.containerStatuses"]?[arrayIndex: 0]?[path: "state.terminated"].map { state in
            Terminated(message: state["message"]?.string, finishedAt: state["finishedAt"]?.string.flatMap(KubeTimestamp.init))
        }
    }
}

/// What earlier passes learnt, so the next pass neither repeats a status write the cache has
/// not caught up with (a watch event behind), nor recomputes the fields of a CronJob already
/// found to own exactly its own, nor reconciles again for the echo of its own apply. Hashes,
/// not values: this is kept for every policy.
final class ReconcileMemo: Sendable {
    private struct State {
        /// policy key → hash of the status written, and the version it was written over.
        var statuses: [String: (status: Int, over: String?)] = [:]
        /// policy key → the "does not read" message written for an undecodable policy.
        var conditions: [String: String] = [:]
        /// CronJob key → a desired-state hash, and the hash of the fields Backstop's apply
        /// owns at it, as confirmed by a plan or shown by the echo of the apply.
        var applied: [String: (specHash: String, fields: UInt64)] = [:]
        /// CronJob key → the resourceVersion the server answered the last apply with: the
        /// watch event of that version is the apply's echo, which needs no reconcile.
        var appliedVersions: [String: String] = [:]
        /// CronJob key → the watch events that came while this controller's apply of it was
        /// under way: the server sends the echo to watches before it answers, so which event
        /// is the echo is known only from the answer.
        var inFlight: [String: [Sighting]] = [:]
        /// Policy keys whose CronJobs changed during an apply in a way the apply does not
        /// explain (another writer): their pass asks for another.
        var unexplained: Set<String> = []
    }

    private struct Sighting {
        let resourceVersion: String?
        let specHash: String?
        let fields: UInt64?
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

    /// An apply of the CronJob `key` is about to be sent.
    func applying(_ key: String) {
        state.withLock { $0.inFlight[key] = [] }
    }

    /// The apply of `key` was answered (nil: it failed). Its echo, if the watch brought it
    /// already, is taken as `isEcho` would have; any other event seen meanwhile was someone
    /// else's change, and the owning policy's pass is marked to ask for another.
    func applied(_ key: String, answer: AppliedObject?, policy: String) {
        state.withLock { state in
            let seen = state.inFlight.removeValue(forKey: key) ?? []
            let version = answer?.resourceVersion
            if let echo = seen.first(where: { version != nil && $0.resourceVersion == version }) {
                if let specHash = echo.specHash, let fields = echo.fields { state.applied[key] = (specHash, fields) }
            } else if let version {
                state.appliedVersions[key] = version
            }
            if seen.contains(where: { version == nil || $0.resourceVersion != version }) { state.unexplained.insert(policy) }
        }
    }

    /// Whether a CronJob's watch event is the echo of this controller's own last apply. An
    /// echo shows the fields the server recorded for that apply: they are accepted for its
    /// desired state, even if the server counts them differently from the controller. An event
    /// during an apply is held until the answer says whether it was the echo (`applied`).
    func isEcho(of cronJob: ObservedCronJob) -> Bool {
        state.withLock { state in
            if state.inFlight[cronJob.key] != nil {
                state.inFlight[cronJob.key]?.append(Sighting(resourceVersion: cronJob.metadata.resourceVersion,
                                                             specHash: cronJob.specHash, fields: cronJob.appliedFieldsHash))
                return true
            }
            guard let version = cronJob.metadata.resourceVersion, state.appliedVersions[cronJob.key] == version else { return false }
            state.appliedVersions[cronJob.key] = nil  // once: a relist later is not an echo
            if let specHash = cronJob.specHash, let fields = cronJob.appliedFieldsHash { state.applied[cronJob.key] = (specHash, fields) }
            return true
        }
    }

    /// Whether a change during one of the policy's applies was not the apply's own (then the
    /// cache holds it, and another pass looks at it); asking clears it.
    func takeUnexplained(_ policy: String) -> Bool {
        state.withLock { $0.unexplained.remove(policy) != nil }
    }

    /// CronJobs the plan found to own exactly their fields: no need to compute that again.
    func confirmed(_ hashes: [String: UInt64], among cronJobs: [ObservedCronJob]) {
        guard !hashes.isEmpty else { return }
        state.withLock { state in
            for cronJob in cronJobs {
                guard let fields = hashes[cronJob.metadata.name], let specHash = cronJob.specHash else { continue }
                state.applied[cronJob.key] = (specHash, fields)
            }
        }
    }

    /// For each observed CronJob still at a desired state whose fields were confirmed: their
    /// hash then.
    func acceptedFieldHashes(for cronJobs: [ObservedCronJob]) -> [String: UInt64] {
        state.withLock { state in
            var accepted: [String: UInt64] = [:]
            for cronJob in cronJobs {
                if let known = state.applied[cronJob.key], known.specHash == cronJob.specHash { accepted[cronJob.metadata.name] = known.fields }
            }
            return accepted
        }
    }

    /// A deleted policy: forget it and its CronJobs (the name prefix may catch another
    /// policy's CronJob too, which then costs that one a single re-apply).
    func forget(_ key: String) {
        state.withLock { state in
            state.statuses[key] = nil
            state.conditions[key] = nil
            state.unexplained.remove(key)
            state.applied = state.applied.filter { !$0.key.hasPrefix(key + "-") }
            state.appliedVersions = state.appliedVersions.filter { !$0.key.hasPrefix(key + "-") }
        }
    }
}
