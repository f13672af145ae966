import BackstopAPI
import Foundation
import HTTP
import KubeClient
import KubeObjects
import KubeRuntime
import KubeTestServer
import Reconcilers
import Synchronization
import Testing
import Workloads
import YAML

@Suite("BackupRestore reconciler against the test API server")
struct RestoreReconcilerTests {
    let test = PolicyReconcilerTests()

    func controller(_ server: TestAPIServer, metrics: Metrics = Metrics()) throws -> Controller<ObservedRestore> {
        RestoreReconciler.controller(client: try ControlPlane.controllerClient(server), namespace: nil, workerImage: "backstop:test",
                                     logger: PolicyReconcilerTests.logger, metrics: metrics,
                                     backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(200)))
    }

    /// The example restores of `k8s/examples/restore.yaml`, by name.
    static func example(_ name: String) throws -> JSONValue {
        let path = "k8s/examples/restore.yaml"
        let text = try String(contentsOfFile: PolicyReconcilerTests.root + "/" + path, encoding: .utf8)
        let documents = try YAMLNode.parseDocuments(text, source: path).map { try YAMLDecoder().decode(JSONValue.self, from: $0, source: path) }
        return try #require(documents.first { $0[path: "metadata.name"]?.string == name })
    }

    func restore(_ client: KubeClient, _ name: String) async throws -> BackupRestore {
        try await client.get(.backupRestores, name: name, as: BackupRestore.self)
    }

    func jobs(_ client: KubeClient) async throws -> [GenericObject] {
        try await client.listAll(.jobs, namespace: "shop", labelSelector: "app.kubernetes.io/name=backstop-restore", as: GenericObject.self).items
    }

    static func report(outcome: String, message: String, extra: String = "") -> String {
        "{\"backupID\":\"20261201T020000Z-3f9a\",\"command\":\"restore\",\"completedAt\":\"2026-12-01T09:00:42Z\",\"durationSeconds\":41.96,\"outcome\":\"\(outcome)\",\"message\":\"\(message)\",\"startedAt\":\"2026-12-01T09:00:00Z\"\(extra)}\n"
    }

    @Test("a BackupRestore becomes one Job, owned and never retried; its status, conditions, metrics and Events follow the Job and the worker's report")
    func succeeded() async throws {
        let (server, client) = try await test.start()
        defer { server.stop() }
        let seen = Mutex<[JobRun]>([])
        server.setJobRunner(.handler { run in
            seen.withLock { $0.append(run) }
            return JobResult(exitCode: 0, terminationMessage: Self.report(
                outcome: "succeeded", message: "restored into orders_restore_orders_check; row counts of 3 tables match the backup",
                extra: ",\"storedBytes\":4096,\"dumpBytes\":20480,\"tablesChecked\":3"))
        })
        let metrics = Metrics()
        let control = try controller(server, metrics: metrics)
        let running = Task { await control.run() }
        defer { running.cancel() }

        _ = try await client.create(.backupRestores, namespace: "shop", try Self.example("orders-check"))
        #expect(try await test.eventually { try await restore(client, "orders-check").status?.phase == .succeeded })
        let status = try #require(try await restore(client, "orders-check").status)
        #expect(status.backupID == "20261201T020000Z-3f9a" && status.tablesChecked == 3 && status.storedBytes == 4096 && status.dumpBytes == 20480)
        #expect(status.durationSeconds == 42.0 && status.targetDatabase == "orders_restore_orders_check" && status.jobName == "orders-check-restore")
        #expect(status.startedAt != nil && status.completedAt != nil)
        #expect(status.conditions?[.ready]?.status == .true && status.conditions?[.ready]?.reason == .jobCreated)
        #expect(status.conditions?[.restored]?.status == .true && status.conditions?[.restored]?.reason == .restoreSucceeded)
        #expect(status.message?.contains("row counts of 3 tables match") == true)

        let run = try #require(seen.withLock { $0.first })
        #expect(run.args == ["restore", "latest"])
        #expect(run.environment["BACKSTOP_TARGET"] == "host=orders-db.production.svc port=5432 dbname=orders_restore_orders_check sslmode=require")
        #expect(run.environment["BACKSTOP_ENVIRONMENT"] == "production" && run.environment["BACKSTOP_STORAGE"] == "s3://acme-backups/k8s")
        #expect(run.environment["BACKSTOP_DATABASE"] == nil && run.environment["BACKSTOP_KEEP_WITHIN"] == nil, "nothing of the backup's own")

        let made = try await jobs(client)
        #expect(made.count == 1)
        let job = try #require(made.first)
        #expect(job.fields["spec"]?["backoffLimit"]?.int == 0)
        let owner = try #require(job.metadata.ownerReferences?.first)
        #expect(owner.kind == "BackupRestore" && owner.name == "orders-check" && owner.controller == true)

        // The Events follow the status writes they belong to.
        func reasons() async throws -> Set<String> {
            let events = try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items.map(\.fields)
            return Set(events.filter { $0["involvedObject"]?["kind"]?.string == "BackupRestore" }.compactMap { $0["reason"]?.string })
        }
        #expect(try await test.eventually { try await reasons() == ["JobCreated", "RestoreSucceeded"] })

        // Passes after the end change nothing and make no second Job.
        let version = server.currentResourceVersion
        var annotated = try await restore(client, "orders-check")
        annotated.metadata.annotations = ["touched": "1"]
        annotated.spec.noOwner = true  // a new generation: reconciled again
        _ = try await client.update(.backupRestores, namespace: "shop", name: "orders-check", annotated)
        try await Task.sleep(for: .milliseconds(500))
        #expect(try await jobs(client).count == 1)
        #expect(server.currentResourceVersion == version + 1, "only the edit itself was written")
        #expect(metrics.render().contains("backstop_restores_total{outcome=\"succeeded\"} 1"))

    }

    @Test("a failed restore: phase Failed, the worker's message, Restored=False, a Warning; the Job is not retried")
    func failed() async throws {
        let (server, client) = try await test.start()
        defer { server.stop() }
        let attempts = Mutex(0)
        server.setJobRunner(.handler { _ in
            attempts.withLock { $0 += 1 }
            return JobResult(exitCode: 1, terminationMessage: Self.report(outcome: "failed", message: "block 3 of data.dump.zst.enc fails its authentication tag; nothing was restored"))
        })
        let control = try controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }

        _ = try await client.create(.backupRestores, namespace: "shop", try Self.example("orders-check"))
        #expect(try await test.eventually { try await restore(client, "orders-check").status?.phase == .failed })
        let status = try #require(try await restore(client, "orders-check").status)
        #expect(status.message == "block 3 of data.dump.zst.enc fails its authentication tag; nothing was restored")
        #expect(status.conditions?[.restored]?.status == .false && status.conditions?[.restored]?.reason == .restoreFailed)
        #expect(attempts.withLock { $0 } == 1, "backoffLimit 0: one pod")
        // The Event follows the status write it belongs to.
        func warnings() async throws -> Int {
            try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items.map(\.fields)
                .filter { $0["type"]?.string == "Warning" && $0["reason"]?.string == "RestoreFailed" }.count
        }
        #expect(try await test.eventually { try await warnings() == 1 })
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await warnings() == 1, "one Warning, not one per pass")
    }

    @Test("refusals: a missing policy or environment and an unconfirmed Replace make no Job and say why; a Job deleted mid-restore is never made again")
    func refusals() async throws {
        let (server, client) = try await test.start()
        defer { server.stop() }
        let release = Mutex(false)
        server.setJobRunner(.handler { _ in
            while !release.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(20)) }
            return JobResult(exitCode: 0)
        })
        defer { release.withLock { $0 = true } }
        let control = try controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }

        func create(_ name: String, _ spec: JSONValue) async throws {
            let object: JSONValue = ["apiVersion": "backstop.dev/v1alpha1", "kind": "BackupRestore", "metadata": ["name": .string(name), "namespace": "shop"], "spec": spec]
            _ = try await client.create(.backupRestores, namespace: "shop", object)
        }
        func ready(_ name: String) async throws -> Condition? { try await restore(client, name).status?.conditions?[.ready] }

        try await create("no-policy", ["policy": "billing", "environment": "production"])
        try await create("no-environment", ["policy": "orders", "environment": "qa"])
        try await create("unconfirmed", ["policy": "orders", "environment": "production", "mode": "Replace", "confirm": "billing"])
        try await create("onto-source", ["policy": "orders", "environment": "production", "target": ["database": ["name": "orders"]]])
        #expect(try await test.eventually { try await ready("no-policy")?.reason == .policyNotFound })
        #expect(try await ready("no-policy")?.message.contains("no BackupPolicy billing in namespace shop") == true)
        #expect(try await test.eventually { try await ready("no-environment")?.status == .false })
        #expect(try await ready("no-environment")?.message.contains("spec.environment: policy orders has no environment \"qa\"; use one of production, staging, development") == true)
        #expect(try await test.eventually { try await ready("unconfirmed")?.status == .false })
        let unconfirmed = try await ready("unconfirmed")?.message ?? ""
        #expect(unconfirmed.contains("spec.confirm") && unconfirmed.contains("confirm: orders"), "\(unconfirmed)")
        #expect(try await test.eventually { try await ready("onto-source")?.status == .false })
        #expect(try await ready("onto-source")?.message.contains("is the database the backups are taken from") == true)
        // Without confirm a real API server refuses it first (the CRD's CEL rule, checked by
        // hack/cel-check.py; the test server evaluates no CEL): the controller refuses it too.
        try await create("bare-replace", ["policy": "orders", "environment": "production", "mode": "Replace"])
        #expect(try await test.eventually { try await ready("bare-replace")?.message.contains("set confirm: orders to confirm") == true })
        #expect(try await jobs(client).isEmpty)

        // The Job is deleted while the restore runs: the restore fails, no second Job is made.
        try await create("interrupted", ["policy": "orders", "environment": "staging"])
        #expect(try await test.eventually { try await restore(client, "interrupted").status?.phase == .running })
        try await client.delete(.jobs, namespace: "shop", name: "interrupted-restore")
        #expect(try await test.eventually { try await restore(client, "interrupted").status?.phase == .failed })
        #expect(try await restore(client, "interrupted").status?.message?.contains("deleted before it finished") == true)
        try await Task.sleep(for: .milliseconds(300))
        #expect(try await jobs(client).isEmpty)
    }
}
