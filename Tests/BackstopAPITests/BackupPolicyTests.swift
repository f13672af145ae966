import BackstopAPI
import Foundation
import Testing

@Suite("BackupPolicy")
struct BackupPolicyTests {
    /// Seed 004's shape: three environments, 90/30/7 days.
    static let example = """
        {"apiVersion": "backstop.dev/v1alpha1", "kind": "BackupPolicy",
         "metadata": {"name": "orders", "namespace": "shop"},
         "spec": {
           "schedule": "0 2 * * *", "timeZone": "Europe/Berlin",
           "database": {"host": "orders-db.shop.svc", "name": "orders", "credentialsSecret": "orders-backup"},
           "compression": {"algorithm": "zstd"},
           "encryption": {"keySecret": {"name": "backup-key", "key": "key"}},
           "storage": {"s3": {"bucket": "acme-backups", "prefix": "k8s", "region": "eu-central-1"}},
           "environments": [
             {"name": "production", "database": {"host": "orders-db.prod.svc"},
              "retention": {"keep": {"within": "90d"}, "tiers": [{"after": "30d", "storageClass": "STANDARD_IA"}]},
              "objectives": {"rpo": "24h"}},
             {"name": "staging", "schedule": "30 3 * * *", "retention": {"keep": {"within": "30d"}}},
             {"name": "development", "retention": {"keep": {"within": "7d"}}}
           ]}}
        """

    typealias Edit = @Sendable (inout [String: Any]) -> Void

    static func policy(_ edit: Edit = { _ in }) throws -> BackupPolicy {
        var object = try JSONSerialization.jsonObject(with: Data(example.utf8)) as? [String: Any] ?? [:]
        edit(&object)
        return try JSONDecoder().decode(BackupPolicy.self, from: JSONSerialization.data(withJSONObject: object))
    }

    static func spec(_ edit: @escaping Edit) -> Edit {
        { object in
            var spec = object["spec"] as? [String: Any] ?? [:]
            edit(&spec)
            object["spec"] = spec
        }
    }

    static func environment(_ index: Int, _ edit: @escaping Edit) -> Edit {
        spec { spec in
            var environments = spec["environments"] as? [[String: Any]] ?? []
            edit(&environments[index])
            spec["environments"] = environments
        }
    }

    @Test("the example resolves with every default applied")
    func resolves() throws {
        let environments = try Self.policy().resolvedEnvironments()
        #expect(environments.map(\.name) == ["production", "staging", "development"])
        #expect(environments.map(\.schedule) == ["0 2 * * *", "30 3 * * *", "0 2 * * *"])
        #expect(environments[0].database == .init(host: "orders-db.prod.svc", port: 5432, name: "orders", credentialsSecret: "orders-backup", sslMode: "require"))
        #expect(environments[1].database.host == "orders-db.shop.svc")
        #expect(environments[0].retention?.keep.within?.description == "90d")
        #expect(environments[0].retention?.timeZone == "Europe/Berlin")
        #expect(environments[0].tiers.map(\.description) == ["30d:STANDARD_IA"])
        #expect(environments[0].rpo?.description == "1d")
        #expect(environments.allSatisfy { !$0.suspend })
    }

