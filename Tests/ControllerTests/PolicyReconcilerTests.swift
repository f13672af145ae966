import BackstopAPI
import Controller
import Foundation
import KubeClient
import KubeRuntime
import KubeTestServer
import Logging
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
        let deadline = ContinuousClock.now + .seconds(20)
        while ContinuousClock.now < deadline {
            if try await condition() { return true }
            try await Task.sleep(for: .milliseconds(25))
        }
        return try await condition()
    }

    func controller(_ client: KubeClient) -> Controller<GenericObject> {
        let reconciler = PolicyReconciler(client: client, workerImage: "backstop:test", logger: Self.logger)
        return Controller<GenericObject>(
            watcher: Watcher(client: client, resource: .backupPolicies, backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(200))),
            owned: [.init(Watcher(client: client, resource: .cronJobs, labelSelector: "app.kubernetes.io/managed-by=backstop",
                                  backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(200)))) { cronJob in
                guard let policy = cronJob.metadata.labels?[CronJobBuilder.policyLabel], let namespace = cronJob.metadata.namespace else { return nil }
                return "\(namespace)/\(policy)"
            }],
            workers: 2, logger: Self.logger) { key, object in
            try await reconciler.reconcile(key: key, object: object)
        }
    }

    func cronJobs(_ client: KubeClient) async throws -> [String: GenericObject] {
        let items = try await client.listAll(.cronJobs, namespace: "shop", as: GenericObject.self).items
        return Dictionary(uniqueKeysWithValues: items.map { ($0.metadata.name, $0) })
    }

    @Test("CronJobs per environment: created, updated, restored after a hand edit, deleted with their environment; status and events follow")
    func lifecycle() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        _ = try await client.create(.customResourceDefinitions, try Self.manifest("k8s/crds/backuppolicy.yaml"))
        let created = try await client.create(.backupPolicies, namespace: "shop", try Self.manifest("k8s/examples/backuppolicy.yaml"))
        let running = Task { await controller(client).run() }
        defer { running.cancel() }

        #expect(try await eventually { try await cronJobs(client).count == 3 })
        let names = try await cronJobs(client).keys.sorted()
        #expect(names == ["orders-development", "orders-production", "orders-staging"])
        #expect(try await eventually {
            let policy = try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self)
            return policy.status?.conditions?.first { $0.type == "Ready" }?.status == "True" && policy.status?.observedGeneration == 1
                && policy.status?.environments?.map(\.cronJob) == ["orders-production", "orders-staging", "orders-development"]
        })
        let events = try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items
        #expect(events.filter { $0.fields["reason"] == .string("CronJobCreated") }.count == 3)

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

        // Converged: reconciling again writes nothing.
        running.cancel()
        await running.value
        let quiet = server.currentResourceVersion
        let object = try await client.get(.backupPolicies, name: "orders", as: GenericObject.self)
        _ = try await PolicyReconciler(client: client, workerImage: "backstop:test", logger: Self.logger).reconcile(key: "shop/orders", object: object)
        #expect(server.currentResourceVersion == quiet, "nothing is written when nothing changed")

        // Deleting the policy takes its CronJobs (owner references), never anything else.
        try await client.delete(.backupPolicies, name: "orders")
        #expect(try await cronJobs(client).isEmpty)
        _ = created
    }

    @Test("a policy the schema let through but that is still wrong ends Ready=False naming the field")
    func invalidPolicy() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        _ = try await client.create(.customResourceDefinitions, try Self.manifest("k8s/crds/backuppolicy.yaml"))
        var policy = try Self.manifest("k8s/examples/backuppolicy.yaml")
        // Both storages: a CEL rule the test server does not evaluate; the controller does.
        policy["spec"]?["storage"]?["file"] = .object(["path": .string("/backups")])
        _ = try await client.create(.backupPolicies, namespace: "shop", policy)
        let running = Task { await controller(client).run() }
        defer { running.cancel() }
        #expect(try await eventually {
            let ready = try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self).status?.conditions?.first { $0.type == "Ready" }
            return ready?.status == "False" && ready?.reason == "InvalidSpec" && ready?.message.contains("spec.storage") == true
        })
        #expect(try await cronJobs(client).isEmpty)
        let events = try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items
        #expect(events.contains { $0.fields["reason"] == .string("InvalidSpec") && $0.fields["type"] == .string("Warning") })
    }
}
