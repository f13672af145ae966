import BackstopAPI
import Foundation
import HTTP
import KubeClient
import KubeObjects
import KubeRuntime
import KubeTestServer
import Postgres
import Reconcilers
import TestSupport
import Testing

/// The product as a cluster runs it: the controller on the test API server, the real worker
/// binary as the Jobs' pods (the test server's `.worker` runner: env, Secrets as env and as
/// files, logs), the real PostgreSQL and `file://` storage.
@Suite("The product end to end: controller, worker and PostgreSQL", .serialized,
       .enabled(if: ProcessInfo.processInfo.environment["BACKSTOP_SKIP_INTEGRATION"] != "1"))
struct ProductEndToEndTests {
    let test = PolicyReconcilerTests()
    static let worker = PolicyReconcilerTests.root + "/.build/debug/backstop"

    func psql(_ database: String, _ sql: String) async throws -> String {
        let bin = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
            .compactMap(Int.init).max().map { "/usr/lib/postgresql/\($0)/bin" } ?? "/usr/bin"
        let result = try await ToolProcess.run("\(bin)/psql", ["-q", "-tA", "-v", "ON_ERROR_STOP=1", "-d", database, "-c", sql])
        try #require(result.status == 0, "psql: \(result.errors)")
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @Test("run-now backs up through the worker, the drill proves it restores, a BackupRestore restores it with matching row counts, kubectl logs shows the worker's output")
    func backupAndRestore() async throws {
        let environment = ProcessInfo.processInfo.environment
        let port = try #require(environment["PGPORT"], "no PostgreSQL: run hack/test.sh, or set BACKSTOP_SKIP_INTEGRATION=1 to skip integration tests on purpose")
        try #require(FileManager.default.isExecutableFile(atPath: Self.worker), "build the backstop binary first (hack/test.sh does)")
        let source = "t_product_\(UInt32.random(in: 0...UInt32.max))"
        let restored = BackupRestore.defaultDatabaseName(source: source, restore: "orders-check")
        let maintenance = try ConnectionSettings("dbname=postgres")
        try await PostgresConnection.with(maintenance) { try await $0.createDatabase(source) }
        let storage = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-product-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: storage) }
        do {
            try await run(source: source, restored: restored, port: port, storage: storage)
        } catch {
            try? await PostgresConnection.with(maintenance) { server in
                try await server.dropDatabase(source)
                try await server.dropDatabase(restored)
            }
            throw error
        }
        try await PostgresConnection.with(maintenance) { server in
            try await server.dropDatabase(source)
            try await server.dropDatabase(restored)
        }
    }

    func run(source: String, restored: String, port: String, storage: String) async throws {
        let sample = PolicyReconcilerTests.root + "/hack/sample-db.sql"
        _ = try await psql(source, "\\i \(sample)")

        // Anonymous requests act as the administrator: kubectl sends no token over plain http.
        let server = try TestAPIServer(token: "unused", allowAnonymous: true)
        defer { server.stop() }
        try await ControlPlane.install(on: server)
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        server.setJobRunner(.worker(binary: Self.worker))
        let environment = ProcessInfo.processInfo.environment
        let key = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        for (name, data) in [("orders-db", ["username": environment["PGUSER"] ?? "postgres", "password": environment["PGPASSWORD"] ?? ""]),
                             ("backup-key", ["key": key])] {
            let secret: JSONValue = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": .string(name), "namespace": "shop"],
                                     "stringData": .object(data.mapValues { .string($0) })]
            let _: JSONValue = try await client.create(.secrets, namespace: "shop", secret)
        }
        // The application's own Secret, stored with the backups and put back by the restore,
        // read and written as the example's account (k8s/examples/objects-rbac.yaml).
        let apiSecret: JSONValue = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "shop-api", "labels": ["app": "shop"]],
                                    "stringData": ["token": "product-secret-7d41"]]
        let _: JSONValue = try await client.create(.secrets, namespace: "shop", apiSecret)
        try await ControlPlane.apply("k8s/examples/objects-rbac.yaml", namespace: "shop", on: server)
        let policy: JSONValue = [
            "apiVersion": "backstop.dev/v1alpha1", "kind": "BackupPolicy", "metadata": ["name": "orders", "namespace": "shop"],
            "spec": [
                "objects": ["serviceAccountName": "backstop-objects", "secrets": ["selector": ["matchLabels": ["app": "shop"]]]],
                "database": ["host": "127.0.0.1", "port": .number(Double(port) ?? 5432), "name": .string(source), "sslMode": "disable",
                             "credentialsSecret": "orders-db"],
                "encryption": ["keySecret": ["name": "backup-key", "key": "key"]],
                "storage": ["file": ["path": .string(storage)]],
                "environments": [["name": "production", "retention": ["keep": ["last": 3]], "objectives": ["rto": "1h"],
                                  "drill": ["schedule": "0 5 * * 0", "scratch": ["database": [
                                      "host": "127.0.0.1", "port": .number(Double(port) ?? 5432), "sslMode": "disable", "credentialsSecret": "orders-db"]]]]],
            ],
        ]
        _ = try await client.create(.backupPolicies, namespace: "shop", policy)

        let controllerClient = try ControlPlane.controllerClient(server)
        let backoff = Backoff(base: .milliseconds(10), cap: .milliseconds(200))
        let controllers: [any RunnableController] = [
            PolicyReconciler.controller(client: controllerClient, namespace: nil, workerImage: "backstop:test", logger: PolicyReconcilerTests.logger, backoff: backoff),
            RestoreReconciler.controller(client: controllerClient, namespace: nil, workerImage: "backstop:test", logger: PolicyReconcilerTests.logger, backoff: backoff),
        ]
        let running = controllers.map { controller in Task { await controller.run() } }
        defer { for task in running { task.cancel() } }

        #expect(try await test.eventually { try await test.cronJobs(client)["orders-production"] != nil })
        _ = try await client.patch(.backupPolicies, name: "orders", .merge(["metadata": ["annotations": ["backstop.dev/run-now": "first"]]]),
                                   as: GenericObject.self)
        func production() async throws -> BackupPolicy.EnvironmentStatus? {
            try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self).status?.environments?.first { $0.name == "production" }
        }
        let backedUp = try await PolicyReconcilerTests.eventually(timeout: .seconds(60)) {
            let environment = try await production()
            return environment?.lastSuccessfulBackup != nil || environment?.lastFailure != nil
        }
        #expect(backedUp)
        let status = try #require(try await production())
        #expect(status.lastFailure == nil, "\(status.lastFailure?.message ?? "")")
        let backupID = try #require(status.lastSuccessfulBackup?.id)
        let manifest = try JSONDecoder().decode(BackupManifest.self, from: Data(contentsOf: URL(fileURLWithPath: storage + "/shop/orders/production/backups/\(backupID)/manifest.json")))
        #expect(manifest.namespaceObjects?.counts == ["Secret": 1], "the pod read the Secrets as backstop-objects")
        let pod = try #require(server.object(.cronJobs, namespace: "shop", name: "orders-production")?[path: "spec.jobTemplate.spec.template.spec"])
        #expect(pod["serviceAccountName"] == "backstop-objects" && pod["automountServiceAccountToken"] == .bool(true))
        let drillPod = server.object(.cronJobs, namespace: "shop", name: "orders-production-drill")?[path: "spec.jobTemplate.spec.template.spec"]
        #expect(drillPod?["automountServiceAccountToken"] == .bool(false), "only the backup pods get the token")

        // The weekly drill, now: restored into a scratch database of its own, checked, dropped.
        #expect(try await test.eventually { try await test.cronJobs(client)["orders-production-drill"] != nil })
        _ = try server.triggerCronJob(namespace: "shop", name: "orders-production-drill")
        #expect(try await PolicyReconcilerTests.eventually(timeout: .seconds(60)) { try await production()?.lastDrill != nil })
        let drill = try #require(try await production()?.lastDrill)
        #expect(drill.outcome == .succeeded && drill.backupID == backupID && (drill.restoreSeconds ?? 0) > 0, "\(drill.message)")
        let conditions = try await client.get(.backupPolicies, name: "orders", as: BackupPolicy.self).status?.conditions
        #expect(conditions?[.restoreVerified]?.status == .true && conditions?[.rtoMet]?.status == .true)
        let records = try FileManager.default.contentsOfDirectory(atPath: storage + "/shop/orders/production/drills")
        #expect(records.count == 1 && records[0].hasSuffix(".json"), "the drill's record beside the backups, for doctor")

        let original = try #require(server.object(.secrets, namespace: "shop", name: "shop-api"))
        try await client.delete(.secrets, namespace: "shop", name: "shop-api")
        let restore: JSONValue = ["apiVersion": "backstop.dev/v1alpha1", "kind": "BackupRestore", "metadata": ["name": "orders-check", "namespace": "shop"],
                                  "spec": ["policy": "orders", "environment": "production", "objects": true]]
        _ = try await client.create(.backupRestores, namespace: "shop", restore)
        func restoreStatus() async throws -> BackupRestore.Status? { try await client.get(.backupRestores, name: "orders-check", as: BackupRestore.self).status }
        #expect(try await PolicyReconcilerTests.eventually(timeout: .seconds(60)) { try await restoreStatus()?.phase?.isFinished == true })
        let result = try #require(try await restoreStatus())
        #expect(result.phase == .succeeded, "\(result.message ?? "")")
        #expect(result.backupID == backupID && result.tablesChecked == 3 && result.targetDatabase == restored)
        #expect(server.object(.secrets, namespace: "shop", name: "shop-api")?["data"] == original["data"], "objects: true put the Secret back")
        #expect(result.message?.contains("1 Secret(s) and ConfigMap(s) created") == true, "\(result.message ?? "")")
        for table in ["shop.customers", "shop.orders", "audit.events"] {
            #expect(try await psql(restored, "SELECT count(*) FROM \(table)") == psql(source, "SELECT count(*) FROM \(table)"), "\(table)")
        }

        // kubectl logs job/orders-check-restore: the worker's own lines, its summary last.
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("kubectl-cache-\(server.port)").path
        let logs = try await ToolProcess.run("kubectl", ["--server", server.url, "--cache-dir", cache, "logs", "-n", "shop", "job/orders-check-restore"],
                                             mergingErrors: true)
        #expect(logs.status == 0 && logs.output.contains("restored \(backupID) into \(restored)"), "\(logs.output)")
    }

    @Test("a physical environment: run-now takes a base backup through the worker, the archiving check reports the archive, ContinuousArchiving turns true")
    func physical() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.worker), "build the backstop binary first (hack/test.sh does)")
        try #require(getuid() == 0, "the test runs PostgreSQL as the postgres user: run it as root (hack/test.sh in CI is)")
        // A cluster of its own that archives into the policy's storage, as the example's
        // StatefulSet does: the key and the location the worker's pods get from the policy.
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-product-physical-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/storage", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.copyItem(atPath: Self.worker, toPath: root + "/bin/backstop")
        let key = Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
        try Data(key.utf8).write(to: URL(fileURLWithPath: root + "/key"))
        _ = try await ToolProcess.run("/bin/chmod", ["0755", root, root + "/bin", root + "/bin/backstop"])
        _ = try await ToolProcess.run("/bin/chmod", ["0600", root + "/key"])
        _ = try await ToolProcess.run("/bin/chown", ["postgres:postgres", root, root + "/storage", root + "/key"])
        let port = ClusterTools.freePort()
        let push = "\(root)/bin/backstop wal-push %p --storage file://\(root)/storage --namespace shop --policy ledger --environment production --encryption-key-file \(root)/key"
        try await ClusterTools.asPostgres("initdb", ["-D", root + "/data", "-U", "postgres", "--auth=trust"])
        try ClusterTools.append(["listen_addresses = '127.0.0.1'", "port = \(port)", "unix_socket_directories = '\(root)'", "fsync = off",
                                 "wal_level = replica", "archive_mode = on", "archive_command = '\(push)'"], to: root + "/data/postgresql.conf")
        try await ClusterTools.start(root + "/data", log: root + "/server.log")
        defer { ClusterTools.stop(root + "/data") }
        try await ClusterTools.sql(port, "CREATE TABLE ledger (id int); INSERT INTO ledger SELECT generate_series(1, 1000)")
        // The archiver makes the environment's folders first, as the postgres user.
        let first = try await ClusterTools.sql(port, "SELECT pg_walfile_name(pg_switch_wal())")
        #expect(try await PolicyReconcilerTests.eventually(timeout: .seconds(30)) {
            FileManager.default.fileExists(atPath: "\(root)/storage/shop/ledger/production/wal/00000001/\(first).json")
        })

        let server = try TestAPIServer(token: "unused", allowAnonymous: true)
        defer { server.stop() }
        try await ControlPlane.install(on: server)
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        server.setJobRunner(.worker(binary: Self.worker))
        for (name, data) in [("ledger-db", ["username": "postgres", "password": "unused"]), ("backup-key", ["key": key])] {
            let secret: JSONValue = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": .string(name), "namespace": "shop"],
                                     "stringData": .object(data.mapValues { .string($0) })]
            let _: JSONValue = try await client.create(.secrets, namespace: "shop", secret)
        }
        let policy: JSONValue = [
            "apiVersion": "backstop.dev/v1alpha1", "kind": "BackupPolicy", "metadata": ["name": "ledger", "namespace": "shop"],
            "spec": [
                "database": ["host": "127.0.0.1", "port": .number(Double(port)), "name": "postgres", "sslMode": "disable", "credentialsSecret": "ledger-db"],
                "encryption": ["keySecret": ["name": "backup-key", "key": "key"]],
                "storage": ["file": ["path": .string(root + "/storage")]],
                "environments": [["name": "production", "method": "physical", "walArchiving": ["enabled": true], "objectives": ["rpo": "1h"]]],
            ],
        ]
        _ = try await client.create(.backupPolicies, namespace: "shop", policy)
        let controllerClient = try ControlPlane.controllerClient(server)
        let reconciler = PolicyReconciler.controller(client: controllerClient, namespace: nil, workerImage: "backstop:test", logger: PolicyReconcilerTests.logger,
                                                     backoff: Backoff(base: .milliseconds(10), cap: .milliseconds(200)))
        let running = Task { await reconciler.run() }
        defer { running.cancel() }

        #expect(try await test.eventually { try await test.cronJobs(client)["ledger-production-archiving"] != nil })
        _ = try await client.patch(.backupPolicies, name: "ledger", .merge(["metadata": ["annotations": ["backstop.dev/run-now": "first"]]]),
                                   as: GenericObject.self)
        func production() async throws -> BackupPolicy.EnvironmentStatus? {
            try await client.get(.backupPolicies, name: "ledger", as: BackupPolicy.self).status?.environments?.first { $0.name == "production" }
        }
        #expect(try await PolicyReconcilerTests.eventually(timeout: .seconds(90)) {
            let environment = try await production()
            return environment?.lastSuccessfulBackup != nil || environment?.lastFailure != nil
        })
        let backedUp = try #require(try await production())
        #expect(backedUp.lastFailure == nil, "\(backedUp.lastFailure?.message ?? "")")
        let backupID = try #require(backedUp.lastSuccessfulBackup?.id)
        let manifest = try Data(contentsOf: URL(fileURLWithPath: "\(root)/storage/shop/ledger/production/backups/\(backupID)/manifest.json"))
        #expect(String(decoding: manifest, as: UTF8.self).contains("basebackup-tar"), "a physical base backup")

        _ = try server.triggerCronJob(namespace: "shop", name: "ledger-production-archiving")
        #expect(try await PolicyReconcilerTests.eventually(timeout: .seconds(60)) { try await production()?.walArchiving != nil })
        let archiving = try #require(try await production()?.walArchiving)
        #expect(archiving.failing == false && archiving.lastArchivedFile != nil, "\(archiving)")
        let condition = try await client.get(.backupPolicies, name: "ledger", as: BackupPolicy.self).status?.conditions?[.continuousArchiving]
        #expect(condition?.status == .true, "\(condition?.message ?? "no condition")")
    }
}