    /// Each wrong policy names the field to fix.
    @Test("invalid policies name the field", arguments: [
        ("bad cron", spec { $0["schedule"] = "every day" }, "spec.schedule"),
        ("cron out of range", spec { $0["schedule"] = "61 2 * * *" }, "spec.schedule"),
        ("cron bad step", spec { $0["schedule"] = "*/0 2 * * *" }, "spec.schedule"),
        ("environment cron", environment(1) { $0["schedule"] = "0 25 * * *" }, "spec.environments[1].schedule"),
        ("unknown time zone", spec { $0["timeZone"] = "Mars/Olympus" }, "spec.timeZone"),
        ("concurrency", spec { $0["concurrencyPolicy"] = "Sometimes" }, "spec.concurrencyPolicy"),
        ("no storage", spec { $0["storage"] = [String: Any]() }, "spec.storage"),
        ("both storages", spec { $0["storage"] = ["s3": ["bucket": "acme-backups"], "file": ["path": "/backups"]] }, "spec.storage"),
        ("bad bucket", spec { $0["storage"] = ["s3": ["bucket": "Acme_Backups"]] }, "spec.storage.s3.bucket"),
        ("relative path", spec { $0["storage"] = ["file": ["path": "backups"]] }, "spec.storage.file.path"),
        ("sse", spec { $0["storage"] = ["s3": ["bucket": "acme-backups", "serverSideEncryption": "rot13"]] }, "spec.storage.s3.serverSideEncryption"),
        ("endpoint", spec { $0["storage"] = ["s3": ["bucket": "acme-backups", "endpoint": "minio:9000"]] }, "spec.storage.s3.endpoint"),
        ("level", spec { $0["compression"] = ["algorithm": "gzip", "level": 12] }, "spec.compression.level"),
        ("two keys", spec { $0["encryption"] = ["keySecret": ["name": "a"], "passphraseSecret": ["name": "b"]] }, "spec.encryption"),
        ("no environment", spec { $0["environments"] = [Any]() }, "spec.environments"),
        ("duplicate environment", environment(2) { $0["name"] = "staging" }, "spec.environments[2].name"),
        ("environment name", environment(0) { $0["name"] = "Production!" }, "spec.environments[0].name"),
        ("no keep rule", environment(1) { $0["retention"] = ["keep": [String: Any]()] }, "spec.environments[1].retention.keep"),
        ("negative keep", environment(1) { $0["retention"] = ["keep": ["daily": -1]] }, "spec.environments[1].retention.keep.daily"),
        ("bad within", environment(1) { $0["retention"] = ["keep": ["within": "30 days"]] }, "spec.environments[1].retention.keep.within"),
        // restic reads 0 as "not set": zeros must not pass as rules that keep something.
        ("zero keep", environment(1) { $0["retention"] = ["keep": ["last": 0]] }, "spec.environments[1].retention.keep.last"),
        ("zero beside a rule", environment(1) { $0["retention"] = ["keep": ["daily": 0, "weekly": 4]] }, "spec.environments[1].retention.keep.daily"),
        ("zero window", environment(1) { $0["retention"] = ["keep": ["within": "0d"]] }, "spec.environments[1].retention.keep.within"),
        ("ambiguous m", environment(1) { $0["retention"] = ["keep": ["within": "6m"]] }, "spec.environments[1].retention.keep.within"),
        ("ambiguous tier age", environment(0) { $0["retention"] = ["keep": ["daily": 7], "tiers": [["after": "3m", "storageClass": "STANDARD_IA"]]] }, "spec.environments[0].retention.tiers[0].after"),
        ("archive storage class", spec { $0["storage"] = ["s3": ["bucket": "acme-backups", "storageClass": "GLACIER"]] }, "spec.storage.s3.storageClass"),
        ("unknown storage class", spec { $0["storage"] = ["s3": ["bucket": "acme-backups", "storageClass": "COLD"]] }, "spec.storage.s3.storageClass"),
        ("archive tier", environment(0) { $0["retention"] = ["keep": ["daily": 7], "tiers": [["after": "90d", "storageClass": "DEEP_ARCHIVE"]]] }, "spec.environments[0].retention.tiers[0].storageClass"),
        ("bad rpo", environment(0) { $0["objectives"] = ["rpo": "one day"] }, "spec.environments[0].objectives.rpo"),
        ("no credentials", spec { $0["database"] = ["host": "db", "name": "orders"] }, "spec.environments[0].database.credentialsSecret"),
        ("no host", spec { $0["database"] = ["name": "orders", "credentialsSecret": "s"] }, "spec.environments[1].database.host"),
        ("bad port", environment(2) { $0["database"] = ["port": 70000] }, "spec.environments[2].database.port"),
        ("bad sslmode", spec { $0["database"] = ["host": "db", "name": "orders", "credentialsSecret": "s", "sslMode": "maybe"] }, "spec.environments[0].database.sslMode"),
        ("physical without archiving", environment(0) { $0["method"] = "physical" }, "spec.environments[0].method"),
        ("physical drill", environment(0) { $0["method"] = "physical"; $0["walArchiving"] = ["enabled": true]; $0["drill"] = ["schedule": "0 5 * * 0"] },
         "spec.environments[0].drill"),
        ("bad policy name", { @Sendable in $0["metadata"] = ["name": "Orders_DB"] }, "metadata.name"),
    ] as [(String, Edit, String)])
    func invalid(_ name: String, _ edit: Edit, _ field: String) throws {
        let policy = try Self.policy(edit)
        do {
            _ = try policy.resolvedEnvironments()
            Issue.record("\(name): accepted")
        } catch {
            #expect(error.field == field, "\(name): \(error.description)")
            #expect(!error.fix.isEmpty)
        }
    }
}
