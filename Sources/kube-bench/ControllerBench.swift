import Foundation
import KubeClient
import KubeObjects
import KubeTestServer

/// `kube-bench URL TOKEN controller N BINARY`: N BackupPolicies of three environments each,
/// then the controller binary started cold; time until all 3·N CronJobs exist and the
/// controller's peak RSS.
enum ControllerBench {
    static func run(url: String, token: String, policies: Int, binary: String, crd: String) async throws {
        let client = try KubeClient(connection: KubeConnection(server: url, namespace: "bench", token: .fixed(token)))
        let definition = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: crd)))
        _ = try? await client.create(.customResourceDefinitions, definition)
        for index in 0..<policies {
            let environments: [JSONValue] = ["production", "staging", "development"].map { name in
                .object(["name": .string(name), "retention": .object(["keep": .object(["within": .string("30d")])])])
            }
            let policy: JSONValue = .object([
                "apiVersion": .string("backstop.dev/v1alpha1"), "kind": .string("BackupPolicy"),
                "metadata": .object(["name": .string("app-\(index)"), "namespace": .string("bench")]),
                "spec": .object([
                    "database": .object(["host": .string("db-\(index)"), "name": .string("app"), "credentialsSecret": .string("db-\(index)")]),
                    "storage": .object(["s3": .object(["bucket": .string("acme-backups"), "prefix": .string("app-\(index)")])]),
                    "environments": .array(environments),
                ]),
            ])
            _ = try? await client.create(.backupPolicies, namespace: "bench", policy)
        }
        let kubeconfig = try TestAPIServer.writeKubeconfig(server: url, token: token, namespace: "bench")
        defer { try? FileManager.default.removeItem(atPath: kubeconfig) }
        // CronJobs are counted from a watch: relisting 3,000 objects every few milliseconds
        // would load the server the controller is racing.
        let (existing, version) = try await client.listAll(.cronJobs, namespace: "bench", as: GenericObject.self)
        let stream = try client.watch(.cronJobs, namespace: "bench", resourceVersion: version, timeoutSeconds: 600, as: GenericObject.self)
        let controller = Process()
        controller.executableURL = URL(fileURLWithPath: binary)
        controller.arguments = ["--health-address", "127.0.0.1:0", "--leader-election", "false", "--workers", "4"]
        controller.environment = ProcessInfo.processInfo.environment.merging(["KUBECONFIG": kubeconfig, "BACKSTOP_LOG_LEVEL": "error"]) { _, new in new }
        controller.standardError = FileHandle.nullDevice
        let started = ContinuousClock.now
        try controller.run()
        defer { controller.terminate() }
        var count = existing.count
        for try await event in stream {
            if case .added = event { count += 1 }
            if count >= 3 * policies { break }
        }
        stream.cancel()
        let elapsed = ContinuousClock.now - started
        let peak = (try? String(contentsOfFile: "/proc/\(controller.processIdentifier)/status", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("VmHWM:") }?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        print(String(format: "controller: %d policies × 3 environments → %d CronJobs in %.1f s from a cold start; peak RSS %.1f MiB",
                     policies, count, elapsed / .seconds(1), Double(peak) / 1024))
    }
}
