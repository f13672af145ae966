import KubeObjects
import BlockingCalls
import Foundation
import KubeClient
import KubeTestServer
import TestSupport
import Testing
import YAML
import BackstopAPI

/// The shipped CRD and example, applied with kubectl to the test API server, which enforces
/// the CRD's schema (not its CEL rules: those are checked by the controller's validation).
@Suite("BackupPolicy CRD and example")
struct PolicyManifestTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path

    /// Runs a tool found on PATH; its exit status and combined output.
    static func run(_ arguments: [String]) async throws -> (status: Int32, output: String) {
        let result = try await ToolProcess.run(arguments[0], Array(arguments.dropFirst()), mergingErrors: true)
        return (result.status, result.output)
    }

    func apply(_ server: TestAPIServer, _ yaml: String) async throws -> (status: Int32, output: String) {
        try await KubectlTests().kubectl(server, ["apply", "--validate=false", "-f", "-"], input: yaml)
    }

    @Test("the CRD installs, the example applies with defaults, and schema violations are refused naming the field")
    func crdAndExample() async throws {
        let server = try TestAPIServer(token: "unused", allowAnonymous: true)
        defer { server.stop() }
        let crd = try String(contentsOfFile: Self.root + "/k8s/crds/backuppolicy.yaml", encoding: .utf8)
        let example = try String(contentsOfFile: Self.root + "/k8s/examples/backuppolicy.yaml", encoding: .utf8)
        var result = try await apply(server, crd)
        #expect(result.status == 0, "\(result.output)")
        result = try await KubectlTests().kubectl(server, ["create", "namespace", "shop"])
        result = try await apply(server, example)
        #expect(result.status == 0 && result.output.contains("backuppolicy.backstop.dev/orders created"), "\(result.output)")
        let stored = try #require(server.object(.backupPolicies, namespace: "shop", name: "orders"))
        #expect(stored[path: "spec.concurrencyPolicy"] == .string("Forbid"), "defaults from the schema")
        #expect(stored[path: "spec.database.sslMode"] == nil, "no schema default on a connection: environments override it field by field")
        #expect(stored[path: "spec.environments"]?.array?.first?[path: "retention.minAge"] == .string("1h"))

        let broken: [(String, String, String)] = [
            ("- name: production", "- name: Production", "spec.environments[0].name"),
            ("keep: {within: 30d}", "keep: {within: 30days}", "spec.environments[1].retention.keep.within"),
            ("storageClass: STANDARD_IA", "storageClass: DEEP_ARCHIVE", "spec.environments[0].retention.tiers[0].storageClass"),
            ("keep: {within: 7d}", "keep: {daily: -1}", "spec.environments[2].retention.keep.daily"),
            // Zeros are no rule (restic); an empty keep has none; a bare m is ambiguous.
            ("keep: {within: 7d}", "keep: {daily: 0}", "spec.environments[2].retention.keep.daily: Invalid value: 0: should be greater than or equal to 1"),
            ("keep: {within: 7d}", "keep: {}", "spec.environments[2].retention.keep in body should have at least 1 properties"),
            ("keep: {within: 7d}", "keep: {within: 6m}", "spec.environments[2].retention.keep.within: Invalid value: \"6m\""),
            ("keep: {within: 7d}", "keep: {within: 0d}", "spec.environments[2].retention.keep.within: Invalid value: \"0d\""),
            ("storageClass: STANDARD_IA", "storageClass: GLACIER", "spec.environments[0].retention.tiers[0].storageClass"),
            ("region: eu-central-1", "region: eu-central-1\n      storageClass: DEEP_ARCHIVE", "spec.storage.s3.storageClass"),
            ("- name: development", "- name: staging", "spec.environments[2]: Duplicate value"),
            ("schedule: \"30 3 * * *\"", "schedule: \"daily\"", "spec.environments[1].schedule"),
            ("bucket: acme-backups", "bucket: Acme_Backups", "spec.storage.s3.bucket"),
            ("credentialsSecret: orders-backup ", "sslMode: maybe ", "spec.database.sslMode"),
        ]
        for (index, (original, replacement, field)) in broken.enumerated() {
            #expect(example.contains(original), "case \(index) edits a line the example has")
            let edited = example.replacingOccurrences(of: original, with: replacement).replacingOccurrences(of: "name: orders\n", with: "name: orders-\(index)\n")
            result = try await apply(server, edited)
            #expect(result.status != 0 && result.output.contains(field), "case \(index): \(result.output)")
        }
    }

    @Test("the BackupRestore CRD installs, its examples apply and decode, and schema violations are refused naming the field")
    func restoreCRDAndExamples() async throws {
        let server = try TestAPIServer(token: "unused", allowAnonymous: true)
        defer { server.stop() }
        let crd = try String(contentsOfFile: Self.root + "/k8s/crds/backuprestore.yaml", encoding: .utf8)
        let examples = try String(contentsOfFile: Self.root + "/k8s/examples/restore.yaml", encoding: .utf8)
        var result = try await apply(server, crd)
        #expect(result.status == 0, "\(result.output)")
        _ = try await KubectlTests().kubectl(server, ["create", "namespace", "shop"])
        result = try await apply(server, examples)
        #expect(result.status == 0 && result.output.contains("backuprestore.backstop.dev/orders-rollback created"), "\(result.output)")
        for name in ["orders-check", "orders-to-staging", "orders-rollback"] {
            let stored = try #require(server.object(.backupRestores, namespace: "shop", name: name))
            #expect(throws: Never.self) { try JSONDecoder().decode(BackupRestore.self, from: stored.encoded()) }
        }
        result = try await KubectlTests().kubectl(server, ["get", "br", "-n", "shop"])
        #expect(result.output.contains("POLICY") && result.output.contains("PHASE") && result.output.contains("orders-rollback"), "\(result.output)")

        let broken: [(String, String, String)] = [
            ("mode: Replace", "mode: Overwrite", "spec.mode"),
            ("backup: 20261201T020000Z-3f9a", "backup: yesterday", "spec.backup"),
            ("activeDeadlineSeconds: 7200", "activeDeadlineSeconds: 0", "spec.activeDeadlineSeconds"),
            ("  environment: production\n---", "  environment: production\n  target: {database: {port: 0}}\n---", "spec.target.database.port"),
        ]
        for (index, (original, replacement, field)) in broken.enumerated() {
            #expect(examples.contains(original), "case \(index) edits a line the examples have")
            let edited = examples.replacingOccurrences(of: original, with: replacement).replacingOccurrences(of: "name: orders-", with: "name: broken\(index)-")
            result = try await apply(server, edited)
            #expect(result.status != 0 && result.output.contains(field), "case \(index): \(result.output)")
        }
    }

    @Test("backstop render's CronJobs apply to the API server as they are")
    func renderApplies() async throws {
        let binary = Self.root + "/.build/debug/backstop"
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the backstop binary first (hack/test.sh does)")
        let example = Self.root + "/k8s/examples/backuppolicy.yaml"
        let rendered = try await runBlocking(name: "render") { () throws -> String in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["render", "-f", example, "--image", "backstop:test"]
            let pipe = Pipe()
            process.standardOutput = pipe
            try process.run()
            let text = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return text
        }
        let server = try TestAPIServer(token: "unused", allowAnonymous: true)
        defer { server.stop() }
        _ = try await KubectlTests().kubectl(server, ["create", "namespace", "shop"])
        let result = try await KubectlTests().kubectl(server, ["apply", "--validate=false", "-f", "-"], input: rendered)
        #expect(result.status == 0, "\(result.output)")
        for environment in ["production", "staging", "development"] {
            let cronJob = server.object(.cronJobs, namespace: "shop", name: "orders-\(environment)")
            #expect(cronJob?[path: "spec.jobTemplate.spec.template.spec.containers"]?.array?.first?["image"] == .string("backstop:test"))
        }
    }

    @Test("kubectl kustomize k8s renders the base: both CRDs, namespace, least-privilege RBAC, the Deployment")
    func kustomizeRenders() async throws {
        let base = Self.root + "/k8s"
        let (status, output) = try await Self.run(["kubectl", "kustomize", base])
        #expect(status == 0, "\(output)")
        let kinds = output.split(separator: "\n").filter { $0.hasPrefix("kind: ") }.map { String($0.dropFirst(6)) }.sorted()
        #expect(kinds == ["ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition", "CustomResourceDefinition", "Deployment", "Namespace",
                          "Role", "Role", "RoleBinding", "RoleBinding", "ServiceAccount"])
        #expect(output.contains("name: backuppolicies.backstop.dev") && output.contains("name: backuprestores.backstop.dev"))
        // Secrets: `get` in the controller's own namespace (notification webhooks), never
        // cluster-wide, never list or watch.
        let rbac = try String(contentsOfFile: base + "/rbac.yaml", encoding: .utf8)
        let objects = try YAMLNode.parseDocuments(rbac, source: "rbac.yaml").map { try YAMLDecoder().decode(JSONValue.self, from: $0, source: "rbac.yaml") }
        let secretRules = objects.flatMap { object in
            (object["rules"]?.array ?? []).filter { $0["resources"]?.array?.contains("secrets") == true }.map { (object["kind"]?.string, $0) }
        }
        #expect(secretRules.count == 1 && secretRules[0].0 == "Role" && secretRules[0].1["verbs"] == ["get"], "\(secretRules)")
    }

    /// No API server runs here to compile or evaluate CEL: hack/cel-check.py type-checks every
    /// rule against the types the schema declares, as the API server does when the CRD is
    /// created (its self-test proves `size(self)` on an object is refused, recording 04a), and
    /// runs it with cel-python against accepted and rejected examples.
    @Test("every CEL rule of the CRDs compiles as the API server types it, and accepts and rejects its examples")
    func celRules() async throws {
        let script = Self.root + "/hack/cel-check.py"
        let (status, output) = try await Self.run(["python3", script])
        #expect(status == 0, "\(output)")
        #expect(output.contains("ok  self-test: size(self) on an object is refused"))
        #expect(output.contains("type-checks") && !output.contains("REFUSED"))
        #expect(output.contains("0 failures"))
    }

    /// Schema defaults land on every object the schema describes: a default on the
    /// environment's database would override the policy's port and sslMode with 5432 and
    /// require. Applied through the test server, which fills defaults as the real one does.
    @Test("environments override single connection fields: the policy's port and sslMode reach every environment")
    func connectionOverrides() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        let crd = try YAMLDecoder().decode(JSONValue.self, from: String(contentsOfFile: Self.root + "/k8s/crds/backuppolicy.yaml", encoding: .utf8))
        _ = try await client.create(.customResourceDefinitions, crd)
        var policy = try YAMLDecoder().decode(JSONValue.self, from: String(contentsOfFile: Self.root + "/k8s/examples/backuppolicy.yaml", encoding: .utf8))
        policy["spec"]?["database"]?["port"] = 6432
        policy["spec"]?["database"]?["sslMode"] = "verify-full"
        policy["spec"]?["environments"]?[arrayIndex: 1]?["database"] = ["name": "orders_staging"]
        _ = try await client.create(.backupPolicies, namespace: "shop", policy)
        let stored = try await client.get(.backupPolicies, namespace: "shop", name: "orders", as: BackupPolicy.self)
        let resolved = try stored.resolvedEnvironments()
        #expect(resolved.map(\.database.port) == [6432, 6432, 6432])
        #expect(resolved.map(\.database.sslMode) == ["verify-full", "verify-full", "verify-full"])
        #expect(resolved.map(\.database.host) == ["orders-db.production.svc", "orders-db.shop.svc", "orders-db.development.svc"])
        #expect(resolved[1].database.name == "orders_staging" && resolved[0].database.name == "orders")
        // Unset everywhere, the controller's defaults apply.
        var plain = policy
        plain["metadata"]?["name"] = "plain"
        plain["spec"]?["database"] = ["host": "db", "name": "app", "credentialsSecret": "app-backup"]
        _ = try await client.create(.backupPolicies, namespace: "shop", plain)
        let defaults = try await client.get(.backupPolicies, namespace: "shop", name: "plain", as: BackupPolicy.self).resolvedEnvironments()
        #expect(defaults.allSatisfy { $0.database.port == 5432 && $0.database.sslMode == "require" })
    }
}
