public import BackstopAPI
public import Foundation
public import KubeObjects
public import KubeRuntime
public import Workloads

/// What one reconcile of a BackupPolicy knows: the policy, what the controller's watches show
/// of the CronJobs and Jobs it made, how the Jobs that finished since the status was last
/// written ended, what the API server serves, and the time. Everything `PolicyPlan` decides
/// from; gathered by `PolicyReconciler`, made by hand in tests.
public struct PolicyObservation: Sendable {
    public var policy: BackupPolicy
    public var cronJobs: [ObservedCronJob]
    public var jobs: [ObservedJob]
    /// Environment → the newest finished backup run not yet in the status.
    public var runs: [String: FinishedRun]
    /// Environment → the newest finished restore drill not yet in the status.
    public var drills: [String: FinishedRun]
    /// Environment → the newest finished WAL archiving check (`wal-status`) not yet in the status.
    public var archivingChecks: [String: FinishedRun]
    public var server: ServerCapabilities.Snapshot
    public var now: Date
    /// CronJob name → the hash of Backstop's applied fields an earlier pass confirmed for the
    /// same desired state: no need to compute the fields again.
    public var acceptedFieldHashes: [String: UInt64]
    /// Deliveries finished since the status was written (`NotificationOutbox`).
    public var notificationOutcomes: [NotificationOutcome] = []
    /// The first wait before a failed notification is sent again (it doubles).
    public var notificationRetryBase: TimeInterval = 30

    public init(policy: BackupPolicy, cronJobs: [ObservedCronJob], jobs: [ObservedJob], runs: [String: FinishedRun] = [:],
                drills: [String: FinishedRun] = [:], archivingChecks: [String: FinishedRun] = [:], server: ServerCapabilities.Snapshot, now: Date,
                acceptedFieldHashes: [String: UInt64] = [:]) {
        self.policy = policy
        self.cronJobs = cronJobs
        self.jobs = jobs
        self.runs = runs
        self.drills = drills
        self.archivingChecks = archivingChecks
        self.server = server
        self.now = now
        self.acceptedFieldHashes = acceptedFieldHashes
    }
}

/// How one Job ended, as its condition and its pod's report say.
public struct FinishedRun: Sendable, Equatable {
    public var environment: String
    public var jobName: String
    public var time: KubeTimestamp
    /// The Job's condition: `Complete` (whatever failed pods came before) or `Failed`.
    public var succeeded: Bool
    /// The worker's report from the pod that succeeded (or the newest failed one).
    public var report: WorkerReport?
    public var message: String

    public init(environment: String, jobName: String, time: KubeTimestamp, succeeded: Bool, report: WorkerReport?, message: String) {
        self.environment = environment
        self.jobName = jobName
        self.time = time
        self.succeeded = succeeded
        self.report = report
        self.message = message
    }
}

/// What a reconcile does, decided without the server: which CronJobs to apply (and whether
/// with force: only to those the policy already controls), which to delete, which names are
/// held by someone else's object, which run-now Jobs to start. Then, given how that went,
/// the status to write and the Events to record. Pure: tested with a fixed clock.
public struct PolicyPlan: Sendable {
    public struct Application: Sendable {
        public var cronJob: CronJob
        /// What the apply sends: `cronJob` as JSON.
        public var configuration: JSONValue
        /// The policy controls the object already: a hand edit is undone (force=true).
        /// Otherwise the apply must not take fields from anyone (force=false).
        public var force: Bool
        /// The cache shows it: this is an update, not a creation.
        public var exists: Bool
    }

    public struct RunNow: Sendable {
        public var value: String
        public var jobs: [Job]
        /// Environments whose last Job is still running.
        public var skipped: [String]
    }

