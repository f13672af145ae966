import BackstopAPI
import Foundation
import Postgres
import TestSupport
import Testing

/// The `backstop` binary as a user meets it: bad flags and variables, unreadable files, damaged
/// storage, holds, output formats, policy files. Every error is one line,
/// `backstop: error: <what failed>; <what to do>`, with exit 64 for usage and 1 for failures,
/// and never shows Swift's internals.
@Suite("The backstop command line against PostgreSQL", .serialized, .enabled(if: TestEnvironment.integrationEnabled))
struct CommandLineTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../..").standardized.path
    static let binary = root + "/.build/debug/backstop"

    struct Run {
        let status: Int32
        let output: String
        let errors: String

        /// The `backstop: error:` line.
        var errorLine: String { errors.split(separator: "\n").last { $0.hasPrefix("backstop: error: ") }.map(String.init) ?? "" }
        var report: [String: Any] {
            let line = output.split(separator: "\n").last { $0.hasPrefix("{") }.map(String.init) ?? "{}"
            return (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any] ?? [:]
        }
    }

    static func backstop(_ arguments: [String], _ environment: [String: String] = [:], input: String? = nil) async throws -> Run {
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the backstop binary first (hack/test.sh does)")
        let result = try await ToolProcess.run(binary, arguments, input: input, environment: environment)
        return Run(status: result.status, output: result.output, errors: result.errors)
    }

    /// A fresh storage folder and a file in it.
    static func folder() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-cli-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func write(_ text: String, to path: String) throws {
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
    }

    /// Internals a message must never show.
    static let internals = ["DecodingError", "CodingKeys", "The given data was not valid JSON", "Swift.", "Optional(", "Error Domain"]

    @Test("bad flags, variables and files: one line naming what was given, exit 64")
    func usageErrors() async throws {
        let scratch = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Self.write("", to: scratch + "/empty")
        try Self.write("short", to: scratch + "/short-key")
        try Self.write("kind: ConfigMap\napiVersion: v1\nmetadata: {name: x}\n", to: scratch + "/configmap.yaml")
        let policy = try String(contentsOfFile: Self.root + "/k8s/examples/backuppolicy.yaml", encoding: .utf8)
        try Self.write(policy.replacingOccurrences(of: "  schedule:", with: "  schedulee:"), to: scratch + "/typo.yaml")
        try Self.write(policy.replacingOccurrences(of: "backstop.dev/v1alpha1", with: "backstop.dev/v1"), to: scratch + "/version.yaml")
        let storage = ["BACKSTOP_STORAGE": "file://\(scratch)/backups"]
        let probes: [(arguments: [String], environment: [String: String], says: [String])] = [
            (["prune", "--keep-last", "0", "--min-age", "0s"], storage, ["no keep rule is in force", "--keep-last 0: 0 is no rule"]),
            (["prune", "--keep-daily", "0", "--keep-within", "0d"], storage, ["no keep rule is in force", "--keep-daily 0", "--keep-within 0d"]),
            (["prune"], storage.merging(["BACKSTOP_KEEP_DAILY": "0"]) { $1 }, ["BACKSTOP_KEEP_DAILY=0"]),
            (["prune"], storage, ["no keep rule is in force"]),
            (["prune", "--keep-within", "6m"], storage, ["--keep-within", "6 months", "6 minutes", "6mo", "6min"]),
            (["prune"], storage.merging(["BACKSTOP_KEEP_WITHIN": "3m"]) { $1 }, ["BACKSTOP_KEEP_WITHIN", "3 months"]),
            (["prune", "--keep-daily", "-1"], storage, ["--keep-daily -1 is negative", "unlimited"]),
            (["prune", "--keep-daily", "seven"], storage, ["--keep-daily seven is not a count"]),
            (["prune", "--keep-daily", "1", "--tier", "6m:STANDARD_IA"], storage, ["--tier", "ambiguous"]),
            (["prune", "--keep-daily", "1", "--min-age", "6mo"], storage, ["--min-age", "no fixed length"]),
            (["prune", "--keep-daily", "1", "--time-zone", "Mars/Olympus"], storage, ["--time-zone Mars/Olympus", "IANA"]),
            (["backup", "--storage", "s3://acme-backups/k8s", "--s3-storage-class", "GLACIER"], [:], ["--s3-storage-class GLACIER", "GLACIER_IR"]),
            (["backup", "--storage", "s3://acme-backups/k8s"], ["BACKSTOP_S3_STORAGE_CLASS": "COLD"], ["BACKSTOP_S3_STORAGE_CLASS=COLD", "STANDARD_IA"]),
            (["backup"], storage.merging(["BACKSTOP_COMPRESSION": "lz4"]) { $1 }, ["BACKSTOP_COMPRESSION=lz4", "zstd, gzip or none"]),
            (["backup", "--level", "42"], storage, ["--level 42", "1-19"]),
            (["backup", "--encryption-key-file", "/nonexistent/key"], storage, ["--encryption-key-file /nonexistent/key cannot be read"]),
            (["backup", "--encryption-key-file", scratch + "/short-key"], storage, ["--encryption-key-file \(scratch)/short-key holds 5 bytes"]),
            (["backup"], storage.merging(["BACKSTOP_PASSPHRASE_FILE": scratch + "/empty"]) { $1 }, ["BACKSTOP_PASSPHRASE_FILE \(scratch)/empty is empty"]),
            (["backup", "--password-file", scratch + "/empty"], storage, ["--password-file \(scratch)/empty is empty"]),
            (["backup", "--database", "orders"], storage, ["--database:", "host=db dbname=orders"]),
            (["backup"], storage.merging(["BACKSTOP_DATABASE": "orders"]) { $1 }, ["BACKSTOP_DATABASE:"]),
            (["backup", "--encryption-key-file", "/a", "--passphrase-file", "/b"], storage, ["--encryption-key-file and --passphrase-file are exclusive"]),
            (["verify"], storage.merging(["BACKSTOP_PG_BIN": "/opt/nowhere"]) { $1 }, ["BACKSTOP_PG_BIN=/opt/nowhere: no pg_dump there"]),
            (["backup", "--storage", "s3://acme-backups", "--s3-kms-key-id", "k"], [:], ["--s3-kms-key-id needs --s3-sse aws:kms"]),
            (["restore", "latest", "--target", "dbname=template1"], storage, ["--target names template1", "orders_restored"]),
            (["restore", "latest"], storage.merging(["BACKSTOP_TARGET": "postgres://u@h/template0"]) { $1 }, ["BACKSTOP_TARGET names template0"]),
            (["restore", "latest"], storage, ["missing --target"]),
            (["list", "-o", "xml"], storage, ["--output xml is not an output format", "text, json, yaml"]),
            (["list"], storage.merging(["BACKSTOP_OUTPUT": "xml"]) { $1 }, ["BACKSTOP_OUTPUT=xml"]),
            (["list", "--nope"], storage, ["unknown option '--nope'", "see `backstop list --help`"]),
            (["list", "--s3-sse", "AES256"], storage, ["unknown option '--s3-sse'"]),
            (["list", "--storage", "ftp://host/x"], [:], ["--storage ftp://host/x: unknown scheme"]),
            (["list"], ["BACKSTOP_STORAGE": "s3://Bad_Bucket/x"], ["BACKSTOP_STORAGE s3://Bad_Bucket/x", "not a valid bucket name"]),
            (["list"], storage.merging(["BACKSTOP_S3_PATH_STYLE": "maybe"]) { $1 }, ["BACKSTOP_S3_PATH_STYLE=maybe is not true or false"]),
            (["list", "--namespace", "Bad_NS"], storage, ["--namespace Bad_NS", "lowercase"]),
            (["list"], storage.merging(["BACKSTOP_ENVIRONMENT": "Prod"]) { $1 }, ["BACKSTOP_ENVIRONMENT=Prod"]),
            (["list"], [:], ["missing --storage"]),
            (["release", "not-an-id"], storage, ["\"not-an-id\" is not a backup id"]),
            (["hold"], storage, ["missing expected argument"]),
            (["help", "nosuch"], [:], ["there is no command nosuch", "backup, verify"]),
            (["completion", "tcsh"], [:], ["no completion for the shell tcsh"]),
            (["render", "-f", "/nonexistent.yaml"], [:], ["-f /nonexistent.yaml: the file does not exist"]),
            (["render", "-f", scratch + "/configmap.yaml"], [:], ["kind ConfigMap is not a BackupPolicy"]),
            (["render", "-f", scratch + "/typo.yaml"], [:], ["spec.schedulee: unknown field"]),
            (["render", "-f", scratch + "/version.yaml"], [:], ["apiVersion \"backstop.dev/v1\" is not backstop.dev/v1alpha1"]),
            (["render", "-f", scratch + "/typo.yaml", "-o", "text"], [:], ["-o json or -o yaml"]),
        ]
        for probe in probes {
            let run = try await Self.backstop(probe.arguments, probe.environment)
            let shown = (probe.arguments + probe.environment.map { "\($0.key)=\($0.value)" }).joined(separator: " ")
            #expect(run.status == 64, "\(shown): exit \(run.status), \(run.errors)")
            #expect(run.errorLine.hasPrefix("backstop: error: ") && run.errorLine.contains("; "), "\(shown): \(run.errors)")
            for expected in probe.says {
                #expect(run.errorLine.contains(expected), "\(shown): wanted \"\(expected)\" in \(run.errors)")
            }
            #expect(!Self.internals.contains { run.errors.contains($0) }, "\(shown): \(run.errors)")
            #expect(run.errors.split(separator: "\n").count == 1, "one line: \(run.errors)")
        }
    }

    @Test("help: every example fits an 80-column terminal; completion scripts print")
    func help() async throws {
        for command in ["", "backup", "verify", "list", "restore", "prune", "hold", "release", "render", "completion"] {
            let run = try await Self.backstop((command.isEmpty ? [] : [command]) + ["--help"])
            #expect(run.status == 0)
            let long = run.output.split(separator: "\n").filter { $0.count > 80 && !$0.hasPrefix("USAGE") }
            #expect(long.isEmpty, "backstop \(command) --help: \(long)")
        }
        let help = try await Self.backstop(["backup", "--help"]).output
        let backup = help[(help.range(of: "\nBACKUP:\n")?.upperBound ?? help.startIndex)...]
        let order = ["--storage", "--database", "--environment", "--encryption-key-file", "--keep-daily", "--s3-endpoint"].map {
            backup.range(of: $0)?.lowerBound ?? backup.endIndex
        }
        #expect(order == order.sorted(), "the options needed first come first")
        for shell in ["bash", "zsh", "fish"] {
            let run = try await Self.backstop(["completion", shell])
            #expect(run.status == 0 && run.output.contains("backup") && run.output.contains("keep-within"), "\(shell)")
        }
    }

    @Test("warnings once; runtime failures exit 1 with a hint pointing at the right thing")
    func failures() async throws {
        try TestEnvironment.requireServer()
        let scratch = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let storage = ["BACKSTOP_STORAGE": "file://\(scratch)/backups"]
        try await TestEnvironment.withDatabase("cli_empty") { empty in
            let run = try await Self.backstop(["backup", "--database", "dbname=\(empty)"], storage)
            #expect(run.status == 0, "\(run.errors)")
            let warnings = run.errors.split(separator: "\n").filter { $0.hasPrefix("backstop: warning: ") }
            #expect(warnings.count == 2 && warnings.contains { $0.contains("not encrypted") } && warnings.contains { $0.contains("has no tables") }, "\(warnings)")

            // Restore's connection errors name --target, not --database.
            let target = try await Self.backstop(["restore", "latest", "--target", "host=127.0.0.1 port=1 dbname=x"], storage)
            #expect(target.status == 1 && target.errorLine.contains("check --target"), "\(target.errors)")
        }
        let released = try await Self.backstop(["release", "latest"], ["BACKSTOP_STORAGE": "file://\(scratch)/nothing"])
        #expect(released.status == 1 && released.errorLine.contains("no backups"), "\(released.errors)")

        // A bucket addressed by virtual host on a service without such names.
        let unresolved = try await Self.backstop(["list", "--storage", "s3://acme-backups", "--s3-endpoint", "http://minio.invalid:9000"],
                                                 ["AWS_ACCESS_KEY_ID": "a", "AWS_SECRET_ACCESS_KEY": "b"])
        #expect(unresolved.status == 1 && unresolved.errorLine.contains("--s3-path-style"), "\(unresolved.errors)")
    }

    @Test("drill, doctor and restore --replace from the command line: doctor -f reads what kubectl prints, one line per check, exit 1 on a ✗")
    func drillDoctorReplace() async throws {
        try TestEnvironment.requireServer()
        let scratch = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try await TestEnvironment.withDatabase("cli_doctor") { source in
            try await TestEnvironment.loadSample(into: source)
            let port = ProcessInfo.processInfo.environment["PGPORT"] ?? "5432"
            let policy = """
                apiVersion: backstop.dev/v1alpha1
                kind: BackupPolicy
                metadata: {name: orders, namespace: shop, uid: 5d6f, resourceVersion: "42"}
                spec:
                  database: {host: 127.0.0.1, port: \(port), name: \(source), sslMode: disable, credentialsSecret: orders-db}
                  storage: {file: {path: \(scratch)/backups}}
                  environments:
                  - name: production
                    objectives: {rpo: 24h, rto: 1h}
                status: {conditions: []}
                """
            var doctor = try await Self.backstop(["doctor", "-f", "-"], input: policy)
            #expect(doctor.status == 1 && doctor.output.contains("✗ No backups in file://\(scratch)/backups/shop/orders/production/"), "\(doctor.output)\(doctor.errors)")
            #expect(doctor.output.contains("  └─ run `backstop backup`") && doctor.output.hasSuffix("1 issue found.\n"), "\(doctor.output)")

            let scope = ["BACKSTOP_STORAGE": "file://\(scratch)/backups", "BACKSTOP_NAMESPACE": "shop", "BACKSTOP_POLICY": "orders", "BACKSTOP_ENVIRONMENT": "production"]
            #expect(try await Self.backstop(["backup", "--database", "dbname=\(source)"], scope).status == 0)
            let drill = try await Self.backstop(["drill", "--scratch", "dbname=postgres"], scope)
            #expect(drill.status == 0 && (drill.report["restoreSeconds"] as? Double ?? 0) > 0 && drill.report["command"] as? String == "drill", "\(drill.errors)")
            doctor = try await Self.backstop(["doctor", "-f", "-", "-o", "json"], input: policy)
            let document = try #require(try JSONSerialization.jsonObject(with: Data(doctor.output.utf8)) as? [String: Any])
            let checks = document["checks"] as? [[String: Any]] ?? []
            #expect(doctor.status == 0 && document["healthy"] as? Bool == true, "\(doctor.output)")
            #expect(checks.first { $0["name"] as? String == "drill" }?["status"] as? String == "ok")
            #expect(checks.first { $0["name"] as? String == "postgres" }?["status"] as? String == "ok", "the policy's database is checked")
            let missing = try await Self.backstop(["drill"], scope)
            #expect(missing.status == 64 && missing.errorLine.contains("missing --scratch"), "\(missing.errors)")

            let unconfirmed = try await Self.backstop(["restore", "--target", "dbname=\(source)", "--replace"], scope)
            #expect(unconfirmed.status == 64 && unconfirmed.errorLine.contains("--confirm \(source)"), "\(unconfirmed.errors)")
            let both = try await Self.backstop(["restore", "--target", "dbname=\(source)", "--replace", "--clean", "--yes"], scope)
            #expect(both.status == 64 && both.errorLine.contains("choose one"), "\(both.errors)")
            let replaced = try await Self.backstop(["restore", "--target", "dbname=\(source)", "--replace", "--confirm", source], scope)
            #expect(replaced.status == 0 && (replaced.report["message"] as? String)?.hasPrefix("replaced \(source) with the restored copy") == true, "\(replaced.errors)")
        }
    }

    @Test("wrong key and wrong passphrase are told apart; a missing owner role suggests --no-owner")
    func keysAndRoles() async throws {
        try TestEnvironment.requireServer()
        let scratch = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        try Self.write("correct horse battery staple\n", to: scratch + "/passphrase")
        try Self.write("wrong horse\n", to: scratch + "/wrong")
        let keyPath = try TestEnvironment.keyFile()
        let storage = ["BACKSTOP_STORAGE": "file://\(scratch)/backups"]
        try await TestEnvironment.withDatabase("cli_keys") { source in
            try await TestEnvironment.loadSample(into: source)
            #expect(try await Self.backstop(["backup", "--database", "dbname=\(source)", "--passphrase-file", scratch + "/passphrase", "--environment", "phrase"], storage).status == 0)
            let phrase = try await Self.backstop(["verify", "--passphrase-file", scratch + "/wrong", "--environment", "phrase"], storage)
            #expect(phrase.status == 1 && phrase.errorLine.contains("wrong passphrase") && !phrase.errorLine.contains("wrong key"), "\(phrase.errors)")
            #expect(try await Self.backstop(["backup", "--database", "dbname=\(source)", "--encryption-key-file", keyPath, "--environment", "key"], storage).status == 0)
            let key = try await Self.backstop(["verify", "--encryption-key-file", try TestEnvironment.keyFile(), "--environment", "key"], storage)
            #expect(key.status == 1 && key.errorLine.contains("wrong key"), "\(key.errors)")

            // Objects owned by a role the target server does not have.
            let role = "zz_owner_\(UInt32.random(in: 0...UInt32.max))"
            try await TestEnvironment.run("psql", ["-q", "-d", source, "-c", "CREATE ROLE \(role); CREATE TABLE owned (i int); ALTER TABLE owned OWNER TO \(role)"])
            #expect(try await Self.backstop(["backup", "--database", "dbname=\(source)", "--environment", "roles"], storage).status == 0)
            try await TestEnvironment.run("psql", ["-q", "-d", source, "-c", "DROP TABLE owned; DROP ROLE \(role)"])
            let restore = try await Self.backstop(["restore", "--target", "dbname=\(source)_restored", "--environment", "roles"], storage)
            #expect(restore.status == 1 && restore.errorLine.contains("role \(role)") && restore.errorLine.contains("--no-owner"), "\(restore.errors)")
            #expect(try await !TestEnvironment.databaseExists(source + "_restored"), "the failed restore dropped what it created")
            let noOwner = try await Self.backstop(["restore", "--target", "dbname=\(source)_restored", "--environment", "roles", "--no-owner"], storage)
            #expect(noOwner.status == 0, "\(noOwner.errors)")
        }
    }

    @Test("a damaged manifest: list shows it and goes on; a backup with --keep-* still exits 0; verify --chain names it; holds are shown")
    func damagedAndHeld() async throws {
        try TestEnvironment.requireServer()
        let scratch = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        let storage = ["BACKSTOP_STORAGE": "file://\(scratch)/backups", "BACKSTOP_ENVIRONMENT": "production"]
        try await TestEnvironment.withDatabase("cli_damaged") { source in
            try await TestEnvironment.loadSample(into: source)
            var ids: [String] = []
            for _ in 0..<2 {
                let run = try await Self.backstop(["backup", "--database", "dbname=\(source)"], storage)
                #expect(run.status == 0, "\(run.errors)")
                ids.append(run.report["backupID"] as? String ?? "")
            }
            try Self.write("{\"formatVersion\": 1, \"id\": \"", to: "\(scratch)/backups/default/default/production/backups/\(ids[0])/manifest.json")

            let list = try await Self.backstop(["list"], storage)
            #expect(list.status == 0 && list.output.contains(ids[1]) && list.output.contains("\(ids[0])  DAMAGED: manifest.json"), "\(list.output)")
            #expect(list.errors.contains("backstop: warning: 1 backup is damaged"), "\(list.errors)")
            let yaml = try await Self.backstop(["list", "-o", "yaml"], storage)
            #expect(yaml.status == 0 && yaml.output.contains("damaged: ") && yaml.output.contains("verified: DAMAGED"), "\(yaml.output)")

            // The backup commits and verifies; its prune reports the damaged backup and leaves it.
            let backup = try await Self.backstop(["backup", "--database", "dbname=\(source)", "--keep-last", "1", "--min-age", "0s"], storage)
            #expect(backup.status == 0 && backup.report["outcome"] as? String == "succeeded", "\(backup.errors)")
            let prune = backup.report["prune"] as? [String: Any]
            #expect(prune?["outcome"] as? String == "succeeded" && (prune?["message"] as? String ?? "").contains("1 damaged left alone"), "\(backup.output)")
            #expect(FileManager.default.fileExists(atPath: "\(scratch)/backups/default/default/production/backups/\(ids[0])/manifest.json"))

            let chain = try await Self.backstop(["verify", "--chain"], storage)
            #expect(chain.status == 1 && chain.output.contains("\(ids[0])  DAMAGED:"), "\(chain.output)")
            #expect(chain.errorLine.contains("hash chain"), "\(chain.errors)")

            // A prune that cannot run leaves the backup's success alone.
            try Self.write("not a lease", to: "\(scratch)/backups/default/default/production/prune.lease")
            let blocked = try await Self.backstop(["backup", "--database", "dbname=\(source)", "--keep-last", "1"], storage)
            #expect(blocked.status == 0 && blocked.report["outcome"] as? String == "succeeded", "\(blocked.errors)")
            #expect((blocked.report["prune"] as? [String: Any])?["outcome"] as? String == "failed", "\(blocked.output)")
            #expect(blocked.errors.contains("backstop: warning: backup ") && blocked.errors.contains("but the prune after it failed"), "\(blocked.errors)")
            try FileManager.default.removeItem(atPath: "\(scratch)/backups/default/default/production/prune.lease")

            // Holds: shown with their reason; never silently given another.
            let latest = blocked.report["backupID"] as? String ?? ""
            #expect(try await Self.backstop(["hold", latest, "--reason", "incident 4711"], storage).status == 0)
            let again = try await Self.backstop(["hold", latest, "--reason", "audit"], storage)
            #expect(again.status == 1 && again.errorLine.contains("already on hold") && again.errorLine.contains("incident 4711"), "\(again.errors)")
            let held = try await Self.backstop(["list"], storage)
            #expect(held.output.contains("\(latest)  held since") && held.output.contains("incident 4711"), "\(held.output)")
            let json = try await Self.backstop(["list", "-o", "json"], storage)
            #expect(json.output.contains("\"holdReason\" : \"incident 4711\""), "\(json.output)")
            let prunes = try await Self.backstop(["prune", "--keep-last", "1", "--dry-run", "-o", "yaml"], storage)
            #expect(prunes.status == 0 && prunes.output.contains("dryRun: true") && prunes.output.contains("damaged:"), "\(prunes.output)")
            let release = try await Self.backstop(["release", "latest"], storage)
            #expect(release.status == 0 && release.output.contains("\(latest) released"), "\(release.errors)")
        }
    }

    @Test("render reads what kubectl prints, several documents and Lists; refuses unknown fields under spec")
    func render() async throws {
        let scratch = try Self.folder()
        defer { try? FileManager.default.removeItem(atPath: scratch) }
        // As `kubectl get bp orders -o yaml` prints it: server fields, defaults filled, a status.
        let fromCluster = """
            apiVersion: backstop.dev/v1alpha1
            kind: BackupPolicy
            metadata:
              annotations:
                kubectl.kubernetes.io/last-applied-configuration: |
                  {"apiVersion":"backstop.dev/v1alpha1","kind":"BackupPolicy"}
              creationTimestamp: "2026-12-01T11:59:51Z"
              finalizers: []
              generation: 3
              managedFields:
              - apiVersion: backstop.dev/v1alpha1
                fieldsType: FieldsV1
                fieldsV1:
                  f:spec:
                    .: {}
                    f:schedule: {}
                manager: kubectl-client-side-apply
                operation: Update
                time: "2026-12-01T11:59:51Z"
              name: orders
              namespace: shop
              resourceVersion: "218"
              uid: bcac182b-682c-4eda-8626-0e6d2644f39c
            spec:
              concurrencyPolicy: Forbid
              database: {credentialsSecret: orders-backup, host: orders-db.shop.svc, name: orders, port: 5432, sslMode: require}
              schedule: 0 2 * * *
              storage:
                s3: {bucket: acme-backups, forcePathStyle: false, region: eu-central-1}
              suspend: false
              timeZone: Etc/UTC
              environments:
              - name: production
                retention: {keep: {daily: 7, within: 6mo}, minAge: 1h}
            status:
              conditions:
              - {lastTransitionTime: "2026-12-01T12:00:00Z", message: ok, reason: Reconciled, status: "True", type: Ready}
              environments:
              - {name: production, somethingNewer: {a: 1}}
              observedGeneration: 3
            """
        try Self.write(fromCluster, to: scratch + "/cluster.yaml")
        var run = try await Self.backstop(["render", "-f", scratch + "/cluster.yaml", "-o", "yaml"])
        #expect(run.status == 0, "\(run.errors)")
        #expect(run.output.contains("kind: List") && run.output.contains("name: orders-production"), "\(run.output)")
        #expect(run.output.contains("value: 6mo"), "the window reaches the worker as written")

        let example = try String(contentsOfFile: Self.root + "/k8s/examples/backuppolicy.yaml", encoding: .utf8)
        let second = example.replacingOccurrences(of: "name: orders\n", with: "name: payments\n")
        try Self.write(example + "\n---\n" + second, to: scratch + "/two.yaml")
        run = try await Self.backstop(["render", "-f", scratch + "/two.yaml"])
        #expect(run.status == 0, "\(run.errors)")
        let items = try #require(try JSONSerialization.jsonObject(with: Data(run.output.utf8)) as? [String: Any])["items"] as? [[String: Any]]
        let names = (items ?? []).compactMap { ($0["metadata"] as? [String: Any])?["name"] as? String }
        #expect(names.filter { $0.hasPrefix("orders-") }.count == 3 && names.filter { $0.hasPrefix("payments-") }.count == 3, "\(names)")

        // A List, from stdin.
        let list = "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\(try await Self.json(fromCluster))]}"
        run = try await Self.backstop(["render", "-f", "-"], input: list)
        #expect(run.status == 0 && run.output.contains("orders-production"), "\(run.errors)")
    }

    /// A YAML document as JSON, through the YAML reader everyone trusts here (PyYAML).
    static func json(_ yaml: String) async throws -> String {
        try await ToolProcess.run("python3", ["-c", "import json, sys, yaml; print(json.dumps(yaml.safe_load(sys.stdin)))"], input: yaml).output
    }
}
