import BackstopAPI
import Foundation
import KubeClient
import KubeObjects
import KubeTestServer
import TestSupport
import Testing

/// Secrets and ConfigMaps beside the dump, through the `backstop` binary against PostgreSQL
/// and the test API server (RBAC enforced for the ServiceAccount the backup reads as).
@Suite("Secrets and ConfigMaps in backups", .serialized, .enabled(if: TestEnvironment.integrationEnabled))
struct NamespaceObjectsTests {
    /// Values that must never show in a log line or a stored object, nor their base64.
    static let secretValues = ["s3cr3t-db-passw0rd-42", "api-token-7f1e9c0b2d", "helm-release-payload-xyz", "sa-token-value"]

    static var forbidden: [String] {
        secretValues.flatMap { [$0, Data($0.utf8).base64EncodedString()] }
    }

    struct Cluster {
        let server: TestAPIServer
        let client: KubeClient
        /// A kubeconfig with the token of `backstop-objects` in `shop` (get/list on Secrets and
        /// ConfigMaps there, nothing else).
        let readerConfig: String
        /// The administrator's.
        let adminConfig: String
    }

    static func cluster() async throws -> Cluster {
        let server = try TestAPIServer()
        let client = try KubeClient(connection: server.connection())
        func create(_ type: ResourceType, _ namespace: String?, _ object: JSONValue) async throws {
            _ = try await client.create(type, namespace: namespace, object, as: Acknowledgement.self)
        }
        for namespace in ["shop", "shop-restored"] {
            try await create(.namespaces, nil, ["apiVersion": "v1", "kind": "Namespace", "metadata": ["name": .string(namespace)]])
        }
        func secret(_ name: String, labels: [String: JSONValue], type: String? = nil, data: [String: String]) -> JSONValue {
            var object: JSONValue = ["apiVersion": "v1", "kind": "Secret",
                                     "metadata": ["name": .string(name), "labels": .object(labels), "annotations": ["team": "payments"]],
                                     "stringData": .object(data.mapValues { .string($0) })]
            if let type { object["type"] = .string(type) }
            return object
        }
        try await create(.secrets, "shop", secret("db-credentials", labels: ["app": "shop"], data: ["password": secretValues[0]]))
        try await create(.secrets, "shop", secret("api-token", labels: ["app": "shop", "tier": "web"], data: ["token": secretValues[1]]))
        try await create(.secrets, "shop", secret("sh.helm.release.v1.shop.v1", labels: ["app": "shop"], type: "helm.sh/release.v1",
                                                  data: ["release": secretValues[2]]))
        try await create(.secrets, "shop", secret("unrelated", labels: ["app": "billing"], data: ["key": "not-selected"]))
        var token = secret("shop-token", labels: ["app": "shop"], type: "kubernetes.io/service-account-token", data: ["token": "sa-token-value"])
        token["metadata"]?["annotations"] = ["kubernetes.io/service-account.name": "shop"]
        try await create(.secrets, "shop", token)
        try await create(.configMaps, "shop", ["apiVersion": "v1", "kind": "ConfigMap",
                                               "metadata": ["name": "shop-config", "labels": ["app": "shop"]], "data": ["mode": "live"]])
        try await create(.serviceAccounts, "shop", ["apiVersion": "v1", "kind": "ServiceAccount", "metadata": ["name": "backstop-objects"]])
        try await create(.roles, "shop", ["apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": ["name": "backstop-objects"],
                                          "rules": [["apiGroups": [""], "resources": ["secrets", "configmaps"], "verbs": ["get", "list"]]]])
        try await create(.roleBindings, "shop", ["apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": ["name": "backstop-objects"],
                                                 "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "backstop-objects"],
                                                 "subjects": [["kind": "ServiceAccount", "name": "backstop-objects", "namespace": "shop"]]])
        let reader = server.token(forServiceAccount: "backstop-objects", namespace: "shop")
        return Cluster(server: server, client: client, readerConfig: try server.writeKubeconfig(namespace: "shop", token: reader),
                       adminConfig: try server.writeKubeconfig(namespace: "shop"))
    }

    /// Every byte under `folder`, as text.
    static func storedText(_ folder: String) throws -> String {
        var text = ""
        for file in FileManager.default.enumerator(atPath: folder)?.compactMap({ $0 as? String }) ?? [] {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: folder + "/" + file, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
            text += String(decoding: try Data(contentsOf: URL(fileURLWithPath: folder + "/" + file)), as: UTF8.self)
        }
        return text
    }

