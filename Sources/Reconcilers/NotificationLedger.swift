public import BackstopAPI
internal import Foundation
public import KubeObjects

/// One thing worth telling: what happened, where, and its cause, which together are its
/// identity (the same failed Job or the same breach is one notification, however many passes
/// see it).
public struct NotificationOccurrence: Sendable, Equatable {
    public var event: NotificationEvent
    public var environment: String
    /// The failure's or drill's time, the recovered backup's id, the time a breach began.
    public var cause: String
    public var message: String
    public var time: KubeTimestamp

    public var identity: String { "\(event.rawValue)/\(environment)/\(cause)" }
}

/// What a delivery attempt came to, reported by `NotificationOutbox` and folded into the
/// status by the next pass (the reconciler is the status' only writer).
public struct NotificationOutcome: Sendable, Equatable {
    public var target: String
    public var identity: String
    /// Which attempt this was (1 for the first): folding it is idempotent, so a pass that sees
    /// a status older than the outcome cannot count it twice.
    public var attempt: Int
    /// nil: delivered.
    public var error: String?
    public var time: KubeTimestamp

    public init(target: String, identity: String, attempt: Int, error: String?, time: KubeTimestamp) {
        self.target = target
        self.identity = identity
        self.attempt = attempt
        self.error = error
        self.time = time
    }

    /// Whether `ledger` already holds this outcome: delivered, its failed attempt counted, or
    /// given up on. Not owed at all is not enough: a status older than the one that made it
    /// owed says the same, and forgetting the outcome then would send it again.
    func isReflected(in ledger: NotificationStatus?) -> Bool {
        if ledger?.delivered?.contains(NotificationLedger.key(target, identity)) == true { return true }
        if let owed = ledger?.pending?.first(where: { $0.target == target && $0.identity == identity }) {
            return error != nil && owed.attempts >= attempt
        }
        return error != nil && ledger?.abandoned?.contains(NotificationLedger.key(target, identity)) == true
    }
}

/// The pure part of notifications: which occurrences a status change holds, and the ledger
/// in `status.notifications` (owed, delivered, given up) kept in step with them and with
/// the outcomes of deliveries. Everything a restarted controller needs is in the status.
enum NotificationLedger {
    /// What changed between the environments' status before and after this pass.
    static func occurrences(before: [BackupPolicy.EnvironmentStatus], after: [BackupPolicy.EnvironmentStatus],
                            resolved: [String: BackupPolicy.ResolvedEnvironment], policyCreated: Date?, now: Date) -> [NotificationOccurrence] {
        var found: [NotificationOccurrence] = []
        for environment in after {
            let name = environment.name
            let earlier = before.first { $0.name == name }
            if let failure = environment.lastFailure, failure != earlier?.lastFailure {
                found.append(.init(event: .backupFailed, environment: name, cause: failure.time.description, message: failure.message, time: failure.time))
            }
            if let success = environment.lastSuccessfulBackup, success.id != earlier?.lastSuccessfulBackup?.id, let earlier, earlier.isFailing {
                found.append(.init(event: .backupRecovered, environment: name, cause: success.id,
                                   message: "backup \(success.id) succeeded after the failure of \(earlier.lastFailure?.time.description ?? "an earlier run")",
                                   time: success.time))
            }
            if let drill = environment.lastDrill, drill.time != earlier?.lastDrill?.time {
                if drill.outcome != .succeeded {
                    found.append(.init(event: .drillFailed, environment: name, cause: drill.time.description, message: drill.message, time: drill.time))
                } else if let rto = resolved[name]?.rto, let seconds = drill.restoreSeconds, seconds > Double(rto.seconds) {
                    found.append(.init(event: .rtoBreached, environment: name, cause: drill.time.description,
                                       message: "the restore drill took \(DrillRecord.seconds(seconds)) s, over the RTO of \(rto)", time: drill.time))
                }
            }
            // A breach is a state, not a step: told once it has lasted past the RPO counted
            // from the last success (or, before any, from the policy's creation, so a new
            // policy is not reported the moment it exists); the ledger keeps it from repeating.
            if environment.rpo == .breached, let rpo = resolved[name]?.rpo,
               let base = environment.lastSuccessfulBackup?.time.date ?? policyCreated {
                let began = KubeTimestamp(base.addingTimeInterval(Double(rpo.seconds)))
                if now >= began.date {
                    found.append(.init(event: .rpoBreached, environment: name, cause: began.description,
                                       message: "no successful backup for longer than the RPO of \(rpo)"
                                           + (environment.lastSuccessfulBackup.map { " (last: \($0.id) at \($0.time))" } ?? " (none since the policy was made)"),
                                       time: began))
                }
            }
            if let resolvedEnvironment = resolved[name], resolvedEnvironment.walArchiving,
               let problem = PolicyPlan.archivingProblem(environment, rpo: resolvedEnvironment.rpo, now: now),
               earlier.flatMap({ PolicyPlan.archivingProblem($0, rpo: resolvedEnvironment.rpo, now: now) }) == nil {
                let checked = environment.walArchiving?.checkedAt ?? KubeTimestamp(now)
                found.append(.init(event: .archivingStalled, environment: name, cause: checked.description, message: problem.text, time: checked))
            }
        }
        return found
    }

