import BackstopAPI
import BlockingCalls
@testable import Engine
import Foundation
import Postgres
import Storage
import Testing

@Suite("backstop doctor against PostgreSQL and storage", .serialized, .enabled(if: TestEnvironment.integrationEnabled))
struct DoctorTests {
    func backup(_ context: WorkerContext, _ database: String, key: String) async throws -> BackupID {
        try await BackupCommand(context: context, options: .init(
            database: ConnectionSettings("dbname=\(database)"), compression: .zstd, level: nil, encryption: .keyFile(key))).run().manifest.id
    }

    func doctor(_ context: WorkerContext, _ database: String, key: String, rpo: Int64 = 86_400) async throws -> [DoctorCommand.Check] {
        await DoctorCommand(context: context, options: .init(
            database: try ConnectionSettings("dbname=\(database)"), encryption: .keyFile(key),
            rpo: FixedDuration(seconds: rpo), rto: FixedDuration(seconds: 3_600))).run()
    }

    func check(_ checks: [DoctorCommand.Check], _ name: String) throws -> DoctorCommand.Check {
        try #require(checks.first { $0.name == name }, "no \(name) check in \(checks.map(\.name))")
    }

    @Test("healthy: every check passes once there is a verified backup and a drill; then each breakage shows as its ✗ with a hint")
    func healthyThenBroken() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("doctor") { source in
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try TestEnvironment.makeContext(environment: "doctor")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let key = try TestEnvironment.keyFile()

            var checks = try await doctor(context, source, key: key)
            #expect(try check(checks, "rpo").status == .fail && check(checks, "rpo").message.hasPrefix("No backups in"))
            #expect(try check(checks, "drill").status == .info)

            let ids = [try await backup(context, source, key: key), try await backup(context, source, key: key), try await backup(context, source, key: key)]
            _ = try await DrillCommand(context: context, options: .init(scratch: ConnectionSettings("dbname=postgres"), encryption: .keyFile(key))).run("latest")
            checks = try await doctor(context, source, key: key)
            #expect(checks.map(\.name) == ["storage", "rpo", "verified", "drill", "chain", "key", "leftovers", "postgres"])
            #expect(checks.allSatisfy { $0.status == .ok }, "\(checks.filter { $0.status != .ok })")
            #expect(try check(checks, "drill").message.contains("(RTO 1h)"))

            // Older than the RPO.
            try await Task.sleep(for: .seconds(2))
            var rpo = try check(try await doctor(context, source, key: key, rpo: 1), "rpo")
            #expect(rpo.status == .fail && rpo.message.contains("older than the RPO of 1s") && rpo.hint?.contains("kubectl get jobs") == true)

            // Another key than the backups'.
            let other = try check(try await doctor(context, source, key: try TestEnvironment.keyFile()), "key")
            #expect(other.status == .fail && other.hint?.contains("the key the policy's Secret held") == true, "\(other)")

            // A manifest deleted in the middle of the chain; its data is left without one.
            try await context.storage.delete([context.location.manifestKey(ids[1])])
            checks = try await doctor(context, source, key: key)
            let chain = try check(checks, "chain")
            #expect(chain.status == .fail && chain.message.contains(ids[2].rawValue) && chain.hint?.contains("backstop verify --chain") == true, "\(chain)")
            let leftovers = try check(checks, "leftovers")
            #expect(leftovers.status == .fail && leftovers.message.contains("folder \(ids[1]) (no manifest)") && leftovers.hint?.contains("backstop prune") == true)

            // PostgreSQL that is not there.
            let unreachable = await DoctorCommand(context: context, options: .init(
                database: try ConnectionSettings("host=127.0.0.1 port=1 dbname=nothing"), encryption: .none, rpo: nil, rto: nil)).database()
            #expect(unreachable.status == .fail && unreachable.hint?.contains("credentials") == true)
            rpo = try check(try await doctor(context, source, key: key), "rpo")
            #expect(rpo.status == .ok)
        }
    }

    @Test("an unfinished upload a killed run left shows as a leftover; refused S3 credentials fail the storage check naming the Secret")
    func leftoverUploadAndRefusedCredentials() async throws {
        try TestEnvironment.requireServer()
        let (context, root) = try TestEnvironment.makeContext(environment: "doctorupload")
        defer { try? FileManager.default.removeItem(atPath: root) }
        var random = SystemRandomNumberGenerator()
        let killed = BackupID.make(secondsSince1970: Int64(context.now()) - 3_600, using: &random)
        let writer = try await runBlocking(name: "test") {
            let writer = try context.storage.makeWriter(context.location.objectKey(killed, name: "data.dump.zst"))
            try [UInt8](repeating: 1, count: 1_000).withUnsafeBytes { try writer.write($0) }
            return UncheckedWriter(writer)
        }
        defer { writer.writer.abort() }
        let leftovers = await DoctorCommand(context: context, options: .init(database: nil, encryption: .none, rpo: nil, rto: nil))
            .leftovers(BackupCatalog.Contents(entries: [], damaged: []))
        #expect(leftovers.status == .fail && leftovers.message.contains("unfinished upload of backups/\(killed)/data.dump.zst"), "\(leftovers)")

        let environment = ProcessInfo.processInfo.environment
        let endpoint = try #require(environment["BACKSTOP_TEST_S3_AUTH_ENDPOINT"], "no signature-checking moto: run hack/test.sh")
        var settings = StorageLocation.S3Settings()
        settings.endpoint = endpoint
        settings.pathStyle = true
        let accessKey: String = try #require(environment["BACKSTOP_TEST_S3_AUTH_ACCESS_KEY_ID"])
        var credentials = environment
        credentials["AWS_ACCESS_KEY_ID"] = accessKey
        credentials["AWS_SECRET_ACCESS_KEY"] = "not-the-secret"
        let storage = try StorageLocation.open("s3://doctor-bucket/k8s", s3: settings, environment: credentials)
        var s3Context = WorkerContext(storage: storage, location: context.location, logger: context.logger)
        s3Context.leaseTiming = TestEnvironment.testLeaseTiming
        let checks = await DoctorCommand(context: s3Context, options: .init(database: nil, encryption: .none, rpo: nil, rto: nil)).run()
        let refused = try #require(checks.first)
        #expect(refused.name == "storage" && refused.status == .fail && refused.hint?.contains("AWS_SECRET_ACCESS_KEY") == true, "\(refused)")
        #expect(!refused.message.contains("not-the-secret") && checks.count == 2, "storage checks stop there; PostgreSQL is still looked at")
    }
}
