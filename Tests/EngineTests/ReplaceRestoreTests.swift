import BackstopAPI
import Engine
import Foundation
import Postgres
import Storage
import Testing

@Suite("Restoring in place of a database, and reading under a lease", .serialized, .enabled(if: TestEnvironment.integrationEnabled))
struct ReplaceRestoreTests {
    func backup(_ context: WorkerContext, _ database: String) async throws -> BackupID {
        try await BackupCommand(context: context, options: .init(
            database: ConnectionSettings("dbname=\(database)"), compression: .zstd, level: nil, encryption: .none)).run().manifest.id
    }

    func replace(_ context: WorkerContext, _ database: String, confirm: String?) async throws -> RestoreCommand.Result {
        try await RestoreCommand(context: context, options: .init(
            target: ConnectionSettings("dbname=\(database)", option: "--target"), encryption: .none,
            mode: .replace(confirm: confirm), noOwner: false)).run("latest")
    }

    func scalar(_ database: String, _ sql: String) async throws -> String {
        try await TestEnvironment.run("psql", ["-tA", "-d", database, "-c", sql]).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func databases(like pattern: String) async throws -> [String] {
        try await scalar("postgres", "SELECT string_agg(datname, ',' ORDER BY datname) FROM pg_database WHERE datname LIKE '\(pattern)'")
            .split(separator: ",").map(String.init)
    }

    @Test("--replace swaps a checked copy in for a database in use: its sessions are ended at the swap, no temporary database is left")
    func replaceInUse() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("replace") { live in
            try await TestEnvironment.loadSample(into: live)
            let (context, root) = try TestEnvironment.makeContext(environment: "replace")
            defer { try? FileManager.default.removeItem(atPath: root) }
            _ = try await backup(context, live)
            // After the backup: rows lost, a table added — what a bad deploy does.
            try await TestEnvironment.run("psql", ["-q", "-d", live, "-c", "DELETE FROM shop.orders WHERE id % 2 = 0; CREATE TABLE public.after_backup (i int)"])

            for confirm in [nil, live + "x"] {
                let error = await #expect(throws: EngineError.self) { try await replace(context, live, confirm: confirm) }
                #expect(error?.kind == .invalidOption && error?.message.contains("--confirm \(live)") == true, "\(error?.message ?? "")")
            }
            #expect(try await scalar(live, "SELECT count(*) FROM shop.orders") == "10000", "refusals touch nothing")

            // An application's session, open across the swap.
            let session = try await PostgresConnection.connect(ConnectionSettings("dbname=\(live)"))
            #expect(try await session.scalar("SELECT 1") == "1")
            let result = try await replace(context, live, confirm: live)
            #expect(result.replacedDatabase && !result.createdDatabase && result.rowCountDifferences.isEmpty && result.tablesCompared == 3)
            #expect(try await scalar(live, "SELECT count(*) FROM shop.orders") == "20000")
            #expect(try await scalar(live, "SELECT count(*) FROM pg_tables WHERE tablename = 'after_backup'") == "0")
            await #expect(throws: PostgresError.self, "the old database's session was ended") { try await session.scalar("SELECT 1") }
            await session.close()
            #expect(try await databases(like: "\(live)_%").isEmpty, "no temporary or old database is left")
        }
    }

    @Test("a replace whose restore fails leaves the target as it was and drops its temporary database")
    func failedReplaceTouchesNothing() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("replacefail") { live in
            try await TestEnvironment.loadSample(into: live)
            let (context, root) = try TestEnvironment.makeContext(environment: "replacefail")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let id = try await backup(context, live)
            try await TestEnvironment.run("psql", ["-q", "-d", live, "-c", "CREATE TABLE public.after_backup (i int)"])
            // One byte flipped in the middle of the stored dump: the sizes still match, the
            // stream fails halfway through pg_restore.
            let manifest = try await BackupCatalog(context: context).load(id).manifest
            let dataKey = context.location.objectKey(id, name: manifest.objects[0].name)
            var bytes = try await context.storage.get(dataKey)
            bytes[bytes.count / 2] ^= 0xFF
            try await context.storage.put(dataKey, bytes: bytes)

            await #expect(throws: EngineError.self) { try await replace(context, live, confirm: live) }
            #expect(try await scalar(live, "SELECT count(*) FROM pg_tables WHERE tablename = 'after_backup'") == "1", "the target is as it was")
            #expect(try await scalar(live, "SELECT count(*) FROM shop.orders") == "20000")
            #expect(try await databases(like: "\(live)_%").isEmpty, "the temporary database is dropped")
            #expect(try await scalar("postgres", "SELECT datallowconn FROM pg_database WHERE datname = '\(live)'") == "t")
        }
    }

    @Test("prune keeps a backup a live read lease names; a restore leases what it reads and releases it after")
    func readLease() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("readlease") { source in
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try TestEnvironment.makeContext(environment: "readlease")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let older = try await backup(context, source)
            _ = try await backup(context, source)

            let restored = try await RestoreCommand(context: context, options: .init(
                target: ConnectionSettings("dbname=\(source)_restored", option: "--target"), encryption: .none,
                mode: .newDatabase, noOwner: false)).run(older.rawValue)
            #expect(restored.backupID == older && restored.rowCountDifferences.isEmpty)
            #expect(try await context.storage.list(prefix: context.location.readsPrefix).isEmpty, "released after the restore")

            // A restore of the older backup, running in another pod.
            let now = Int64(context.now())
            let lease = "{\"owner\":\"restore-pod-1\",\"backupID\":\"\(older)\",\"acquiredAt\":\"\(UTCTimestamp(secondsSince1970: now - 5))\",\"expiresAt\":\"\(UTCTimestamp(secondsSince1970: now + 60))\"}"
            let leaseKey = context.location.readsPrefix + "restore-pod-1.lease"
            try await context.storage.put(leaseKey, bytes: Array(lease.utf8))
            let rules = RetentionPolicy(keep: .init(last: 1), minAge: .init(seconds: 0))
            let whileRead = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false)).run()
            #expect(whileRead.decisions.first { $0.id == older }?.keep == true)
            #expect(try await BackupCatalog(context: context).committedIDs().contains(older))

            // The reader died an hour ago: its lease no longer pins the backup.
            let expired = lease.replacingOccurrences(of: "\(UTCTimestamp(secondsSince1970: now + 60))", with: "\(UTCTimestamp(secondsSince1970: now - 3_600))")
            try await context.storage.put(leaseKey, bytes: Array(expired.utf8))
            let after = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false)).run()
            #expect(after.decisions.first { $0.id == older }?.keep == false)
        }
    }
}