    /// Every CronJob the policy wants, in the environments' order.
    public var desired: [CronJob]
    public var apply: [Application]
    public var delete: [String]
    /// Names held by a CronJob this policy does not control.
    public var conflicts: [String]
    public var runNow: RunNow?
    /// CronJobs found to own exactly the fields they should (name → that field hash): a
    /// later pass need not compute it again (see `PolicyObservation.acceptedFieldHashes`).
    public var confirmed: [String: UInt64] = [:]

    /// Plans the CronJobs and run-now Jobs; throws when the policy is invalid.
    public static func make(_ observation: PolicyObservation, workerImage: String) throws(BackstopAPIError) -> PolicyPlan {
        let policy = observation.policy
        let builder = CronJobBuilder(settings: .init(workerImage: workerImage))
        var built = try builder.build(for: policy, cronJobTimeZone: observation.server.cronJobTimeZone)
        // A drill with a sidecar scratch server cannot run before native sidecars: no CronJob
        // (the status says why) rather than pods that never start their drill.
        if !observation.server.nativeSidecars {
            built.removeAll { $0.cronJob.spec.jobTemplate.spec.template.spec.initContainers != nil }
        }
        let desired = built.map(\.cronJob)
        var observed = Dictionary(observation.cronJobs.map { ($0.metadata.name, $0) }, uniquingKeysWith: { first, _ in first })
        var plan = PolicyPlan(desired: desired, apply: [], delete: [], conflicts: [], runNow: nil)
        for (cronJob, configuration) in built.map({ ($0.cronJob, $0.configuration) }) {
            guard let current = observed.removeValue(forKey: cronJob.metadata.name) else {
                plan.apply.append(Application(cronJob: cronJob, configuration: configuration, force: false, exists: false))
                continue
            }
            guard current.isControlled(by: policy.metadata.uid) else {
                plan.conflicts.append(cronJob.metadata.name)
                continue
            }
            switch check(current, against: cronJob, configuration: configuration, accepted: observation.acceptedFieldHashes[cronJob.metadata.name]) {
            case .drifted: plan.apply.append(Application(cronJob: cronJob, configuration: configuration, force: true, exists: true))
            case .confirmed(let hash): plan.confirmed[cronJob.metadata.name] = hash
            case .unchanged: break
            }
        }
        // What is left belongs to environments the policy no longer has.
        plan.delete = observed.values.filter { $0.isControlled(by: policy.metadata.uid) }.map(\.metadata.name).sorted()
        plan.runNow = runNow(observation, desired)
        return plan
    }

    enum Check: Equatable {
        case drifted
        /// As wanted, as already known.
        case unchanged
        /// As wanted, found by computing the fields it should own (their hash).
        case confirmed(UInt64)
    }

    /// Applied again when its annotation names another desired state, or when the fields
    /// Backstop's apply owns are not the ones it sets (someone else's edit took some). The
    /// fields are computed only when the hash is not one already accepted for it.
    static func check(_ current: ObservedCronJob, against wanted: CronJob, configuration: JSONValue, accepted: UInt64?) -> Check {
        guard current.specHash == wanted.metadata.annotations?[CronJobBuilder.specHashAnnotation],
              let owned = current.appliedFieldsHash else { return .drifted }
        if owned == accepted { return .unchanged }
        return owned == FieldSet(applying: configuration).stableHash ? .confirmed(owned) : .drifted
    }


    /// `backstop.dev/run-now=<value>`: one Job per environment (or the one named by
    /// `backstop.dev/run-now-environment`), once per distinct value; an environment whose Job
    /// is still running is skipped.
    static func runNow(_ observation: PolicyObservation, _ desired: [CronJob]) -> RunNow? {
        let policy = observation.policy
        guard let value = policy.metadata.annotations?[CronJobBuilder.runNowAnnotation], !value.isEmpty,
              value != policy.status?.lastHandledRunNow else { return nil }
        let only = policy.metadata.annotations?[CronJobBuilder.runNowEnvironmentAnnotation]
        var plan = RunNow(value: value, jobs: [], skipped: [])
        for cronJob in desired where cronJob.metadata.labels?[CronJobBuilder.taskLabel] == nil {
            let environment = cronJob.metadata.labels?[CronJobBuilder.environmentLabel] ?? ""
            if let only, only != environment { continue }
            if observation.jobs.contains(where: { $0.environment == environment && $0.isBackup && $0.outcome == nil }) {
                plan.skipped.append(environment)
            } else {
                plan.jobs.append(CronJobBuilder.runNowJob(from: cronJob, value: value))
            }
        }
        return plan
    }
}

