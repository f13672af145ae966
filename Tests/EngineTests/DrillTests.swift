import BackstopAPI
@testable import Engine
import Foundation
import Postgres
import Storage
import Testing

@Suite("Restore drills against PostgreSQL", .serialized, .enabled(if: TestEnvironment.integrationEnabled))
struct DrillTests {
    func backup(_ context: WorkerContext, _ database: String) async throws -> BackupID {
        try await BackupCommand(context: context, options: .init(
            database: ConnectionSettings("dbname=\(database)"), compression: .zstd, level: nil, encryption: .none)).run().manifest.id
    }

    /// Whether the drill's own scratch database (named after its run) still exists; other
    /// tests may drill at the same time.
    func scratchExists(_ record: DrillRecord?) async throws -> Bool {
        try await TestEnvironment.databaseExists("backstop_drill_\(try #require(record?.runID))")
    }

    func records(_ context: WorkerContext) async throws -> [DrillRecord] {
        var found: [DrillRecord] = []
        for object in try await context.storage.list(prefix: context.location.drillsPrefix) {
            found.append(try JSONDecoder().decode(DrillRecord.self, from: Data(try await context.storage.get(object.key))))
        }
        return found
    }

    @Test("a drill restores into a scratch database of its own, finds schema and row counts equal, drops it, and records the restore time")
    func succeeds() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("drill") { source in
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try TestEnvironment.makeContext(environment: "drill")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let id = try await backup(context, source)
            let record = try await DrillCommand(context: context, options: .init(scratch: ConnectionSettings("dbname=postgres"), encryption: .none)).run("latest")
            #expect(record.backupID == id && record.outcome == .succeeded && record.schemaMatches == true && record.tablesChecked == 3)
            #expect((record.restoreSeconds ?? 0) > 0 && record.message.contains("schema and row counts of 3 tables match"))
            #expect(try await records(context) == [record], "recorded beside the backups")
            #expect(try await !scratchExists(record), "the scratch database is dropped")
            #expect(try await context.storage.list(prefix: context.location.readsPrefix).isEmpty)
        }
    }

    @Test("a backup that does not restore fails its drill: recorded as Failed with the reason, the scratch database dropped")
    func failsOnDamage() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("drillfail") { source in
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try TestEnvironment.makeContext(environment: "drillfail")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let id = try await backup(context, source)
            let manifest = try await BackupCatalog(context: context).load(id).manifest
            let dataKey = context.location.objectKey(id, name: manifest.objects[0].name)
            var bytes = try await context.storage.get(dataKey)
            bytes[bytes.count / 2] ^= 0xFF
            try await context.storage.put(dataKey, bytes: bytes)
            let error = await #expect(throws: EngineError.self) {
                try await DrillCommand(context: context, options: .init(scratch: ConnectionSettings("dbname=postgres"), encryption: .none)).run("latest")
            }
            #expect(error?.message.hasPrefix("drill of \(id) failed: ") == true, "\(error?.message ?? "")")
            let recorded = try await records(context)
            #expect(recorded.count == 1 && recorded.first?.outcome == .failed && recorded.first?.message == error?.message)
            #expect(try await !scratchExists(recorded.first))
        }
    }

    @Test("schemas compare by statement: comments, settings and pg_dump's random \\restrict key are not differences; a changed column is")
    func schemaComparison() {
        let archive = """
            --
            -- PostgreSQL database dump
            --
            \\restrict 4fJ2kq
            SET statement_timeout = 0;
            SELECT pg_catalog.set_config('search_path', '', false);
            CREATE TABLE shop.orders (
                id integer NOT NULL,
                total numeric(12,2)
            );
            \\unrestrict 4fJ2kq
            """
        var restored = archive.replacingOccurrences(of: "4fJ2kq", with: "Zx81pQ").replacingOccurrences(of: "-- PostgreSQL database dump", with: "-- Dumped by pg_dump version 17.6")
        #expect(DrillCommand.differences(DrillCommand.statements(archive), DrillCommand.statements(restored)).isEmpty)
        restored = restored.replacingOccurrences(of: "total numeric(12,2)", with: "total numeric(10,2)")
        #expect(DrillCommand.differences(DrillCommand.statements(archive), DrillCommand.statements(restored))
            == ["only in the archive:     total numeric(12,2)", "only in the restored database:     total numeric(10,2)"])
        #expect(DrillRecord.seconds(2.5) == "2.5" && DrillRecord.seconds(12) == "12" && DrillRecord.seconds(0.1254) == "0.125")
    }
}
