import BackstopAPI
import Reconcilers
import Foundation
import KubeClient
import KubeObjects
import KubeRuntime
import KubeTestServer
import TestSupport
import Testing

/// Wrong policies applied with kubectl while the controller runs: each is refused by the
/// CRD's schema or ends Ready=False naming the field; no CronJob is made for any, and the
/// controller goes on serving the valid policy applied after them. (The test server enforces
/// the schema but not its CEL rules, so those cases reach the controller's own validation, as
/// they would on a cluster older than CEL validation.)
@Suite("Invalid BackupPolicies through kubectl and the controller")
struct InvalidPolicyTests {
    typealias Edit = @Sendable (inout JSONValue) -> Void

    static func spec(_ edit: @escaping @Sendable (inout JSONValue) -> Void) -> Edit {
        { policy in
            var spec = policy["spec"] ?? .object([:])
            edit(&spec)
            policy["spec"] = spec
        }
    }

    static func environment(_ index: Int, _ edit: @escaping @Sendable (inout JSONValue) -> Void) -> Edit {
        spec { spec in
            guard var environments = spec["environments"]?.array else { return }
            edit(&environments[index])
            spec["environments"] = .array(environments)
        }
    }

    static let cases: [(name: String, edit: Edit, field: String)] = [
        ("bad cron", spec { $0["schedule"] = "every day" }, "spec.schedule"),
        ("cron out of range", spec { $0["schedule"] = "61 2 * * *" }, "spec.schedule"),
        ("environment cron", environment(1) { $0["schedule"] = "0 25 * * *" }, "spec.environments[1].schedule"),
        ("unknown time zone", spec { $0["timeZone"] = "Mars/Olympus" }, "spec.timeZone"),
        ("concurrency policy", spec { $0["concurrencyPolicy"] = "Sometimes" }, "spec.concurrencyPolicy"),
        ("no storage", spec { $0["storage"] = .object([:]) }, "spec.storage"),
        ("both storages", spec { $0["storage"]?["file"] = .object(["path": "/backups"]) }, "spec.storage"),
        ("bad bucket", spec { $0["storage"]?["s3"]?["bucket"] = "Acme_Backups" }, "spec.storage.s3.bucket"),
        ("relative path", spec { $0["storage"] = .object(["file": .object(["path": "backups"])]) }, "spec.storage.file.path"),
        ("unknown encryption", spec { $0["storage"]?["s3"]?["serverSideEncryption"] = "rot13" }, "spec.storage.s3.serverSideEncryption"),
        ("endpoint without scheme", spec { $0["storage"]?["s3"]?["endpoint"] = "minio:9000" }, "spec.storage.s3.endpoint"),
        ("compression level", spec { $0["compression"] = .object(["algorithm": "gzip", "level": 12]) }, "spec.compression.level"),
        ("two keys", spec { $0["encryption"]?["passphraseSecret"] = .object(["name": "phrase", "key": "passphrase"]) }, "spec.encryption"),
        ("key secret without name", spec { $0["encryption"] = .object(["keySecret": .object(["key": "key"])]) }, "spec.encryption.keySecret.name"),
        ("no environment", spec { $0["environments"] = .array([]) }, "spec.environments"),
        ("duplicate environment", environment(2) { $0["name"] = "staging" }, "spec.environments[2]"),
        ("environment name", environment(0) { $0["name"] = "Production!" }, "spec.environments[0].name"),
        ("no keep rule", environment(1) { $0["retention"] = .object(["keep": .object([:])]) }, "spec.environments[1].retention.keep"),
        ("negative keep", environment(1) { $0["retention"] = .object(["keep": .object(["daily": -1])]) }, "spec.environments[1].retention.keep.daily"),
        ("bad within", environment(1) { $0["retention"] = .object(["keep": .object(["within": "30 days"])]) }, "spec.environments[1].retention.keep.within"),
        ("zero keep", environment(1) { $0["retention"] = .object(["keep": .object(["last": 0])]) }, "spec.environments[1].retention.keep.last"),
        ("ambiguous within", environment(1) { $0["retention"] = .object(["keep": .object(["within": "6m"])]) }, "spec.environments[1].retention.keep.within"),
        ("archive storage class", spec { $0["storage"]?["s3"]?["storageClass"] = "GLACIER" }, "spec.storage.s3.storageClass"),
        ("archive tier", environment(0) { $0["retention"]?["tiers"] = .array([.object(["after": "90d", "storageClass": "DEEP_ARCHIVE"])]) },
         "spec.environments[0].retention.tiers[0].storageClass"),
        ("bad rpo", environment(0) { $0["objectives"] = .object(["rpo": "one day"]) }, "spec.environments[0].objectives.rpo"),
        ("missing credentials secret", spec { $0["database"]?["credentialsSecret"] = nil }, "credentialsSecret"),
        ("port out of range", environment(2) { $0["database"]?["port"] = 70000 }, "spec.environments[2].database.port"),
        ("ssl mode", spec { $0["database"]?["sslMode"] = "maybe" }, "sslMode"),
        ("objects unencrypted", spec { $0["encryption"] = nil; $0["objects"] = objects }, "spec.objects"),
        ("objects selector empty", spec { $0["objects"] = ["serviceAccountName": "backstop-objects", "secrets": ["selector": .object([:])]] },
         "spec.objects.secrets.selector"),
        ("objects account differs", spec { $0["objects"] = objects; $0["jobTemplate"] = ["serviceAccountName": "other"] },
         "spec.objects.serviceAccountName"),
        ("objects account missing", environment(1) { $0["objects"] = ["serviceAccountName": "nobody", "configMaps": ["selector": ["matchLabels": ["app": "shop"]]]] },
         "spec.environments[1].objects.serviceAccountName: ServiceAccount nobody does not exist"),
        ("objects bad operator", spec { $0["objects"] = ["serviceAccountName": "backstop-objects", "secrets": ["selector": ["matchExpressions": [["key": "app", "operator": "In"]]]]] },
         "spec.objects.secrets.selector.matchExpressions[0].values"),
        ("notification without secret", spec { $0["notifications"] = [["name": "oncall", "webhook": ["secretName": ""]]] }, "spec.notifications[0].webhook.secretName"),
        ("notification names twice", spec { $0["notifications"] = [["name": "oncall", "webhook": ["secretName": "a"]], ["name": "oncall", "webhook": ["secretName": "b"]]] },
         "spec.notifications[1]"),
    ]

