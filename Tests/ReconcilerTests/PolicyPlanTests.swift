import BackstopAPI
import Foundation
import KubeObjects
import KubeRuntime
@testable import Reconcilers
import Testing
import Workloads
import YAML

/// The pure half of the reconciler: what to apply, delete and start, and the status, from a
/// policy, what the watches show and a fixed clock. No server.
@Suite("Planning a BackupPolicy's reconcile")
struct PolicyPlanTests {
    static let now = Date(timeIntervalSince1970: 1_795_000_000)  // 2026-11-18
    static let uid = "00000000-0000-4000-8000-000000000001"
    static let current = ServerCapabilities.Snapshot(version: "v1.32.0", cronJobTimeZone: true)
    static let v124 = ServerCapabilities.Snapshot(version: "v1.24.0", cronJobTimeZone: false)

    static func example() throws -> BackupPolicy {
        let text = try String(contentsOfFile: PolicyReconcilerTests.root + "/k8s/examples/backuppolicy.yaml", encoding: .utf8)
        var policy = try YAMLDecoder().decode(BackupPolicy.self, from: text, source: "example")
        policy.metadata.uid = uid
        policy.metadata.generation = 1
        return policy
    }

    /// The fields an apply of `cronJob` sets, as the server records them.
    static func fieldSet(of cronJob: CronJob) -> FieldSet {
        FieldSet(applying: PolicyReconciler.json(cronJob))
    }

    /// A CronJob as the cache would show it after Backstop applied `cronJob` (the server
    /// recording exactly the fields applied), with `edit` made to its metadata.
    static func observed(_ cronJob: CronJob, fields: FieldSet? = nil, edit: (inout ObjectMeta) -> Void = { _ in }) throws -> ObservedCronJob {
        var metadata = cronJob.metadata
        metadata.resourceVersion = "7"
        let applied = fields ?? Self.fieldSet(of: cronJob)
        metadata.managedFields = [ManagedFieldsEntry(operation: "Apply", manager: "backstop", apiVersion: "batch/v1", time: nil, fieldsV1: applied)]
        edit(&metadata)
        let data = try JSONEncoder().encode(["metadata": metadata])
        return try JSONDecoder().decode(ObservedCronJob.self, from: data)
    }

    static func observation(_ policy: BackupPolicy, cronJobs: [ObservedCronJob] = [], jobs: [ObservedJob] = [],
                            runs: [String: FinishedRun] = [:], server: ServerCapabilities.Snapshot = current) -> PolicyObservation {
        PolicyObservation(policy: policy, cronJobs: cronJobs, jobs: jobs, runs: runs, server: server, now: now)
    }