/// How applying a plan went.
public struct ApplyOutcome: Sendable, Equatable {
    public var created: [String] = []
    public var updated: [String] = []
    public var deleted: [String] = []
    /// CronJob name → why it is not the policy's to apply.
    public var conflicts: [String: String] = [:]
    /// CronJob name → the API server's refusal.
    public var failures: [String: String] = [:]
    public var runNowStarted: [String] = []

    public init() {}
}

/// An Event to record on the policy.
public struct PlannedEvent: Sendable, Equatable {
    public var type: EventRecorder.EventType
    public var reason: String
    public var message: String

    public init(_ type: EventRecorder.EventType, _ reason: String, _ message: String) {
        self.type = type
        self.reason = reason
        self.message = message
    }
}

/// The status after a pass, and what it says that is news.
public struct PolicyStatusUpdate: Sendable {
    public var status: BackupPolicy.Status
    /// Events of what the status newly says (results, RPO breaches, conditions turned bad):
    /// recorded only when the status is written, so a repeated pass adds none.
    public var statusEvents: [PlannedEvent]
    /// Events of what the pass did (created, updated, deleted, started): recorded always.
    public var actionEvents: [PlannedEvent]
    /// When to look again although nothing changes (the next RPO breach).
    public var nextCheck: Duration
}