    static let objects: JSONValue = ["serviceAccountName": "backstop-objects", "secrets": ["selector": ["matchLabels": ["app": "shop"]]]]

    @Test("every kind of wrong policy: refused by the schema or Ready=False naming the field; the controller carries on")
    func invalidPolicies() async throws {
        let server = try TestAPIServer(token: "unused", allowAnonymous: true)
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        try await ControlPlane.install(on: server)
        let control = try PolicyReconcilerTests().controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }

        let example = try PolicyReconcilerTests.manifest("k8s/examples/backuppolicy.yaml")
        var refused: [String] = [], reported: [String] = []
        for (index, wrong) in Self.cases.enumerated() {
            var policy = example
            policy["metadata"]?["name"] = .string("wrong-\(index)")
            wrong.edit(&policy)
            let applied = try await kubectl(server, ["apply", "--validate=false", "-f", "-"], input: String(decoding: policy.encoded(), as: UTF8.self))
            if applied.status != 0 {
                #expect(applied.output.contains(wrong.field), "\(wrong.name): refused without naming \(wrong.field): \(applied.output)")
                refused.append(wrong.name)
                continue
            }
            let named = try await PolicyReconcilerTests.eventually {
                let ready = try await client.get(.backupPolicies, name: "wrong-\(index)", as: BackupPolicy.self).status?.conditions?.first { $0.type == "Ready" }
                return ready?.status == .false && ready?.reason == "InvalidSpec" && ready?.message.contains(wrong.field) == true
            }
            #expect(named, "\(wrong.name): no Ready=False naming \(wrong.field)")
            reported.append(wrong.name)
        }
        #expect(refused.count + reported.count == Self.cases.count)
        #expect(!reported.isEmpty && !refused.isEmpty, "both paths are exercised (refused: \(refused), reported: \(reported))")

