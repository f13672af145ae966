import BackstopAPI
import Foundation
import KubeClient
import KubeObjects
import KubeRuntime
import KubeTestServer
import Reconcilers
import Testing
import Workloads

/// The controller against a test server that defaults, canonicalises, tracks field managers
/// and (as v1.24) drops what it does not serve, as the recorded kube-apiserver does: the
/// failures a real cluster showed must not happen here either.
@Suite("The controller on an API server that behaves like a real one")
struct FaithfulServerTests {
    let test = PolicyReconcilerTests()

    func policy(_ client: KubeClient) async throws -> BackupPolicy {
        try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self)
    }

    /// Waits until nothing has been written for `quiet`, and returns the resourceVersion then.
    func settled(_ server: TestAPIServer, quiet: Duration = .seconds(1)) async throws -> Int {
        var last = server.currentResourceVersion
        var since = ContinuousClock.now
        let deadline = ContinuousClock.now + .seconds(30)
        while ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(100))
            let now = server.currentResourceVersion
            if now != last { (last, since) = (now, ContinuousClock.now) } else if ContinuousClock.now - since >= quiet { return now }
        }
        return last
    }

    @Test("a retried Job whose second pod succeeded records a success; a failed prune shows as RetentionApplied=False and in the metrics")
    func retriedJob() async throws {
        let (server, client) = try await test.start()
        defer { server.stop() }
        let pruneFails = Shared(false)
        server.setJobRunner(.handler { run in
            guard run.attempt > 1 else { return JobResult(exitCode: 1, terminationMessage: "{\"command\":\"backup\",\"outcome\":\"failed\",\"message\":\"connection reset\",\"startedAt\":\"2026-11-22T02:00:00Z\",\"completedAt\":\"2026-11-22T02:00:01Z\",\"durationSeconds\":1}\n") }
            let prune = pruneFails.withLock { $0 } ? ",\"prune\":{\"outcome\":\"failed\",\"deleted\":0,\"kept\":3,\"message\":\"AccessDenied on DELETE\"}" : ",\"prune\":{\"outcome\":\"succeeded\",\"deleted\":1,\"kept\":3}"
            return JobResult(exitCode: 0, terminationMessage: "{\"backupID\":\"20261122T020000Z-0\(run.podName.suffix(3))\",\"command\":\"backup\",\"completedAt\":\"2026-11-22T02:00:05Z\",\"durationSeconds\":5,\"outcome\":\"succeeded\",\"startedAt\":\"2026-11-22T02:00:00Z\",\"storedBytes\":4096\(prune)}\n")
        })
        let metrics = Metrics()
        let control = try test.controller(server, metrics: metrics)
        let running = Task { await control.run() }
        defer { running.cancel() }
        #expect(try await test.eventually { try await test.cronJobs(client).count == 3 })

        _ = try server.triggerCronJob(namespace: "shop", name: "orders-production")
        #expect(try await test.eventually { try await policy(client).status?.environments?.first { $0.name == "production" }?.lastSuccessfulBackup != nil })
        let production = try #require(try await policy(client).status?.environments?.first { $0.name == "production" })
        #expect(production.lastFailure == nil, "the Job is Complete: its failed first pod is not its outcome")
        #expect(production.lastRetention?.outcome == .succeeded && production.lastRetention?.deleted == 1)
        #expect(try await policy(client).status?.conditions?[.lastBackupSucceeded]?.status == .true)
        #expect(try await policy(client).status?.conditions?[.retentionApplied]?.status == .true)

        try await Task.sleep(for: .seconds(1.1))  // results are ordered by their second-granular times
        pruneFails.withLock { $0 = true }
        _ = try server.triggerCronJob(namespace: "shop", name: "orders-production")
        #expect(try await test.eventually { try await policy(client).status?.conditions?[.retentionApplied]?.status == .false })
        #expect(try await policy(client).status?.conditions?[.retentionApplied]?.message.contains("AccessDenied") == true)
        #expect(try await policy(client).status?.conditions?[.lastBackupSucceeded]?.status == .true, "a failed prune does not fail the backup")
        #expect(metrics.render().contains("backstop_retention_failures_total{namespace=\"shop\",policy=\"orders\",environment=\"production\"} 1"))
        let summary = try #require(try await policy(client).status?.summary)
        #expect(summary.environments == "production, staging, development" && summary.backups == "1/3 succeeded; not yet run: staging, development")
    }

    @Test("converged, the controller writes nothing for 30 s; a third party's label and annotation survive its applies; a hand edit of its fields is undone")
    func convergedAndShared() async throws {
        let (server, client) = try await test.start()
        defer { server.stop() }
        let control = try test.controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }
        #expect(try await test.eventually { try await policy(client).status?.conditions?[.ready]?.status == .true })
        let quiet = try await settled(server)
        try await Task.sleep(for: .seconds(30))
        #expect(server.currentResourceVersion == quiet, "a converged controller writes nothing (resourceVersions stable)")

        // Someone else labels and annotates a CronJob (as `kubectl label` would: its own manager).
        let thirdParty = try KubeClient(connection: server.connection(namespace: "shop"))
        let _: JSONValue = try await thirdParty.patch(.cronJobs, name: "orders-production", .merge(["metadata": [
            "labels": ["team": "payments"], "annotations": ["example.com/owner": "payments"],
        ]]))
        // The policy changes: Backstop applies the CronJob again.
        _ = try await client.patch(.backupPolicies, name: "orders", .merge(["spec": ["schedule": "15 1 * * *"]]), as: GenericObject.self)
        #expect(try await test.eventually { try await test.cronJobs(client)["orders-production"]?.fields["spec"]?["schedule"] == "15 1 * * *" })
        var cronJob = try #require(try await test.cronJobs(client)["orders-production"])
        #expect(cronJob.metadata.labels?["team"] == "payments" && cronJob.metadata.annotations?["example.com/owner"] == "payments")

        // A hand edit of a field Backstop sets is undone; the third party's label stays.
        let _: JSONValue = try await thirdParty.patch(.cronJobs, name: "orders-production", .merge(["spec": ["suspend": true]]))
        #expect(try await test.eventually { try await test.cronJobs(client)["orders-production"]?.fields["spec"]?["suspend"] == false })
        cronJob = try #require(try await test.cronJobs(client)["orders-production"])
        #expect(cronJob.metadata.labels?["team"] == "payments")
        // Backstop's apply owns the fields it sets, and only those.
        let entries = cronJob.metadata.managedFields ?? []
        #expect(entries.contains { $0.manager == PolicyReconciler.fieldManager && $0.operation == "Apply" })
        let quietAgain = try await settled(server)
        try await Task.sleep(for: .seconds(2))
        #expect(server.currentResourceVersion == quietAgain)
    }

    @Test("a time zone on a v1.24 server: the refused apply is learnt from, ScheduleTimeZone=False with one Warning, and no update loop")
    func timeZoneOnOldServer() async throws {
        let (server, client) = try await test.start(version: .v1_24)
        defer { server.stop() }
        // Capabilities not read from /version: the 500 alone must teach the controller.
        let control = try test.controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }
        #expect(try await test.eventually { try await test.cronJobs(client).count == 3 })
        #expect(try await test.eventually { try await policy(client).status?.conditions?[.scheduleTimeZone]?.status == .false })
        let condition = try #require(try await policy(client).status?.conditions?[.scheduleTimeZone])
        #expect(condition.reason == .unsupported && condition.message.contains("Europe/Berlin"))
        #expect(try await policy(client).status?.conditions?[.ready]?.status == .true)
        #expect(try await test.cronJobs(client).values.allSatisfy { $0.fields["spec"]?["timeZone"] == nil })
        let quiet = try await settled(server)
        try await Task.sleep(for: .seconds(3))
        #expect(server.currentResourceVersion == quiet, "nothing is written again while nothing changes")
        let warnings = try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items
            .filter { $0.fields["reason"] == "ScheduleTimeZoneUnsupported" }
        #expect(warnings.count == 1 && warnings.first?.fields["type"] == "Warning" && warnings.first?.fields["count"] == 1)

        // Read from /version up front, the same result without a refused request.
        let discovered = await ServerCapabilities.discover(client: try ControlPlane.controllerClient(server), logger: PolicyReconcilerTests.logger)
        #expect(discovered.snapshot == ServerCapabilities.Snapshot(version: "v1.24.0", cronJobTimeZone: false, nativeSidecars: false))
    }

    @Test("an apply the server refuses shows on the policy (Ready=False, ApplyFailed, the API's words) and is not retried hot")
    func refusedApply() async throws {
        let (server, client) = try await test.start(policy: false)
        defer { server.stop() }
        // The controller's ClusterRole without `patch` on CronJobs: every apply is a 403.
        var role: JSONValue = try await client.get(.clusterRoles, name: "backstop-controller")
        let rules = (role["rules"]?.array ?? []).map { rule -> JSONValue in
            guard rule["resources"]?.array?.contains("cronjobs") == true else { return rule }
            var narrowed = rule
            narrowed["verbs"] = .array((rule["verbs"]?.array ?? []).filter { $0 != "patch" })
            return narrowed
        }
        role["rules"] = .array(rules)
        let _: JSONValue = try await client.update(.clusterRoles, name: "backstop-controller", role)
        _ = try await client.create(.backupPolicies, namespace: "shop", try PolicyReconcilerTests.manifest("k8s/examples/backuppolicy.yaml"))
        let metrics = Metrics()
        let control = try test.controller(server, metrics: metrics)
        let running = Task { await control.run() }
        defer { running.cancel() }
        #expect(try await test.eventually {
            let ready = try await policy(client).status?.conditions?[.ready]
            return ready?.status == .false && ready?.reason == .applyFailed && ready?.message.contains("cannot patch resource \"cronjobs\"") == true
        })
        let quiet = try await settled(server)
        func reconciles() -> String? { metrics.render().split(separator: "\n").first { $0.hasPrefix("backstop_reconcile_total ") }.map(String.init) }
        let before = reconciles()
        try await Task.sleep(for: .seconds(2))
        #expect(reconciles() == before, "not retried hot")
        #expect(server.currentResourceVersion == quiet, "no status or Event rewritten")
        #expect(try await test.cronJobs(client).isEmpty)
    }
}