    @Test("a backup stores the selected Secrets and ConfigMaps encrypted; restore-objects plans, applies into another namespace, exports 0600; no value is ever logged or stored in the clear")
    func roundTrip() async throws {
        try TestEnvironment.requireServer()
        let cluster = try await Self.cluster()
        defer {
            cluster.server.stop()
            try? FileManager.default.removeItem(atPath: cluster.readerConfig)
            try? FileManager.default.removeItem(atPath: cluster.adminConfig)
        }
        let scratch = try CommandLineTests.folder()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try CommandLineTests.write("correct horse battery staple", to: scratch + "/passphrase")
        let scope = ["--storage", "file://\(scratch)/backups", "--namespace", "shop", "--policy", "orders", "--environment", "production"]
        let passphrase = ["--passphrase-file", scratch + "/passphrase"]
        var logs = ""

        try await TestEnvironment.withDatabase("objects") { database in
            try await TestEnvironment.loadSample(into: database)
            let backup = try await CommandLineTests.backstop(
                ["backup", "--database", "dbname=\(database)"] + scope + passphrase,
                ["KUBECONFIG": cluster.readerConfig, "BACKSTOP_SECRETS": "app=shop", "BACKSTOP_CONFIG_MAPS": "app in (shop,web)"])
            logs += backup.output + backup.errors
            #expect(backup.status == 0, "\(backup.errors)")
            #expect(backup.errors.contains("stored 5 object(s) of namespace shop, encrypted"), "\(backup.errors)")
            #expect(!backup.errors.contains("unrelated"))
            #expect((backup.report["message"] as? String ?? "").contains("Secrets and ConfigMaps"), "verify reads the part back: \(backup.report)")

            // The manifest counts kinds; names and values are inside the encrypted object only.
            let folder = scratch + "/backups/shop/orders/production/backups"
            let id = try #require(try FileManager.default.contentsOfDirectory(atPath: folder).first)
            let manifest = try JSONDecoder().decode(BackupManifest.self, from: Data(contentsOf: URL(fileURLWithPath: "\(folder)/\(id)/manifest.json")))
            let part = try #require(manifest.namespaceObjects)
            #expect(part.counts == ["Secret": 4, "ConfigMap": 1])
            #expect(part.object.name == "objects.json.zst.enc")
            #expect(FileManager.default.fileExists(atPath: "\(folder)/\(id)/\(part.object.name)"))

            let doctor = try await CommandLineTests.backstop(["doctor"] + scope + passphrase)
            #expect(doctor.output.contains("Secrets and ConfigMaps stored with the newest backup, encrypted: 4 Secret, 1 ConfigMap"), "\(doctor.output)")
            let listed = try await CommandLineTests.backstop(["list"] + scope)
            #expect(listed.output.contains("OBJECTS") && listed.output.contains("4 Secret, 1 ConfigMap"), "\(listed.output)")

            // The dry run: kinds and names, never values; the Helm record skipped.
            let dryRun = try await CommandLineTests.backstop(["restore-objects", "latest", "--target-namespace", "shop-restored"] + scope + passphrase,
                                                             ["KUBECONFIG": cluster.adminConfig])
            logs += dryRun.output + dryRun.errors
            #expect(dryRun.status == 0, "\(dryRun.errors)")
            #expect(dryRun.output.contains("dry run"))
            #expect(dryRun.output.contains("create Secret/db-credentials"))
            #expect(dryRun.output.contains("create ConfigMap/shop-config"))
            #expect(dryRun.output.contains("skip Secret/sh.helm.release.v1.shop.v1 (a Helm release record"))
            #expect(dryRun.output.contains("skip Secret/shop-token (a ServiceAccount token"))
            #expect(cluster.server.object(.secrets, namespace: "shop-restored", name: "db-credentials") == nil, "a dry run writes nothing")

            // Applied into another namespace: same data, no server-managed metadata carried over.
            let apply = try await CommandLineTests.backstop(["restore-objects", "latest", "--target-namespace", "shop-restored", "--apply"] + scope + passphrase,
                                                            ["KUBECONFIG": cluster.adminConfig])
            logs += apply.output + apply.errors
            #expect(apply.status == 0, "\(apply.errors)")
            let original = try #require(cluster.server.object(.secrets, namespace: "shop", name: "db-credentials"))
            let restored = try #require(cluster.server.object(.secrets, namespace: "shop-restored", name: "db-credentials"))
            #expect(restored["data"] == original["data"])
            #expect(restored[path: "metadata.annotations.team"] == "payments")
            #expect(restored[path: "metadata.uid"] != original[path: "metadata.uid"])
            #expect(cluster.server.object(.configMaps, namespace: "shop-restored", name: "shop-config")?[path: "data.mode"] == "live")
            #expect(cluster.server.object(.secrets, namespace: "shop-restored", name: "sh.helm.release.v1.shop.v1") == nil)
            #expect(cluster.server.object(.secrets, namespace: "shop-restored", name: "shop-token") == nil)
            #expect(cluster.server.object(.secrets, namespace: "shop-restored", name: "unrelated") == nil)

            // Existing objects are kept unless --overwrite, which replaces them.
            var changed = restored
            changed["data"] = ["password": .string(Data("changed".utf8).base64EncodedString())]
            _ = try await cluster.client.update(.secrets, namespace: "shop-restored", name: "db-credentials", changed)
            let again = try await CommandLineTests.backstop(["restore-objects", "latest", "--target-namespace", "shop-restored", "--apply"] + scope + passphrase,
                                                            ["KUBECONFIG": cluster.adminConfig])
            #expect(again.output.contains("keep Secret/db-credentials (exists; --overwrite replaces it)"), "\(again.output)")
            #expect(cluster.server.object(.secrets, namespace: "shop-restored", name: "db-credentials")?["data"] != original["data"])
            let overwrite = try await CommandLineTests.backstop(["restore-objects", "latest", "--target-namespace", "shop-restored", "--apply", "--overwrite"]
                                                                + scope + passphrase, ["KUBECONFIG": cluster.adminConfig])
            logs += again.output + again.errors + overwrite.output + overwrite.errors
            #expect(overwrite.output.contains("replace Secret/db-credentials"), "\(overwrite.output)")
            #expect(cluster.server.object(.secrets, namespace: "shop-restored", name: "db-credentials")?["data"] == original["data"])

            // Exported for kubectl: a new file, mode 0600, stripped of what the server manages.
            let export = scratch + "/objects.yaml"
            let exported = try await CommandLineTests.backstop(["restore-objects", "latest", "-o", "yaml", "--output-file", export,
                                                                "--include-helm-releases", "--include-service-account-tokens"] + scope + passphrase)
            logs += exported.output + exported.errors
            #expect(exported.status == 0, "\(exported.errors)")
            let mode = try FileManager.default.attributesOfItem(atPath: export)[.posixPermissions] as? Int
            #expect(mode == 0o600)
            let yaml = try String(contentsOfFile: export, encoding: .utf8)
            #expect(yaml.contains("kind: List") && yaml.contains("sh.helm.release.v1.shop.v1") && yaml.contains("shop-token"))
            // What the greps below look for is there when asked for: they can fail.
            #expect(yaml.contains(Data(Self.secretValues[0].utf8).base64EncodedString()))
            for managed in ["uid:", "resourceVersion:", "managedFields:", "creationTimestamp:"] { #expect(!yaml.contains(managed), "\(managed) was kept") }
            let existing = try await CommandLineTests.backstop(["restore-objects", "latest", "-o", "yaml", "--output-file", export] + scope + passphrase)
            #expect(existing.status == 64 && existing.errorLine.contains("name a new file"), "\(existing.errors)")
            let toTerminal = try await CommandLineTests.backstop(["restore-objects", "latest", "-o", "yaml"] + scope + passphrase)
            #expect(toTerminal.status == 64 && toTerminal.errorLine.contains("never printed to a terminal"), "\(toTerminal.errors)")

            // Refusals: no encryption; an account without the Role.
            let clear = try await CommandLineTests.backstop(["backup", "--database", "dbname=\(database)", "--secrets", "app=shop"] + scope,
                                                            ["KUBECONFIG": cluster.readerConfig])
            #expect(clear.status == 64 && clear.errorLine.contains("only stored encrypted"), "\(clear.errors)")
            let stranger = cluster.server.token(forServiceAccount: "default", namespace: "shop")
            let strangerConfig = try cluster.server.writeKubeconfig(namespace: "shop", token: stranger)
            defer { try? FileManager.default.removeItem(atPath: strangerConfig) }
            let forbidden = try await CommandLineTests.backstop(["backup", "--database", "dbname=\(database)", "--secrets", "app=shop"] + scope + passphrase,
                                                                ["KUBECONFIG": strangerConfig])
            #expect(forbidden.status == 1 && forbidden.errorLine.contains("cannot list secrets") && forbidden.errorLine.contains("objects-rbac.yaml"),
                    "\(forbidden.errors)")
            logs += clear.errors + forbidden.errors
            #expect(try FileManager.default.contentsOfDirectory(atPath: folder).count == 1, "a refused backup leaves nothing")

            // Not one value, nor its base64, in any log line or any stored byte.
            let stored = try Self.storedText(scratch + "/backups")
            #expect(stored.contains("namespaceObjects"), "the scan reads the manifests too")
            for value in Self.forbidden {
                #expect(!logs.contains(value), "a log shows \(value)")
                #expect(!stored.contains(value), "storage holds \(value) in the clear")
            }
        }
    }
}
