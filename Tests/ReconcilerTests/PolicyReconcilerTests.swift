import BackstopAPI
import Reconcilers
import Foundation
import HTTP
import KubeClient
import KubeObjects
import KubeRuntime
import KubeTestServer
import Logging
import Synchronization
import Testing
import Workloads
import YAML

@Suite("BackupPolicy reconciler against the test API server")
struct PolicyReconcilerTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    static func manifest(_ path: String) throws -> JSONValue {
        try YAMLDecoder().decode(JSONValue.self, from: String(contentsOfFile: root + "/" + path, encoding: .utf8), source: path)
    }

    static var logger: Logger {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        return logger
    }

    /// Waits for a condition, generously (the test machine is shared).
    func eventually(_ condition: () async throws -> Bool) async throws -> Bool {
        try await Self.eventually(condition)
    }

    /// A failing look (the test server may be injecting faults into every client) counts as
    /// "not yet".
    static func eventually(timeout: Duration = .seconds(20), _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try await Task.sleep(for: .milliseconds(25))
        }
        return try await condition()
    }

    /// The controller for every namespace, as its own ServiceAccount (see `ControlPlane`).
    func controller(_ server: TestAPIServer, metrics: Metrics = Metrics(), maximumAttempts: Int = 5,
                    capabilities: ServerCapabilities = ServerCapabilities(), notifications: NotificationOutbox? = nil,
                    now: @escaping @Sendable () -> Date = { Date() }) throws -> Controller<ObservedPolicy> {
        PolicyReconciler.controller(client: try ControlPlane.controllerClient(server, maximumAttempts: maximumAttempts), namespace: nil,
                                    workerImage: "backstop:test", logger: Self.logger, metrics: metrics,
                                    backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(200)), capabilities: capabilities,
                                    notifications: notifications, now: now)
    }

    /// A test API server with the CRD and RBAC installed and, unless `policy` is false, the
    /// example policy; the client is the administrator's.
    func start(policy: Bool = true, version: KubernetesVersion = .v1_32) async throws -> (TestAPIServer, KubeClient) {
        let server = try TestAPIServer(version: version)
        try await ControlPlane.install(on: server)
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        if policy { _ = try await client.create(.backupPolicies, namespace: "shop", try Self.manifest("k8s/examples/backuppolicy.yaml")) }
        return (server, client)
    }

    func cronJobs(_ client: KubeClient) async throws -> [String: GenericObject] {
        let items = try await client.listAll(.cronJobs, namespace: "shop", as: GenericObject.self).items
        return Dictionary(uniqueKeysWithValues: items.map { ($0.metadata.name, $0) })
    }

    @Test("CronJobs per environment: created, updated, restored after a hand edit, deleted with their environment; status and events follow")
    func lifecycle() async throws {
        let (server, client) = try await start()
        defer { server.stop() }
        let control = try controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }

        #expect(try await eventually { try await cronJobs(client).count == 3 })
        let names = try await cronJobs(client).keys.sorted()
        #expect(names == ["orders-development", "orders-production", "orders-staging"])
        #expect(try await eventually {
            let policy = try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self)
            return policy.status?.conditions?.first { $0.type == "Ready" }?.status == .true && policy.status?.observedGeneration == 1
                && policy.status?.environments?.map(\.cronJob) == ["orders-production", "orders-staging", "orders-development"]
        })
        // The pass records its Events after the status write the condition above sees.
        #expect(try await eventually {
            let events = try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items
            let created = events.filter { $0.fields["reason"] == .string("CronJobCreated") }
            return created.count == 1 && created.first?.fields["message"] == .string("created orders-production, orders-staging, orders-development")
        })

        // A spec change reaches the CronJob.
        _ = try await client.patch(.backupPolicies, name: "orders", .json([
            .object(["op": .string("replace"), "path": .string("/spec/environments/1/schedule"), "value": .string("45 4 * * *")]),
        ]), as: GenericObject.self)
        #expect(try await eventually { try await cronJobs(client)["orders-staging"]?.fields["spec"]?["schedule"] == .string("45 4 * * *") })

        // A hand edit is put back.
        _ = try await client.patch(.cronJobs, name: "orders-production", .merge(.object(["spec": .object(["suspend": .bool(true)])])), as: GenericObject.self)
        #expect(try await eventually { try await cronJobs(client)["orders-production"]?.fields["spec"]?["suspend"] == .bool(false) })

        // An environment that leaves the policy takes its CronJob with it.
        _ = try await client.patch(.backupPolicies, name: "orders", .json([
            .object(["op": .string("test"), "path": .string("/spec/environments/2/name"), "value": .string("development")]),
            .object(["op": .string("remove"), "path": .string("/spec/environments/2")]),
        ]), as: GenericObject.self)
        #expect(try await eventually { try await cronJobs(client)["orders-development"] == nil })
        #expect(try await eventually {
            try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self).status?.environments?.map(\.name) == ["production", "staging"]
        })
        // Each change, even one that leaves the status as it was, has its Event.
        let reasons = try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items.compactMap { $0.fields["reason"]?.string }
        #expect(reasons.filter { $0 == "CronJobUpdated" }.count >= 2, "the schedule change and the restored hand edit: \(reasons)")
        #expect(reasons.contains("CronJobDeleted"))

        // Converged: a restarted controller reconciles every policy again and writes nothing.
        running.cancel()
        await running.value
        let quiet = server.currentResourceVersion
        let metrics = Metrics()
        let restarted = try controller(server, metrics: metrics)
        let rerun = Task { await restarted.run() }
        #expect(try await eventually { metrics.render().contains("\nbackstop_reconcile_total 1\n") })
        try await Task.sleep(for: .milliseconds(300))
        rerun.cancel()
        await rerun.value
        #expect(server.currentResourceVersion == quiet, "nothing is written when nothing changed")

        // Deleting the policy takes its CronJobs (owner references), never anything else.
        try await client.delete(.backupPolicies, name: "orders")
        #expect(try await cronJobs(client).isEmpty)
    }

    @Test("status from finished Jobs: the worker's report becomes the last success or failure; conditions and RPO follow; status only moves forward")
    func results() async throws {
        let (server, client) = try await start()
        defer { server.stop() }
        // Pods succeed or fail in this order; the example's Jobs retry once (backoffLimit 1).
        let outcomes = Shared([true, false, false])
        let number = Shared(0)
        server.setJobRunner(.handler { run in
            let (succeeds, index) = outcomes.withLock { list in (list.isEmpty ? true : list.removeFirst(), number.withLock { $0 += 1; return $0 }) }
            let report = succeeds
                ? "{\"backupID\":\"20261122T020000Z-00\(index)a\",\"command\":\"backup\",\"completedAt\":\"2026-11-22T02:00:05Z\",\"durationSeconds\":5.5,\"outcome\":\"succeeded\",\"startedAt\":\"2026-11-22T02:00:00Z\",\"storedBytes\":4096,\"verified\":true}"
                : "{\"command\":\"backup\",\"completedAt\":\"2026-11-22T02:00:05Z\",\"durationSeconds\":0.5,\"message\":\"could not connect to server: check --database\",\"outcome\":\"failed\",\"startedAt\":\"2026-11-22T02:00:00Z\"}"
            return JobResult(exitCode: succeeds ? 0 : 1, terminationMessage: report + "\n")
        })
        let control = try controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }
        #expect(try await eventually { try await cronJobs(client).count == 3 })
        func production() async throws -> BackupPolicy.EnvironmentStatus? {
            try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self).status?.environments?.first { $0.name == "production" }
        }
        func condition(_ type: Condition.ConditionType) async throws -> Condition? {
            try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self).status?.conditions?.first { $0.type == type }
        }
        // Before any backup, production's 24h RPO is breached.
        #expect(try await eventually { try await condition("RPOMet")?.status == .false })

        _ = try server.triggerCronJob(namespace: "shop", name: "orders-production")
        #expect(try await eventually { try await production()?.lastSuccessfulBackup?.id == "20261122T020000Z-001a" })
        let success = try #require(try await production()?.lastSuccessfulBackup)
        #expect(success.bytes == 4096 && success.durationSeconds == 5.5)
        #expect(try await eventually {
            let rpo = try await condition("RPOMet")?.status
            let last = try await condition("LastBackupSucceeded")?.status
            return rpo == .true && last == .true
        })

        try await Task.sleep(for: .seconds(1.1))  // results are ordered by their second-granular times
        _ = try server.triggerCronJob(namespace: "shop", name: "orders-production")  // both pods fail
        #expect(try await eventually { try await production()?.lastFailure?.message == "could not connect to server: check --database" })
        #expect(try await eventually { try await condition("LastBackupSucceeded")?.status == .false })
        #expect(try await production()?.lastSuccessfulBackup == success, "a failure does not erase the last success")

        // Jobs garbage-collected: the recorded results stay.
        for job in try await client.listAll(.jobs, namespace: "shop", as: GenericObject.self).items {
            try await client.delete(.jobs, name: job.metadata.name, propagation: .background)
        }
        _ = try await client.patch(.backupPolicies, name: "orders", .merge(.object(["metadata": .object(["labels": .object(["touch": .string("1")])])])), as: GenericObject.self)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await production()?.lastSuccessfulBackup == success)
        #expect(try await production()?.lastFailure != nil)
        let events = try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items.compactMap { $0.fields["reason"]?.string }
        #expect(events.contains("BackupSucceeded") && events.contains("BackupFailed"))
    }

    @Test("run-now: one Job per environment (or the one named), once per value; not while one runs")
    func runNow() async throws {
        let (server, client) = try await start()
        defer { server.stop() }
        let control = try controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }
        #expect(try await eventually { try await cronJobs(client).count == 3 })
        func jobs() async throws -> [GenericObject] { try await client.listAll(.jobs, namespace: "shop", as: GenericObject.self).items }
        func annotate(_ annotations: [String: JSONValue]) async throws {
            _ = try await client.patch(.backupPolicies, name: "orders", .merge(.object(["metadata": .object(["annotations": .object(annotations)])])),
                                       as: GenericObject.self)
        }

        // No Job runner: Jobs stay running, as on a cluster with busy nodes.
        try await annotate(["backstop.dev/run-now": .string("2026-11-22-a"), "backstop.dev/run-now-environment": .string("staging")])
        #expect(try await eventually { try await jobs().count == 1 })
        #expect(try await jobs().first?.metadata.labels?[CronJobBuilder.environmentLabel] == "staging")
        #expect(try await eventually {
            try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self).status?.lastHandledRunNow == "2026-11-22-a"
        })
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await jobs().count == 1, "once per value")

        // All environments; staging's Job is still running, so it is skipped.
        try await annotate(["backstop.dev/run-now": .string("2026-11-22-b"), "backstop.dev/run-now-environment": .null])
        #expect(try await eventually { try await jobs().count == 3 })
        let environments = try await jobs().compactMap { $0.metadata.labels?[CronJobBuilder.environmentLabel] }.sorted()
        #expect(environments == ["development", "production", "staging"])
        #expect(try await eventually {
            try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items.contains { $0.fields["reason"] == "RunNowSkipped" }
        })
    }

    @Test("converges through dropped watches, a 410 and injected 409s and 500s")
    func convergesThroughFaults() async throws {
        let (server, client) = try await start(policy: false)
        defer { server.stop() }
        var policies: [String] = []
        for index in 0..<5 {
            var policy = try Self.manifest("k8s/examples/backuppolicy.yaml")
            policy["metadata"]?["name"] = .string("orders-\(index)")
            policies.append("orders-\(index)")
            _ = try await client.create(.backupPolicies, namespace: "shop", policy)
        }
        // Few attempts per request, so injected failures reach the reconciler's own retries.
        let control = try controller(server, maximumAttempts: 2)
        let running = Task { await control.run() }
        defer { running.cancel() }
        try await Task.sleep(for: .milliseconds(100))
        server.failNextRequests(6, status: 409)
        server.dropConnections()
        try await Task.sleep(for: .milliseconds(100))
        server.expireResourceVersions()
        server.dropConnections()
        server.failNextRequests(4, status: 500)
        #expect(try await eventually { try await cronJobs(client).count == 15 })
        #expect(try await eventually {
            var ready = 0
            for name in policies {
                let policy = try await client.get(.backupPolicies, name: name, as: BackupPolicy.self)
                if policy.status?.conditions?.first(where: { $0.type == "Ready" })?.status == .true { ready += 1 }
            }
            return ready == policies.count
        })
        // A change after the faults still arrives.
        _ = try await client.patch(.backupPolicies, name: "orders-3", .json([
            .object(["op": .string("add"), "path": .string("/spec/environments/0/schedule"), "value": .string("15 1 * * *")]),
        ]), as: GenericObject.self)
        #expect(try await eventually { try await cronJobs(client)["orders-3-production"]?.fields["spec"]?["schedule"] == .string("15 1 * * *") })
    }

    @Test("a CronJob of the same name that is not the policy's is left alone and reported")
    func foreignCronJob() async throws {
        let (server, client) = try await start(policy: false)
        defer { server.stop() }
        let foreign: JSONValue = [
            "apiVersion": "batch/v1", "kind": "CronJob",
            "metadata": ["name": "orders-production", "namespace": "shop", "labels": ["team": "payments"]],
            "spec": ["schedule": "0 5 * * *", "jobTemplate": ["spec": ["template": ["spec": [
                "restartPolicy": "Never", "containers": [["name": "report", "image": "payments/report:1"]],
            ]]]]],
        ]
        _ = try await client.create(.cronJobs, namespace: "shop", foreign)
        _ = try await client.create(.backupPolicies, namespace: "shop", try Self.manifest("k8s/examples/backuppolicy.yaml"))
        let control = try controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }
        #expect(try await eventually {
            let ready = try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self).status?.conditions?.first { $0.type == "Ready" }
            return ready?.status == .false && ready?.reason == "CronJobConflict" && ready?.message.contains("orders-production") == true
        })
        let kept = try await client.get(.cronJobs, name: "orders-production", as: GenericObject.self)
        #expect(kept.fields["spec"]?["schedule"] == "0 5 * * *" && kept.metadata.labels == ["team": "payments"], "someone else's CronJob is not touched")
    }

    @Test("a policy the schema let through but that is still wrong ends Ready=False naming the field")
    func invalidPolicy() async throws {
        let (server, client) = try await start(policy: false)
        defer { server.stop() }
        var policy = try Self.manifest("k8s/examples/backuppolicy.yaml")
        // Both storages: a CEL rule the test server does not evaluate; the controller does.
        policy["spec"]?["storage"]?["file"] = .object(["path": .string("/backups")])
        _ = try await client.create(.backupPolicies, namespace: "shop", policy)
        let control = try controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }
        #expect(try await eventually {
            let ready = try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self).status?.conditions?.first { $0.type == "Ready" }
            return ready?.status == .false && ready?.reason == "InvalidSpec" && ready?.message.contains("spec.storage") == true
        })
        #expect(try await cronJobs(client).isEmpty)
        let events = try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items
        #expect(events.contains { $0.fields["reason"] == .string("InvalidSpec") && $0.fields["type"] == .string("Warning") })
    }
}

/// A value shared between a test and the closures it hands out.
final class Shared<Value: Sendable>: Sendable {
    private let value: Mutex<Value>
    init(_ value: Value) { self.value = Mutex(value) }
    func withLock<T>(_ body: (inout Value) -> T) -> T { value.withLock { body(&$0) } }
}