        // Still serving: the valid policy gets its CronJobs, the wrong ones none.
        _ = try await client.create(.backupPolicies, namespace: "shop", example)
        #expect(try await PolicyReconcilerTests.eventually {
            try await client.listAll(.cronJobs, namespace: "shop", as: GenericObject.self).items.count == 3
        })
        let names = try await client.listAll(.cronJobs, namespace: "shop", as: GenericObject.self).items.map(\.metadata.name)
        #expect(names.allSatisfy { $0.hasPrefix("orders-") }, "\(names)")
    }

    @Test("a policy edited so it no longer decodes (a CRD without the schema) ends Ready=False naming the field; other conditions and CronJobs stay")
    func undecodable() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let client = try KubeClient(connection: server.connection(namespace: "shop"))
        // The CRD as an older or hand-made one might be: no schema, anything goes.
        var crd = try PolicyReconcilerTests.manifest("k8s/crds/backuppolicy.yaml")
        guard var versions = crd["spec"]?["versions"]?.array else { Issue.record("the CRD has no versions"); return }
        versions[0]["schema"] = ["openAPIV3Schema": ["type": "object", "x-kubernetes-preserve-unknown-fields": true]]
        crd["spec"]?["versions"] = .array(versions)
        try await ControlPlane.install(on: server, crd: crd)
        // First a good policy, reconciled (Ready and RPOMet conditions), then a wrong edit.
        _ = try await client.create(.backupPolicies, namespace: "shop", try PolicyReconcilerTests.manifest("k8s/examples/backuppolicy.yaml"))
        let control = try PolicyReconcilerTests().controller(server)
        let running = Task { await control.run() }
        defer { running.cancel() }
        func conditions() async throws -> [JSONValue] {
            try await client.get(.backupPolicies, name: "orders", as: GenericObject.self).fields["status"]?["conditions"]?.array ?? []
        }
        #expect(try await PolicyReconcilerTests.eventually { try await conditions().contains { $0["type"] == "RPOMet" } })
        _ = try await client.patch(.backupPolicies, name: "orders", .merge(["spec": ["environments": [
            ["name": "production", "retention": ["keep": ["daily": "seven"]]],
        ]]]), as: GenericObject.self)
        #expect(try await PolicyReconcilerTests.eventually {
            let ready = try await conditions().first { $0["type"] == "Ready" }
            return ready?["status"] == "False" && ready?["reason"] == "InvalidSpec"
                && ready?["message"]?.string?.contains("spec.environments[0].retention.keep.daily: expected a number") == true
        })
        #expect(try await conditions().contains { $0["type"] == "RPOMet" }, "the other conditions stay")
        // The CronJobs of the good version stay: a spec that cannot be read changes nothing.
        #expect(try await client.listAll(.cronJobs, namespace: "shop", as: GenericObject.self).items.count == 3)
        let events = try await client.listAll(.events, namespace: "shop", as: GenericObject.self).items
        #expect(events.filter { $0.fields["reason"] == "InvalidSpec" }.count == 1, "one event, not one per pass")
    }

    func kubectl(_ server: TestAPIServer, _ arguments: [String], input: String) async throws -> (status: Int32, output: String) {
        let cache = FileManager.default.temporaryDirectory.appendingPathComponent("kubectl-cache-\(server.port)").path
        let result = try await ToolProcess.run("kubectl", ["--server", server.url, "--cache-dir", cache] + arguments, input: input, mergingErrors: true)
        return (result.status, result.output)
    }
}