    /// The ledger after this pass: outcomes folded in (delivered, retried later, given up),
    /// new occurrences owed to every target that wants them unless already owed or
    /// delivered, entries of targets that left the policy dropped. Returns nil when there is
    /// nothing to keep.
    static func update(_ ledger: NotificationStatus?, targets: [NotificationTarget], occurrences: [NotificationOccurrence],
                       outcomes: [NotificationOutcome], retryBase: TimeInterval = 30, now: Date) -> (ledger: NotificationStatus?, gaveUp: [NotificationStatus.Failure]) {
        var ledger = ledger ?? NotificationStatus()
        var pending = ledger.pending ?? []
        var delivered = ledger.delivered ?? []
        var abandoned = ledger.abandoned ?? []
        var gaveUp: [NotificationStatus.Failure] = []
        for outcome in outcomes {
            guard let index = pending.firstIndex(where: { $0.target == outcome.target && $0.identity == outcome.identity }),
                  outcome.error == nil || pending[index].attempts == outcome.attempt - 1 else { continue }
            guard let error = outcome.error else {
                delivered.append(key(outcome.target, outcome.identity))
                pending.remove(at: index)
                continue
            }
            pending[index].attempts += 1
            pending[index].lastError = error
            if pending[index].attempts >= NotificationStatus.maximumAttempts {
                gaveUp.append(.init(target: outcome.target, identity: outcome.identity, time: outcome.time, message: error))
                abandoned.append(key(outcome.target, outcome.identity))
                pending.remove(at: index)
            } else {
                pending[index].nextAttemptAt = KubeTimestamp(outcome.time.date.addingTimeInterval(retryDelay(afterAttempt: pending[index].attempts, base: retryBase)))
            }
        }
        let names = Set(targets.map(\.name))
        pending.removeAll { !names.contains($0.target) }
        for occurrence in occurrences {
            for target in targets where target.wantedEvents.contains(occurrence.event) {
                let owed = pending.contains { $0.target == target.name && $0.identity == occurrence.identity }
                let settled = delivered.contains(key(target.name, occurrence.identity)) || abandoned.contains(key(target.name, occurrence.identity))
                guard !owed, !settled else { continue }
                pending.append(.init(target: target.name, identity: occurrence.identity, event: occurrence.event, environment: occurrence.environment,
                                     message: occurrence.message, occurredAt: occurrence.time))
            }
        }
        ledger.pending = pending.isEmpty ? nil : pending
        ledger.delivered = delivered.isEmpty ? nil : Array(delivered.suffix(NotificationStatus.deliveredLimit))
        ledger.abandoned = abandoned.isEmpty ? nil : Array(abandoned.suffix(NotificationStatus.deliveredLimit))
        if let last = gaveUp.last {
            ledger.failed = (ledger.failed ?? 0) + gaveUp.count
            ledger.lastFailure = last
        }
        let empty = ledger.pending == nil && ledger.delivered == nil && ledger.failed == nil
        return (empty ? nil : ledger, gaveUp)
    }

    static func key(_ target: String, _ identity: String) -> String { "\(target) \(identity)" }

    /// 30 s, 1, 2, 4 … minutes (for the default base), at most 60 bases: eight attempts span
    /// about an hour and a half, so a receiver down for maintenance still gets the news.
    static func retryDelay(afterAttempt attempt: Int, base: TimeInterval = 30) -> TimeInterval {
        min(base * pow(2, Double(max(0, attempt - 1))), base * 60)
    }

    /// Owed notifications whose time has come (none waiting out a backoff).
    static func due(_ ledger: NotificationStatus?, now: Date) -> [NotificationStatus.Pending] {
        (ledger?.pending ?? []).filter { ($0.nextAttemptAt?.date ?? .distantPast) <= now }
    }
}