extension PolicyPlan {
    /// The policy's status after this pass: conditions, environments with their last success,
    /// failure and retention, RPO, the summary for `kubectl get`. `invalid` is the reason the
    /// policy cannot be built (then `plan` is nil).
    public static func status(_ observation: PolicyObservation, plan: PolicyPlan?, invalid: String?, outcome: ApplyOutcome) -> PolicyStatusUpdate {
        let policy = observation.policy
        let now = KubeTimestamp(observation.now)
        var status = policy.status ?? BackupPolicy.Status()
        var conditions = status.conditions ?? []
        var statusEvents: [PlannedEvent] = []
        var actionEvents: [PlannedEvent] = []
        func set(_ type: Condition.ConditionType, _ value: Bool, _ reason: Condition.Reason, _ message: String) {
            conditions.set(Condition(type: type, status: .init(value), reason: reason, message: message, lastTransitionTime: now,
                                     observedGeneration: policy.metadata.generation))
        }
        func became(_ type: Condition.ConditionType, _ value: Condition.Status, reason: Condition.Reason) -> Bool {
            let before = policy.status?.conditions?[type]
            return before?.status != value || before?.reason != reason
        }
        status.observedGeneration = policy.metadata.generation

        // Ready: the CronJobs match the policy, or the first reason they cannot.
        if let invalid {
            set(.ready, false, .invalidSpec, invalid)
            statusEvents.append(PlannedEvent(.warning, "InvalidSpec", invalid))
        } else if let name = outcome.conflicts.keys.sorted().first ?? plan?.conflicts.first {
            let message = outcome.conflicts[name]
                ?? "CronJob \(name) exists and is not this policy's: delete or rename it, or rename the environment"
            set(.ready, false, .cronJobConflict, message)
            statusEvents.append(PlannedEvent(.warning, "CronJobConflict", message))
        } else if !outcome.failures.isEmpty {
            let message = outcome.failures.keys.sorted().map { "\($0): \(outcome.failures[$0] ?? "")" }.joined(separator: "; ")
            set(.ready, false, .applyFailed, message)
            statusEvents.append(PlannedEvent(.warning, "ApplyFailed", message))
        } else if let plan {
            set(.ready, true, .reconciled, "\(plan.desired.count) CronJobs match the policy")
        }

        // The server's limits: a time zone asked for that the server cannot honour.
        if let zone = policy.spec.timeZone, !observation.server.cronJobTimeZone {
            let message = "the API server (\(observation.server.version ?? "before 1.25")) does not serve CronJob time zones (Kubernetes 1.25 and later do): "
                + "schedules run in the kube-controller-manager's time zone (usually UTC), not \(zone)"
            if became(.scheduleTimeZone, .false, reason: .unsupported) { statusEvents.append(PlannedEvent(.warning, "ScheduleTimeZoneUnsupported", message)) }
            set(.scheduleTimeZone, false, .unsupported, message)
        } else if observation.server.cronJobTimeZone {
            set(.scheduleTimeZone, true, .supported, "schedules run in \(policy.spec.timeZone ?? "Etc/UTC")")
        } else {
            conditions.removeAll { $0.type == .scheduleTimeZone }
        }

        // Environments: their CronJobs, and the results of their runs.
        var environments = status.environments ?? []
        if let plan {
            func cronJobs(of task: String) -> [String: String] {
                Dictionary(plan.desired.filter { $0.metadata.labels?[CronJobBuilder.taskLabel] == task }
                    .map { ($0.metadata.labels?[CronJobBuilder.environmentLabel] ?? "", $0.metadata.name) }, uniquingKeysWith: { first, _ in first })
            }
            let drillCronJobs = cronJobs(of: CronJobBuilder.drillTask)
            let archivingCronJobs = cronJobs(of: CronJobBuilder.archivingTask)
            for cronJob in plan.desired where cronJob.metadata.labels?[CronJobBuilder.taskLabel] == nil {
                let name = cronJob.metadata.labels?[CronJobBuilder.environmentLabel] ?? ""
                if let index = environments.firstIndex(where: { $0.name == name }) {
                    environments[index].cronJob = cronJob.metadata.name
                } else {
                    environments.append(.init(name: name, cronJob: cronJob.metadata.name))
                }
                if let index = environments.firstIndex(where: { $0.name == name }) {
                    environments[index].drillCronJob = drillCronJobs[name]
                    environments[index].archivingCronJob = archivingCronJobs[name]
                    if archivingCronJobs[name] == nil { environments[index].walArchiving = nil }
                }
            }
            // Environments that left the policy keep no status; the others keep their history.
            let names = Set(plan.desired.compactMap { $0.metadata.labels?[CronJobBuilder.environmentLabel] })
            environments.removeAll { !names.contains($0.name) }
        }
        for index in environments.indices {
            if let run = observation.runs[environments[index].name] {
                statusEvents += record(run, in: &environments[index])
            }
            if let drill = observation.drills[environments[index].name] {
                statusEvents += recordDrill(drill, in: &environments[index])
            }
            if let check = observation.archivingChecks[environments[index].name] {
                recordArchivingCheck(check, in: &environments[index])
            }
        }

        // RPO: a clock, not an event; look again when the next one would be breached.
        let resolved = Dictionary(((try? policy.resolvedEnvironments()) ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let objectives = resolved.mapValues(\.rpo)
        var nextCheck: Duration = .seconds(300)
        var breached: [String] = []
        var judged = 0
        for index in environments.indices {
            let name = environments[index].name
            guard let rpo = objectives[name] ?? nil else {
                environments[index].rpo = nil
                continue
            }
            judged += 1
            let age = environments[index].lastSuccessfulBackup.map { observation.now.timeIntervalSince($0.time.date) } ?? .infinity
            if age <= Double(rpo.seconds) {
                nextCheck = min(nextCheck, .seconds(max(1, Double(rpo.seconds) - age)))
                environments[index].rpo = .met
            } else {
                breached.append(name)
                if environments[index].rpo == .met {
                    statusEvents.append(PlannedEvent(.warning, "RPOBreached", "\(name): no successful backup for longer than \(rpo)"))
                }
                environments[index].rpo = .breached
            }
        }
        if judged > 0 {
            set(.rpoMet, breached.isEmpty, breached.isEmpty ? .withinObjective : .rpoBreached,
                breached.isEmpty ? "every environment's last success is within its RPO" : "no recent enough backup in \(breached.joined(separator: ", "))")
        } else {
            conditions.removeAll { $0.type == .rpoMet }
        }

        let failing = environments.filter(\.isFailing)
        if !failing.isEmpty {
            set(.lastBackupSucceeded, false, .backupFailed, failing.map { "\($0.name): \($0.lastFailure?.message ?? "")" }.joined(separator: "; "))
        } else if environments.contains(where: { $0.lastSuccessfulBackup != nil }) {
            set(.lastBackupSucceeded, true, .backupSucceeded, "the last backup of every environment that ran succeeded")
        }

        statusEvents += drillConditions(environments, resolved: resolved, before: policy.status?.environments ?? [], server: observation.server, set: set, remove: { type in
            conditions.removeAll { $0.type == type }
        })

        statusEvents += archivingCondition(environments, resolved: resolved, before: policy.status?.environments ?? [], now: observation.now, set: set,
                                           remove: { type in conditions.removeAll { $0.type == type } })

        let pruneFailures = environments.filter { $0.lastRetention?.outcome == .failed }
        if !pruneFailures.isEmpty {
            set(.retentionApplied, false, .pruneFailed,
                pruneFailures.map { "\($0.name): \($0.lastRetention?.message ?? "the prune failed")" }.joined(separator: "; "))
        } else if environments.contains(where: { $0.lastRetention != nil }) {
            set(.retentionApplied, true, .pruned, "the last prune of every environment worked")
        }

        status.conditions = conditions
        status.environments = environments
        status.summary = summary(of: environments)

        // Notifications: what this pass newly found is owed to the targets that want it, in
        // the same status write that records it (so it is told once, whoever leads next).
        let found = NotificationLedger.occurrences(before: policy.status?.environments ?? [], after: environments, resolved: resolved,
                                                   policyCreated: policy.metadata.creationTimestamp.flatMap(KubeTimestamp.init)?.date, now: observation.now)
        let ledger = NotificationLedger.update(status.notifications, targets: policy.spec.notifications ?? [], occurrences: found,
                                               outcomes: observation.notificationOutcomes, retryBase: observation.notificationRetryBase,
                                               now: observation.now)
        status.notifications = ledger.ledger
        for failure in ledger.gaveUp {
            statusEvents.append(PlannedEvent(.warning, "NotificationFailed",
                                             "\(failure.target): gave up on \(failure.identity) after \(NotificationStatus.maximumAttempts) attempts: \(failure.message)"))
        }
        if let next = status.notifications?.pending?.compactMap(\.nextAttemptAt).min() {
            nextCheck = min(nextCheck, .seconds(max(1, next.date.timeIntervalSince(observation.now))))
        }
        if let runNow = plan?.runNow { status.lastHandledRunNow = runNow.value }

        // What the pass did.
        if !outcome.created.isEmpty { actionEvents.append(PlannedEvent(.normal, "CronJobCreated", "created \(outcome.created.joined(separator: ", "))")) }
        if !outcome.updated.isEmpty {
            actionEvents.append(PlannedEvent(.normal, "CronJobUpdated", "updated \(outcome.updated.joined(separator: ", ")) to the policy"))
        }
        if !outcome.deleted.isEmpty {
            actionEvents.append(PlannedEvent(.normal, "CronJobDeleted", "deleted \(outcome.deleted.joined(separator: ", ")): their environments left the policy"))
        }
        if let runNow = plan?.runNow {
            for environment in outcome.runNowStarted {
                actionEvents.append(PlannedEvent(.normal, "RunNowStarted", "\(environment): backup started for run-now \(runNow.value)"))
            }
            for environment in runNow.skipped {
                actionEvents.append(PlannedEvent(.normal, "RunNowSkipped", "\(environment): a backup is already running"))
            }
        }
        return PolicyStatusUpdate(status: status, statusEvents: statusEvents, actionEvents: actionEvents, nextCheck: nextCheck)
    }

    /// Folds a finished run into an environment's status; only forward in time, so a
    /// garbage-collected Job or a restart never erases a recorded result.
    static func record(_ run: FinishedRun, in environment: inout BackupPolicy.EnvironmentStatus) -> [PlannedEvent] {
        var events: [PlannedEvent] = []
        let name = environment.name
        // Older than what is recorded (a Job listed late): history already moved past it.
        if let known = [environment.lastSuccessfulBackup?.time, environment.lastFailure?.time].compactMap({ $0 }).max(), run.time <= known {
            return []
        }
        if run.succeeded {
            if environment.lastSuccessfulBackup.map({ run.time > $0.time }) ?? true {
                environment.lastSuccessfulBackup = .init(id: run.report?.backupID?.rawValue ?? "", time: run.time, bytes: run.report?.storedBytes,
                                                         durationSeconds: run.report?.durationSeconds)
                environment.serverMajorVersion = run.report?.serverMajorVersion ?? environment.serverMajorVersion
                events.append(PlannedEvent(.normal, "BackupSucceeded", "\(name): backup \(run.report?.backupID?.rawValue ?? "") succeeded"))
            }
            if let prune = run.report?.prune, environment.lastRetention.map({ run.time > $0.time }) ?? true {
                environment.lastRetention = .init(time: run.time, outcome: prune.outcome, deleted: prune.deleted, kept: prune.kept, message: prune.message)
                if prune.outcome == .failed {
                    events.append(PlannedEvent(.warning, "PruneFailed", "\(name): \(prune.message ?? "the prune after the backup failed")"))
                }
            }
        } else if environment.lastFailure.map({ run.time > $0.time }) ?? true {
            environment.lastFailure = .init(time: run.time, reason: .backupFailed, message: run.message)
            events.append(PlannedEvent(.warning, "BackupFailed", "\(name): \(run.message)"))
        }
        return events
    }

    /// Folds a finished archiving check into an environment's status, only forward in time. A
    /// check that failed (storage unreadable) keeps the last known archive and says why.
    static func recordArchivingCheck(_ run: FinishedRun, in environment: inout BackupPolicy.EnvironmentStatus) {
        if let known = environment.walArchiving?.checkedAt, run.time <= known { return }
        guard run.succeeded, let found = run.report?.walArchiving else {
            var state = environment.walArchiving ?? .init(checkedAt: run.time)
            state.checkedAt = run.time
            state.message = "the archiving check failed: \(run.message)"
            environment.walArchiving = state
            return
        }
        environment.walArchiving = .init(
            checkedAt: run.time, lastArchivedAt: found.lastArchivedAt.map { KubeTimestamp(Date(timeIntervalSince1970: Double($0.secondsSince1970))) },
            lastArchivedFile: found.lastArchivedFile, failedCount: found.failedCount, failing: found.failing,
            lastFailedFile: found.lastFailedFile, message: found.serverProblem.map { "cannot ask the server: \($0)" })
    }

    /// `ContinuousArchiving` over the environments with walArchiving: False when archive_command
    /// is failing, or the newest archived file is older than the environment's RPO (an hour
    /// without one); one Warning Event when an environment starts failing or lagging.
    static func archivingCondition(_ environments: [BackupPolicy.EnvironmentStatus], resolved: [String: BackupPolicy.ResolvedEnvironment],
                                   before: [BackupPolicy.EnvironmentStatus], now: Date,
                                   set: (Condition.ConditionType, Bool, Condition.Reason, String) -> Void,
                                   remove: (Condition.ConditionType) -> Void) -> [PlannedEvent] {
        let archiving = environments.filter { resolved[$0.name]?.walArchiving == true }
        guard !archiving.isEmpty else {
            remove(.continuousArchiving)
            return []
        }
        func problem(_ environment: BackupPolicy.EnvironmentStatus) -> (reason: Condition.Reason, text: String)? {
            archivingProblem(environment, rpo: resolved[environment.name]?.rpo, now: now)
        }
        let problems = archiving.compactMap { environment in problem(environment).map { (environment.name, $0) } }
        let unchecked = archiving.filter { $0.walArchiving == nil }
        var events: [PlannedEvent] = []
        for (name, found) in problems {
            let earlier = before.first { $0.name == name }.flatMap(problem)
            if earlier?.reason != found.reason {
                events.append(PlannedEvent(.warning, found.reason == .archiveFailing ? "ArchivingFailing" : "ArchivingStalled", found.text))
            }
        }
        if let failing = problems.first(where: { $0.1.reason == .archiveFailing }) {
            set(.continuousArchiving, false, .archiveFailing, problems.filter { $0.1.reason == failing.1.reason }.map(\.1.text).joined(separator: "; "))
        } else if !problems.isEmpty {
            set(.continuousArchiving, false, .archiveLagging, problems.map(\.1.text).joined(separator: "; "))
        } else if !unchecked.isEmpty {
            set(.continuousArchiving, false, .noArchiveCheckYet, "no archiving check has run yet in \(unchecked.map(\.name).joined(separator: ", "))")
        } else {
            set(.continuousArchiving, true, .archivingCurrent, "every environment with walArchiving archives within its RPO")
        }
        return events
    }

    /// What is wrong with an environment's archiving, as its last check found it: failing, or
    /// the newest archived file older than the RPO (an hour without one). nil before a check.
    static func archivingProblem(_ environment: BackupPolicy.EnvironmentStatus, rpo: FixedDuration?, now: Date) -> (reason: Condition.Reason, text: String)? {
        guard let state = environment.walArchiving else { return nil }
        if state.failing == true {
            return (.archiveFailing, "\(environment.name): archive_command is failing (last failed \(state.lastFailedFile ?? "?"))")
        }
        let limit = Double(rpo?.seconds ?? 3_600)
        guard let last = state.lastArchivedAt else { return (.archiveLagging, "\(environment.name): nothing archived yet") }
        let age = now.timeIntervalSince(last.date)
        return age > limit ? (.archiveLagging, "\(environment.name): last archived \(Int(age / 60)) min ago, beyond \(Int(limit / 60)) min") : nil
    }

    /// Folds a finished drill into an environment's status, only forward in time.
    static func recordDrill(_ run: FinishedRun, in environment: inout BackupPolicy.EnvironmentStatus) -> [PlannedEvent] {
        if let known = environment.lastDrill?.time, run.time <= known { return [] }
        let backupID = run.report?.backupID?.rawValue
        environment.lastDrill = .init(backupID: backupID, time: run.time, restoreSeconds: run.report?.restoreSeconds,
                                      outcome: run.succeeded ? .succeeded : .failed, message: run.message)
        return run.succeeded
            ? [PlannedEvent(.normal, "DrillSucceeded", "\(environment.name): \(run.message)")]
            : [PlannedEvent(.warning, "DrillFailed", "\(environment.name): \(run.message)")]
    }

    /// `RestoreVerified` (the last drill of every environment with drills succeeded) and
    /// `RTOMet` (each one's restore time within its RTO); both absent while no environment
    /// asks for them. Returns the Events of a breach that is new.
    static func drillConditions(_ environments: [BackupPolicy.EnvironmentStatus], resolved: [String: BackupPolicy.ResolvedEnvironment],
                                before: [BackupPolicy.EnvironmentStatus], server: ServerCapabilities.Snapshot,
                                set: (Condition.ConditionType, Bool, Condition.Reason, String) -> Void,
                                remove: (Condition.ConditionType) -> Void) -> [PlannedEvent] {
        let drilled = environments.filter { resolved[$0.name]?.drill != nil }
        let failed = drilled.filter { $0.lastDrill?.outcome == .failed }
        let untried = drilled.filter { $0.lastDrill == nil }
        let unrunnable = server.nativeSidecars ? [] : drilled.filter { environment in
            if case .sidecar = resolved[environment.name]?.drill?.scratch { true } else { false }
        }
        if drilled.isEmpty {
            remove(.restoreVerified)
        } else if !unrunnable.isEmpty {
            set(.restoreVerified, false, .sidecarUnsupported,
                "the API server (\(server.version ?? "before 1.29")) runs no native sidecars, so the drills of \(unrunnable.map(\.name).joined(separator: ", ")) "
                    + "cannot start their scratch PostgreSQL: set drill.scratch.database to a server for drills (Kubernetes 1.29 and later run the sidecar)")
        } else if !failed.isEmpty {
            set(.restoreVerified, false, .drillFailed, failed.map { "\($0.name): \($0.lastDrill?.message ?? "")" }.joined(separator: "; "))
        } else if !untried.isEmpty {
            set(.restoreVerified, false, .noDrillYet, "no restore drill has run yet in \(untried.map(\.name).joined(separator: ", "))")
        } else {
            set(.restoreVerified, true, .drillSucceeded, "the last restore drill of every environment with drills succeeded")
        }

        var events: [PlannedEvent] = []
        var breached: [String] = []
        var judged = 0
        for environment in environments {
            guard let rto = resolved[environment.name]?.rto, let drill = environment.lastDrill, drill.outcome == .succeeded,
                  let seconds = drill.restoreSeconds else { continue }
            judged += 1
            guard seconds > Double(rto.seconds) else { continue }
            breached.append("\(environment.name) restored in \(DrillRecord.seconds(seconds)) s, over its RTO of \(rto)")
            let previous = before.first { $0.name == environment.name }?.lastDrill
            if previous != drill {
                events.append(PlannedEvent(.warning, "RTOBreached", "\(environment.name): the restore drill took \(DrillRecord.seconds(seconds)) s, over the RTO of \(rto)"))
            }
        }
        if judged == 0 {
            remove(.rtoMet)
        } else {
            set(.rtoMet, breached.isEmpty, breached.isEmpty ? .withinObjective : .rtoBreached,
                breached.isEmpty ? "every measured restore was within its RTO" : breached.joined(separator: "; "))
        }
        return events
    }

    /// One line for `kubectl get bp`: printer columns show only the first value of a list.
    static func summary(of environments: [BackupPolicy.EnvironmentStatus]) -> BackupPolicy.Summary {
        var succeeded = 0
        var failed: [String] = []
        var never: [String] = []
        for environment in environments {
            let success = environment.lastSuccessfulBackup?.time
            if let failure = environment.lastFailure?.time, failure > (success ?? KubeTimestamp(.distantPast)) {
                failed.append(environment.name)
            } else if success != nil {
                succeeded += 1
            } else {
                never.append(environment.name)
            }
        }
        var backups = "\(succeeded)/\(environments.count) succeeded"
        if !failed.isEmpty { backups += "; failed: \(failed.joined(separator: ", "))" }
        if !never.isEmpty { backups += "; not yet run: \(never.joined(separator: ", "))" }
        let successes = environments.map { $0.lastSuccessfulBackup?.time }
        // The weakest environment's: none while any environment has never succeeded.
        let oldest = successes.contains(where: { $0 == nil }) ? nil : successes.compactMap { $0 }.min()
        return .init(environments: environments.map(\.name).joined(separator: ", "), oldestLastSuccess: oldest, backups: backups)
    }
}
