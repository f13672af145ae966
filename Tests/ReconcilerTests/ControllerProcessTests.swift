import KubeObjects
import BackstopAPI
import Foundation
import HTTP
import KubeClient
import KubeTestServer
import Sockets
import TestSupport
import Testing

/// The real binary, twice, against the test API server: one leader at a time, health and
/// metrics served, and a handover when the leader is stopped.
@Suite("backstop-controller processes")
struct ControllerProcessTests {
    static let binary = PolicyReconcilerTests.root + "/.build/debug/backstop-controller"

    /// A port free right now: bound, read and released.
    static func freePort() throws -> Int {
        let (descriptor, port) = try TCPSocket.listen()
        close(descriptor)
        return port
    }

    func start(_ identity: String, kubeconfig: String, port: Int, arguments: [String] = []) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.binary)
        process.arguments = ["--health-address", "127.0.0.1:\(port)", "--worker-image", "backstop:test"] + arguments
        process.environment = ProcessInfo.processInfo.environment.merging(
            ["KUBECONFIG": kubeconfig, "HOSTNAME": identity, "POD_NAMESPACE": ControlPlane.namespace, "BACKSTOP_LOG_LEVEL": "critical"]) { _, new in new }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    func get(_ port: Int, _ path: String) async -> HTTPResponse? {
        try? await HTTPClient().send(HTTPRequest(method: "GET", url: "http://127.0.0.1:\(port)\(path)"))
    }

    @Test("two processes: one leader; health and metrics; SIGTERM hands over at once")
    func failover() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the backstop-controller binary first (hack/test.sh does)")
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        try await ControlPlane.install(on: server)
        _ = try await client.create(.backupPolicies, namespace: "shop", try PolicyReconcilerTests.manifest("k8s/examples/backuppolicy.yaml"))
        // The controller as its own ServiceAccount, bound by k8s/rbac.yaml.
        let kubeconfig = try server.writeKubeconfig(namespace: ControlPlane.namespace, token: ControlPlane.token(server))
        defer { try? FileManager.default.removeItem(atPath: kubeconfig) }

        let ports = ["a": try Self.freePort(), "b": try Self.freePort()]
        var processes = ["a": try start("a", kubeconfig: kubeconfig, port: ports["a"]!)]
        defer { for process in processes.values where process.isRunning { process.terminate() } }
        func holder() async -> String? {
            let lease = try? await client.get(.leases, namespace: ControlPlane.namespace, name: "backstop-controller", as: GenericObject.self)
            return lease?.fields["spec"]?["holderIdentity"]?.string
        }
        let test = PolicyReconcilerTests()
        #expect(try await test.eventually { await holder() == "a" })
        processes["b"] = try start("b", kubeconfig: kubeconfig, port: ports["b"]!)
        #expect(try await test.eventually { try await test.cronJobs(client).count == 3 })
        #expect(try await test.eventually { await get(ports["b"]!, "/healthz")?.status == 200 })
        #expect(try await test.eventually { await get(ports["a"]!, "/readyz")?.status == 200 })
        let metrics = await get(ports["a"]!, "/metrics")?.bodyText ?? ""
        #expect(metrics.contains("backstop_reconcile_total") && metrics.contains("backstop_queue_depth"), "\(metrics)")
        // The duration histogram: cumulative buckets, +Inf and _count equal to the reconciles.
        func value(_ name: String) -> Double? {
            metrics.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ").last ?? "") }
        }
        let buckets = metrics.split(separator: "\n").filter { $0.hasPrefix("backstop_reconcile_duration_seconds_bucket") }
            .compactMap { Double($0.split(separator: " ").last ?? "") }
        #expect(buckets.count == 12 && buckets == buckets.sorted(), "\(buckets)")
        #expect(buckets.last == value("backstop_reconcile_duration_seconds_count"))
        #expect(value("backstop_reconcile_duration_seconds_count") == value("backstop_reconcile_total"))
        #expect(await holder() == "a", "the second process waits")

        // Every metric the alert rules and the dashboard use is one the controller exports
        // (`up` is Prometheus' own).
        let exported = Set(metrics.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.compactMap { $0.split(separator: " ").dropFirst(2).first.map(String.init) })
        for file in ["k8s/monitoring/backstop-alerts.yaml", "charts/backstop/dashboards/backstop.json"] {
            let text = try String(contentsOfFile: PolicyReconcilerTests.root + "/" + file, encoding: .utf8)
            let used = Set(text.matches(of: /backstop_[a-z_]+/).map { String($0.output) })
                .map { name in ["_bucket", "_sum", "_count"].reduce(name) { $0.hasSuffix($1) && !exported.contains($0) ? String($0.dropLast($1.count)) : $0 } }
            #expect(!used.isEmpty && used.allSatisfy(exported.contains), "\(file) uses metrics the controller does not export: \(used.filter { !exported.contains($0) }.sorted())")
        }

        // SIGTERM: a releases the lease; b takes over long before the 15 s lease would expire.
        let stopped = ContinuousClock.now
        processes["a"]?.terminate()
        #expect(try await test.eventually { await holder() == "b" })
        #expect(ContinuousClock.now - stopped < .seconds(10))
        // The new leader reconciles: a deleted CronJob comes back.
        try await client.delete(.cronJobs, name: "orders-staging")
        #expect(try await test.eventually { try await test.cronJobs(client)["orders-staging"] != nil })
    }

    @Test("without its RBAC rules the controller is not ready, and /readyz names the access refused: the watch, or the leader Lease")
    func forbidden() async throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.binary), "build the backstop-controller binary first (hack/test.sh does)")
        let server = try TestAPIServer()
        defer { server.stop() }
        try await ControlPlane.install(on: server)
        // A ServiceAccount that k8s/rbac.yaml does not bind.
        let token = server.token(forServiceAccount: "unbound", namespace: ControlPlane.namespace)
        let kubeconfig = try server.writeKubeconfig(namespace: ControlPlane.namespace, token: token)
        defer { try? FileManager.default.removeItem(atPath: kubeconfig) }
        let ports = (watch: try Self.freePort(), lease: try Self.freePort())
        let processes = [try start("w", kubeconfig: kubeconfig, port: ports.watch, arguments: ["--leader-election", "false"]),
                         try start("l", kubeconfig: kubeconfig, port: ports.lease)]
        defer { for process in processes where process.isRunning { process.terminate() } }
        let test = PolicyReconcilerTests()
        #expect(try await test.eventually {
            let answer = await get(ports.watch, "/readyz")
            return answer?.status == 503 && answer?.bodyText.contains("backuppolicies.backstop.dev in all namespaces: list refused") == true
                && answer?.bodyText.contains("cannot list resource \"backuppolicies\"") == true
        })
        #expect(try await test.eventually {
            let answer = await get(ports.lease, "/readyz")
            return answer?.status == 503 && answer?.bodyText.contains("lease \(ControlPlane.namespace)/backstop-controller: get refused") == true
        })
        #expect(await get(ports.watch, "/healthz")?.status == 200, "alive, only not ready")
    }
}
