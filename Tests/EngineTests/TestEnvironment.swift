import BackstopAPI
import BlockingCalls
import Engine
import Foundation
import Logging
import Postgres
@testable import Storage
import TestSupport
import Testing

/// The real PostgreSQL that hack/test.sh starts (PGHOST, PGPORT, PGUSER, PGPASSWORD).
/// Missing services fail the tests, unless BACKSTOP_SKIP_INTEGRATION=1 says to skip on purpose.
enum TestEnvironment {
    static let integrationEnabled = ProcessInfo.processInfo.environment["BACKSTOP_SKIP_INTEGRATION"] != "1"

    static func requireServer() throws {
        try #require(ProcessInfo.processInfo.environment["PGPORT"] != nil,
                     "no PostgreSQL: run hack/test.sh, or set BACKSTOP_SKIP_INTEGRATION=1 to skip integration tests on purpose")
    }

    /// Runs `body` with a fresh database named after the test; afterwards drops it and its
    /// `_restored` twin. The drop is awaited here: a drop left to a detached task could run
    /// while the test process exits, inside libpq's teardown.
    static func withDatabase(_ purpose: String, _ body: (String) async throws -> Void) async throws {
        let name = "t_\(purpose)_\(UInt32.random(in: 0...UInt32.max))"
        let maintenance = try ConnectionSettings("dbname=postgres")
        try await PostgresConnection.with(maintenance) { try await $0.createDatabase(name) }
        do {
            try await body(name)
        } catch {
            try? await drop(name, maintenance)
            throw error
        }
        try await drop(name, maintenance)
    }

    private static func drop(_ name: String, _ maintenance: ConnectionSettings) async throws {
        try await PostgresConnection.with(maintenance) { server in
            try await server.dropDatabase(name)
            try await server.dropDatabase(name + "_restored")
        }
    }

    static func databaseExists(_ name: String) async throws -> Bool {
        try await PostgresConnection.with(ConnectionSettings("dbname=postgres")) { try await $0.databaseExists(name) }
    }

    /// Runs a tool from the server's bin folder (psql, pg_dump) on a thread of its own (it
    /// blocks) and returns its stdout.
    @discardableResult
    static func run(_ tool: String, _ arguments: [String]) async throws -> String {
        let bin = (try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql"))?
            .compactMap(Int.init).max().map { "/usr/lib/postgresql/\($0)/bin" } ?? "/usr/bin"
        let result = try await ToolProcess.run("\(bin)/\(tool)", arguments)
        guard result.status == 0 else {
            throw TestFailure("\(tool) \(arguments.joined(separator: " ")) failed: \(result.errors)")
        }
        return result.output
    }

    /// Loads hack/sample-db.sql (schemas, jsonb, arrays, bytea, numeric, index, view, sequence, FK).
    static func loadSample(into database: String) async throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../hack/sample-db.sql").standardized.path
        try await run("psql", ["-q", "-v", "ON_ERROR_STOP=1", "-d", database, "-f", script])
    }

    /// A context on a fresh temporary folder, its own namespace/policy/environment.
    static func makeContext(environment: String = "test") throws -> (WorkerContext, String) {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-e2e-\(UUID().uuidString)").path
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        var context = WorkerContext(
            storage: try FileStorage(root: root),
            location: try BackupLocation(namespace: "shop", policy: "orders", environment: environment),
            logger: logger)
        context.leaseTiming = testLeaseTiming
        return (context, root)
    }

    /// A context on a new bucket of the moto server hack/test.sh starts, opened the way the
    /// CLI opens `--storage s3://…`.
    static func makeS3Context() async throws -> WorkerContext {
        let environment = ProcessInfo.processInfo.environment
        let endpoint = try #require(environment["BACKSTOP_TEST_S3_ENDPOINT"],
                                    "no S3 server: run hack/test.sh, or set BACKSTOP_SKIP_INTEGRATION=1 to skip integration tests on purpose")
        var settings = StorageLocation.S3Settings()
        settings.endpoint = endpoint
        settings.pathStyle = true
        let bucket = "e2e-\(UUID().uuidString.lowercased().prefix(20))"
        let storage = try #require(try StorageLocation.open("s3://\(bucket)/clusters/eu", s3: settings, environment: environment) as? S3Storage)
        _ = try await runBlocking(name: "test") { try storage.exchange("PUT", key: nil) }  // create the bucket
        var logger = Logger(label: "test")
        logger.logLevel = .warning
        var context = WorkerContext(storage: storage, location: try BackupLocation(namespace: "shop", policy: "orders", environment: "s3"),
                                    logger: logger)
        context.leaseTiming = testLeaseTiming
        return context
    }

    /// Leases that expire in seconds, so tests of a held or dead lease do not wait minutes.
    static let testLeaseTiming = WorkerContext.LeaseTiming(duration: .seconds(3), renewal: .seconds(1))

    static func keyFile() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-key-\(UUID().uuidString)").path
        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedData().write(to: URL(fileURLWithPath: path))
        return path
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
