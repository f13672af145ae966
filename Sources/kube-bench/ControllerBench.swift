import Foundation
import KubeClient
import KubeObjects
import KubeTestServer

/// `kube-bench URL TOKEN controller N BINARY CRD.json…`: the CRDs, N BackupPolicies of three environments each,
/// then the controller binary started cold; time until all 3·N CronJobs exist, the
/// controller's peak RSS and the CPU seconds it used (the rest of the machine's time went to
/// the test API server, which defaults, tracks field managers and serves the watches).
enum ControllerBench {
    static func run(url: String, token: String, policies: Int, binary: String, crds: [String]) async throws {
        let client = try KubeClient(connection: KubeConnection(server: url, namespace: "bench", token: .fixed(token)))
        // Every CRD the controller watches, as a cluster has them.
        for crd in crds {
            let definition = try JSONDecoder().decode(JSONValue.self, from: Data(contentsOf: URL(fileURLWithPath: crd)))
            _ = try? await client.create(.customResourceDefinitions, definition)
        }
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
        let (existing, version) = try await client.listAll(.cronJobs, namespace: "bench", as: Named.self)
        let stream = try client.watch(.cronJobs, namespace: "bench", resourceVersion: version, timeoutSeconds: 600, as: Named.self)
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
        let status = (try? String(contentsOfFile: "/proc/\(controller.processIdentifier)/status", encoding: .utf8)) ?? ""
        func kibibytes(_ field: String) -> Double {
            let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") }
            return Double(line?.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0)
        }
        // The peak, and what the resident memory is made of now: anonymous pages (the heap,
        // stacks, relocated data) and pages of the binary and its libraries, which the kernel
        // maps in blocks around each page touched (how many depends on how it cached the file).
        print(String(format: "controller: %d policies × 3 environments → %d CronJobs in %.1f s from a cold start; peak RSS %.1f MiB (now %.1f MiB anonymous, %.1f MiB mapped files); controller CPU %.1f s",
                     policies, count, elapsed / .seconds(1), kibibytes("VmHWM") / 1024, kibibytes("RssAnon") / 1024, kibibytes("RssFile") / 1024,
                     cpuSeconds(of: controller.processIdentifier)))
    }

    /// User and system time of a running process (`/proc/PID/stat` fields 14 and 15, in
    /// clock ticks).
    static func cpuSeconds(of pid: Int32) -> Double {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return 0 }
        // Fields after the command name (which may hold spaces): state is field 3.
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return 0 }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// An object known by its metadata only: counting needs no more, and the bench must not take
/// the CPU the controller it measures needs (managedFields, the biggest part of the metadata
/// the server sends, are not parsed at all).
struct Named: KubeObject, JSONValueDecodable {
    var metadata: ObjectMeta
    static var unreadFields: [[String]] { [["spec"], ["status"], ["metadata", "managedFields"]] }

    init(json: JSONValue) throws(JSONValue.ShapeError) {
        metadata = try ObjectMeta(json: json["metadata"] ?? .null)
    }
}