    @Test("nothing to apply when the annotation and Backstop's fields are as wanted; a new spec, a hand edit or a missing entry applies again")
    func drift() throws {
        let policy = try Self.example()
        let desired = try PolicyPlan.make(Self.observation(policy), workerImage: "w").desired
        #expect(desired.count == 3)
        let converged = try desired.map { try Self.observed($0) }
        let quiet = try PolicyPlan.make(Self.observation(policy, cronJobs: converged), workerImage: "w")
        #expect(quiet.apply.isEmpty && quiet.delete.isEmpty && quiet.conflicts.isEmpty)

        // Another manager took the image (a kubectl edit): Backstop's entry lost a field.
        let image = Self.fieldSet(of: desired[0]).members.first { $0.last == "f:image" }
        let edited = try Self.observed(desired[0], fields: Self.fieldSet(of: desired[0]).subtracting(FieldSet(members: [try #require(image)])))
        var plan = try PolicyPlan.make(Self.observation(policy, cronJobs: [edited] + converged.dropFirst()), workerImage: "w")
        #expect(plan.apply.map(\.cronJob.metadata.name) == ["orders-production"] && plan.apply.first?.force == true)

        // A third party's label and annotation are not Backstop's concern.
        let labelled = try Self.observed(desired[0]) {
            $0.labels?["team"] = "payments"
            $0.annotations?["note"] = "hand-written"
        }
        plan = try PolicyPlan.make(Self.observation(policy, cronJobs: [labelled] + converged.dropFirst()), workerImage: "w")
        #expect(plan.apply.isEmpty)

        // The policy changed: the annotation names an older desired state.
        var changed = policy
        changed.spec.environments[1].schedule = "45 4 * * *"
        plan = try PolicyPlan.make(Self.observation(changed, cronJobs: converged), workerImage: "w")
        #expect(plan.apply.map(\.cronJob.metadata.name) == ["orders-staging"])

        // A server that records Backstop's fields differently, once applied, is not drift.
        let different = try Self.observed(desired[2], fields: FieldSet(members: [["f:spec", "f:schedule"]]))
        var observation = Self.observation(policy, cronJobs: Array(converged.prefix(2)) + [different])
        #expect(try PolicyPlan.make(observation, workerImage: "w").apply.count == 1)
        observation.acceptedFieldHashes = ["orders-development": FieldSet(members: [["f:spec", "f:schedule"]]).stableHash]
        #expect(try PolicyPlan.make(observation, workerImage: "w").apply.isEmpty)
    }

    @Test("new CronJobs are applied without force; someone else's of the same name is a conflict; a removed environment's is deleted")
    func ownership() throws {
        let policy = try Self.example()
        let desired = try PolicyPlan.make(Self.observation(policy), workerImage: "w").desired
        let foreign = try Self.observed(desired[0]) { $0.ownerReferences = nil }
        var fewer = policy
        fewer.spec.environments.removeLast()
        let plan = try PolicyPlan.make(Self.observation(fewer, cronJobs: [foreign, try Self.observed(desired[2])]), workerImage: "w")
        #expect(plan.conflicts == ["orders-production"])
        #expect(plan.apply.map(\.cronJob.metadata.name) == ["orders-staging"] && plan.apply.first?.force == false)
        #expect(plan.delete == ["orders-development"])
        let status = PolicyPlan.status(Self.observation(fewer), plan: plan, invalid: nil, outcome: ApplyOutcome())
        #expect(status.status.conditions?[.ready]?.reason == .cronJobConflict)
        #expect(status.status.conditions?[.ready]?.message.contains("orders-production") == true)
    }

    @Test("on a server without CronJob time zones: no timeZone sent, ScheduleTimeZone=False naming the zone, one Warning, and a second pass changes nothing")
    func timeZoneUnsupported() throws {
        let policy = try Self.example()
        let first = Self.observation(policy, server: Self.v124)
        let plan = try PolicyPlan.make(first, workerImage: "w")
        #expect(plan.desired.allSatisfy { $0.spec.timeZone == nil })
        var outcome = ApplyOutcome()
        outcome.created = plan.desired.map(\.metadata.name)
        let update = PolicyPlan.status(first, plan: plan, invalid: nil, outcome: outcome)
        let condition = try #require(update.status.conditions?[.scheduleTimeZone])
        #expect(condition.status == .false && condition.reason == .unsupported && condition.message.contains("Europe/Berlin"))
        #expect(condition.message.contains("v1.24.0"))
        #expect(update.statusEvents.filter { $0.reason == "ScheduleTimeZoneUnsupported" && $0.type == .warning }.count == 1)
        #expect(update.status.conditions?[.ready]?.status == .true, "backups keep running without the zone")

        // The next pass sees its own CronJobs and status: nothing to apply, the same status.
        var converged = policy
        converged.status = update.status
        let again = Self.observation(converged, cronJobs: try plan.desired.map { try Self.observed($0) }, server: Self.v124)
        let second = try PolicyPlan.make(again, workerImage: "w")
        #expect(second.apply.isEmpty)
        let next = PolicyPlan.status(again, plan: second, invalid: nil, outcome: ApplyOutcome())
        #expect(next.status == update.status && next.actionEvents.isEmpty)
    }

    @Test("a retried Job whose second pod succeeded is a success, in whatever order its pods are listed")
    func retriedJob() throws {
        let job = ObservedJob(metadata: ObjectMeta(name: "orders-production-29000000", labels: [CronJobBuilder.environmentLabel: "production"]),
                              outcome: .complete, finishedAt: KubeTimestamp(Self.now))
        func pod(_ phase: String, _ message: String, at offset: TimeInterval) throws -> ObservedPod {
            let json = "{\"status\":{\"phase\":\"\(phase)\",\"containerStatuses\":[{\"state\":{\"terminated\":{\"message\":\(String(decoding: JSONValue.string(message).encoded(), as: UTF8.self)),\"finishedAt\":\"\(KubeTime.time(Self.now.addingTimeInterval(offset)))\"}}}]}}"
            return try JSONDecoder().decode(ObservedPod.self, from: Data(json.utf8))
        }
        let failed = try pod("Failed", "{\"command\":\"backup\",\"outcome\":\"failed\",\"message\":\"connection reset\",\"startedAt\":\"2026-11-18T00:00:00Z\",\"completedAt\":\"2026-11-18T00:00:01Z\",\"durationSeconds\":1}", at: -60)
        let succeeded = try pod("Succeeded", "{\"command\":\"backup\",\"outcome\":\"succeeded\",\"backupID\":\"20261118T000100Z-0a1b\",\"startedAt\":\"2026-11-18T00:01:00Z\",\"completedAt\":\"2026-11-18T00:01:05Z\",\"durationSeconds\":5,\"storedBytes\":10}", at: -1)
        for pods in [[failed, succeeded], [succeeded, failed]] {
            let run = PolicyReconciler.run(of: job, environment: "production", outcome: .complete, finished: KubeTimestamp(Self.now), pods: pods)
            #expect(run.succeeded && run.report?.backupID?.rawValue == "20261118T000100Z-0a1b")
        }
        // A failed Job: the newest failed pod's report, by termination time.
        let older = try pod("Failed", "{\"command\":\"backup\",\"outcome\":\"failed\",\"message\":\"first\",\"startedAt\":\"2026-11-18T00:00:00Z\",\"completedAt\":\"2026-11-18T00:00:01Z\",\"durationSeconds\":1}", at: -120)
        for pods in [[older, failed], [failed, older]] {
            let run = PolicyReconciler.run(of: job, environment: "production", outcome: .failed, finished: KubeTimestamp(Self.now), pods: pods)
            #expect(!run.succeeded && run.message == "connection reset")
        }
    }

    @Test("status: last success and failure only move forward; retention shows; the summary spans every environment")
    func status() throws {
        var policy = try Self.example()
        let plan = try PolicyPlan.make(Self.observation(policy), workerImage: "w")
        var report = WorkerReport(command: "backup", outcome: .succeeded, backupID: try BackupID("20261117T020000Z-0a1b"),
                                  startedAt: try #require(UTCTimestamp(rfc3339: "2026-11-17T02:00:00Z")), completedAt: try #require(UTCTimestamp(rfc3339: "2026-11-17T02:00:09Z")),
                                  durationSeconds: 9, storedBytes: 2048)
        report.prune = .init(outcome: .failed, deleted: 0, kept: 4, message: "s3://acme-backups: AccessDenied on DELETE; allow s3:DeleteObject")
        let time = KubeTimestamp(Self.now.addingTimeInterval(-3_600))
        let runs = ["production": FinishedRun(environment: "production", jobName: "j1", time: time, succeeded: true, report: report, message: ""),
                    "staging": FinishedRun(environment: "staging", jobName: "j2", time: time, succeeded: false, report: nil, message: "could not connect")]
        let update = PolicyPlan.status(Self.observation(policy, runs: runs), plan: plan, invalid: nil, outcome: ApplyOutcome())
        let production = try #require(update.status.environments?.first { $0.name == "production" })
        #expect(production.lastSuccessfulBackup?.id == "20261117T020000Z-0a1b" && production.rpo == .met)
        #expect(production.lastRetention?.outcome == .failed)
        #expect(update.status.conditions?[.retentionApplied]?.status == .false)
        #expect(update.status.conditions?[.retentionApplied]?.message.contains("AccessDenied") == true)
        #expect(update.status.conditions?[.lastBackupSucceeded]?.status == .false)
        #expect(update.status.summary?.environments == "production, staging, development")
        #expect(update.status.summary?.backups == "1/3 succeeded; failed: staging; not yet run: development")
        #expect(update.status.summary?.oldestLastSuccess == nil, "an environment that never succeeded is the weakest")
        #expect(Set(update.statusEvents.map(\.reason)) == ["BackupSucceeded", "BackupFailed", "PruneFailed"])

        // An older result arriving late changes nothing.
        policy.status = update.status
        let late = ["production": FinishedRun(environment: "production", jobName: "j0", time: KubeTimestamp(Self.now.addingTimeInterval(-7_200)),
                                              succeeded: false, report: nil, message: "old failure")]
        let again = PolicyPlan.status(Self.observation(policy, runs: late), plan: plan, invalid: nil, outcome: ApplyOutcome())
        #expect(again.status.environments?.first { $0.name == "production" }?.lastFailure == nil)
    }

    @Test("drills: their CronJobs are planned beside the backups', run-now starts backups only, a drill's result sets lastDrill, RestoreVerified and RTOMet")
    func drills() throws {
        let text = try String(contentsOfFile: PolicyReconcilerTests.root + "/k8s/examples/backuppolicy-drills.yaml", encoding: .utf8)
        var policy = try YAMLDecoder().decode(BackupPolicy.self, from: text, source: "drills")
        policy.metadata.uid = Self.uid
        policy.metadata.generation = 1
        policy.metadata.annotations = [CronJobBuilder.runNowAnnotation: "now"]
        let plan = try PolicyPlan.make(Self.observation(policy), workerImage: "w")
        #expect(plan.desired.map(\.metadata.name) == ["billing-production", "billing-production-drill", "billing-staging", "billing-staging-drill"])
        #expect(plan.runNow?.jobs.map(\.metadata.labels?[CronJobBuilder.taskLabel]) == [nil, nil], "run-now backs up; it does not drill")

        var update = PolicyPlan.status(Self.observation(policy), plan: plan, invalid: nil, outcome: ApplyOutcome())
        #expect(update.status.environments?.map(\.drillCronJob) == ["billing-production-drill", "billing-staging-drill"])
        #expect(update.status.environments?.map(\.cronJob) == ["billing-production", "billing-staging"])
        #expect(update.status.conditions?[.restoreVerified]?.reason == .noDrillYet && update.status.conditions?[.rtoMet] == nil)

        func drill(_ environment: String, seconds: Double, succeeded: Bool, at offset: TimeInterval) -> FinishedRun {
            let report = WorkerReport(command: "drill", outcome: succeeded ? .succeeded : .failed, backupID: try? BackupID("20261118T010000Z-0a0b"),
                                      startedAt: UTCTimestamp(secondsSince1970: 1_795_000_000), completedAt: UTCTimestamp(secondsSince1970: 1_795_000_100),
                                      durationSeconds: seconds + 1, message: succeeded ? "restored in \(seconds) s" : "row counts differ")
            var withTime = report
            withTime.restoreSeconds = seconds
            return FinishedRun(environment: environment, jobName: "\(environment)-drill-1", time: KubeTimestamp(Self.now.addingTimeInterval(offset)),
                               succeeded: succeeded, report: withTime, message: withTime.message ?? "")
        }
        policy.status = update.status
        var observation = Self.observation(policy)
        observation.drills = ["production": drill("production", seconds: 2_400, succeeded: true, at: -60),
                              "staging": drill("staging", seconds: 12.5, succeeded: true, at: -30)]
        update = PolicyPlan.status(observation, plan: plan, invalid: nil, outcome: ApplyOutcome())
        let production = try #require(update.status.environments?.first { $0.name == "production" })
        #expect(production.lastDrill?.restoreSeconds == 2_400 && production.lastDrill?.outcome == .succeeded && production.lastDrill?.backupID == "20261118T010000Z-0a0b")
        #expect(update.status.conditions?[.restoreVerified]?.status == .true)
        let rto = try #require(update.status.conditions?[.rtoMet])
        #expect(rto.status == .false && rto.reason == .rtoBreached && rto.message == "production restored in 2400 s, over its RTO of 30m", "\(rto.message)")
        #expect(update.statusEvents.map(\.reason).sorted() == ["DrillSucceeded", "DrillSucceeded", "RTOBreached"])

        // The same results again: no new Event; a failed drill turns RestoreVerified false.
        policy.status = update.status
        observation = Self.observation(policy)
        observation.drills = ["production": drill("production", seconds: 2_400, succeeded: true, at: -60)]
        #expect(PolicyPlan.status(observation, plan: plan, invalid: nil, outcome: ApplyOutcome()).statusEvents.isEmpty)
        observation.drills = ["staging": drill("staging", seconds: 3, succeeded: false, at: 0)]
        update = PolicyPlan.status(observation, plan: plan, invalid: nil, outcome: ApplyOutcome())
        #expect(update.status.conditions?[.restoreVerified]?.status == .false && update.status.conditions?[.restoreVerified]?.message == "staging: row counts differ")
        #expect(update.statusEvents.map(\.reason) == ["DrillFailed"])

        // Before native sidecars (1.29): no sidecar drill CronJob, and the status says why.
        let v128 = ServerCapabilities.Snapshot(version: "v1.28.4", cronJobTimeZone: true, nativeSidecars: false)
        let old = try PolicyPlan.make(Self.observation(policy, server: v128), workerImage: "w")
        #expect(old.desired.map(\.metadata.name) == ["billing-production", "billing-staging", "billing-staging-drill"])
        let refused = PolicyPlan.status(Self.observation(policy, server: v128), plan: old, invalid: nil, outcome: ApplyOutcome())
            .status.conditions?[.restoreVerified]
        #expect(refused?.status == .false && refused?.reason == .sidecarUnsupported && refused?.message.contains("drills of production cannot start") == true)
    }

    @Test("WAL archiving: a check CronJob per archiving environment; its reports set walArchiving, ContinuousArchiving and the metrics; failing and lagging archives turn it false once")
    func archiving() throws {
        let text = try String(contentsOfFile: PolicyReconcilerTests.root + "/k8s/examples/postgres-archiving.yaml", encoding: .utf8)
        let document = try #require(text.components(separatedBy: "\n---\n").first { $0.contains("kind: BackupPolicy") })
        var policy = try YAMLDecoder().decode(BackupPolicy.self, from: document, source: "archiving")
        policy.metadata.uid = Self.uid
        policy.metadata.generation = 1
        let plan = try PolicyPlan.make(Self.observation(policy), workerImage: "w")
        #expect(plan.desired.map(\.metadata.name) == ["ledger-production", "ledger-production-archiving"])
        let check = try #require(plan.desired.last)
        #expect(check.spec.schedule == CronJobBuilder.archivingSchedule)
        #expect(check.spec.jobTemplate.spec.template.spec.containers[0].args == ["wal-status"])

        var update = PolicyPlan.status(Self.observation(policy), plan: plan, invalid: nil, outcome: ApplyOutcome())
        #expect(update.status.environments?.first?.archivingCronJob == "ledger-production-archiving")
        #expect(update.status.conditions?[.continuousArchiving]?.reason == .noArchiveCheckYet)

        func report(archivedAgo seconds: Int64, failing: Bool = false, failures: Int64 = 0, at offset: TimeInterval) -> FinishedRun {
            var report = WorkerReport(command: "wal-status", outcome: .succeeded, startedAt: UTCTimestamp(secondsSince1970: 1_795_000_000),
                                      completedAt: UTCTimestamp(secondsSince1970: 1_795_000_001), durationSeconds: 1)
            report.walArchiving = .init(lastArchivedAt: UTCTimestamp(secondsSince1970: 1_795_000_000 - seconds), lastArchivedFile: "000000010000000000000042",
                                        failedCount: failures, failing: failing, lastFailedFile: failing ? "000000010000000000000043" : nil)
            return FinishedRun(environment: "production", jobName: "ledger-production-archiving-\(Int(offset))", time: KubeTimestamp(Self.now.addingTimeInterval(offset)),
                               succeeded: true, report: report, message: "")
        }
        // Archived two minutes ago, within the RPO of 15m.
        policy.status = update.status
        var observation = Self.observation(policy)
        observation.archivingChecks = ["production": report(archivedAgo: 120, at: -10)]
        update = PolicyPlan.status(observation, plan: plan, invalid: nil, outcome: ApplyOutcome())
        let state = try #require(update.status.environments?.first?.walArchiving)
        #expect(state.lastArchivedFile == "000000010000000000000042" && state.failing == false)
        #expect(update.status.conditions?[.continuousArchiving]?.status == .true && update.statusEvents.isEmpty)
        policy.status = update.status
        let metrics = Metrics()
        metrics.record(policy)
        #expect(metrics.render().contains("backstop_wal_last_archived_timestamp_seconds{namespace=\"shop\",policy=\"ledger\",environment=\"production\"} 1794999880"))

        // archive_command fails: false, one Event, and no second one for the same state.
        observation = Self.observation(policy)
        observation.archivingChecks = ["production": report(archivedAgo: 200, failing: true, failures: 3, at: 0)]
        update = PolicyPlan.status(observation, plan: plan, invalid: nil, outcome: ApplyOutcome())
        #expect(update.status.conditions?[.continuousArchiving]?.reason == .archiveFailing)
        #expect(update.statusEvents.map(\.reason) == ["ArchivingFailing"])
        policy.status = update.status
        #expect(PolicyPlan.status(Self.observation(policy), plan: plan, invalid: nil, outcome: ApplyOutcome()).statusEvents.isEmpty)

        // Nothing archived for longer than the RPO: lagging, though archive_command no longer fails.
        observation = Self.observation(policy)
        observation.archivingChecks = ["production": report(archivedAgo: 3_600, at: 5)]
        update = PolicyPlan.status(observation, plan: plan, invalid: nil, outcome: ApplyOutcome())
        let lagging = try #require(update.status.conditions?[.continuousArchiving])
        #expect(lagging.status == .false && lagging.reason == .archiveLagging && lagging.message.contains("beyond 15 min"), "\(lagging.message)")
        #expect(update.statusEvents.map(\.reason) == ["ArchivingStalled"])
        // An older check arriving late changes nothing.
        policy.status = update.status
        observation = Self.observation(policy)
        observation.archivingChecks = ["production": report(archivedAgo: 10, at: -100)]
        #expect(PolicyPlan.status(observation, plan: plan, invalid: nil, outcome: ApplyOutcome()).status.conditions?[.continuousArchiving]?.reason == .archiveLagging)
    }
}
