import BackstopAPI
import Engine
import Foundation
import Postgres
import TestSupport
import Testing

/// A PostgreSQL of its own (archive settings need a restart), run as the postgres user, with
/// `archive_command` and `restore_command` set to the backstop binary. The binary is copied to
/// a folder that user can reach: a private clone's build folder may not be.
@Suite("Continuous archiving against PostgreSQL", .serialized, .enabled(if: TestEnvironment.integrationEnabled))
struct WALArchivingTests {
    @Test("archive_command = backstop wal-push archives the segments; a base backup without WAL recovers to a named restore point through restore_command = backstop wal-fetch")
    func archiveAndRecover() async throws {
        try TestEnvironment.requireServer()
        try #require(getuid() == 0, "the test runs PostgreSQL as the postgres user: run it as root (hack/test.sh in CI is)")
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-wal-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: root) }
        try FileManager.default.copyItem(atPath: CommandLineTests.binary, toPath: root + "/bin/backstop")
        _ = try await ToolProcess.run("/bin/chmod", ["0755", root, root + "/bin", root + "/bin/backstop"])
        _ = try await ToolProcess.run("/bin/chown", ["postgres:postgres", root])

        let location = "BACKSTOP_STORAGE=file://\(root)/archive BACKSTOP_NAMESPACE=shop BACKSTOP_POLICY=orders BACKSTOP_ENVIRONMENT=wal"
        let port = ClusterTools.freePort()
        try await ClusterTools.asPostgres("initdb", ["-D", root + "/data", "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
        try ClusterTools.append([
            "listen_addresses = '127.0.0.1'", "port = \(port)", "unix_socket_directories = '\(root)'", "fsync = off",
            "wal_level = replica", "archive_mode = on",
            "archive_command = 'env \(location) \(root)/bin/backstop wal-push %p'",
        ], to: root + "/data/postgresql.conf")
        try await ClusterTools.start(root + "/data", log: root + "/server.log")
        var running = [root + "/data"]
        defer {
            for data in running { ClusterTools.stop(data) }
        }

        try await ClusterTools.sql(port, "CREATE TABLE ledger (id int PRIMARY KEY, note text); INSERT INTO ledger SELECT g, 'before the base backup' FROM generate_series(1, 1000) g")
        // The base backup carries no WAL: recovery must fetch all of it from the archive.
        try await ClusterTools.asPostgres("pg_basebackup", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-D", root + "/base", "-X", "none", "-c", "fast"])
        try await ClusterTools.sql(port, "INSERT INTO ledger SELECT g, 'after the base backup' FROM generate_series(1001, 2000) g")
        try await ClusterTools.sql(port, "SELECT pg_create_restore_point('before_cleanup')")
        try await ClusterTools.sql(port, "DELETE FROM ledger WHERE id > 500")
        let last = try await ClusterTools.sql(port, "SELECT pg_walfile_name(pg_switch_wal())")
        let archived = try await Polling.until(timeout: .seconds(30)) {
            try await ClusterTools.sql(port, "SELECT coalesce(last_archived_wal, '') >= '\(last)' FROM pg_stat_archiver") == "t"
        }
        #expect(archived, "the archiver reached \(last)")
        #expect(try await ClusterTools.sql(port, "SELECT failed_count FROM pg_stat_archiver") == "0", "no archive_command failed")
        let segments = try FileManager.default.contentsOfDirectory(atPath: "\(root)/archive/shop/orders/wal/wal/00000001")
        #expect(segments.contains(last) && segments.contains(last + ".json"), "\(segments.sorted())")
        try await ClusterTools.asPostgres("pg_ctl", ["-D", root + "/data", "-m", "fast", "-w", "stop"])
        running.removeAll()

        // Recovery of the base backup to the restore point, its WAL fetched by backstop.
        let recoveredPort = ClusterTools.freePort()
        try ClusterTools.append([
            "port = \(recoveredPort)", "archive_mode = off",
            "restore_command = 'env \(location) \(root)/bin/backstop wal-fetch %f %p'",
            "recovery_target_name = 'before_cleanup'", "recovery_target_action = 'promote'",
        ], to: root + "/base/postgresql.conf")
        #expect(FileManager.default.createFile(atPath: root + "/base/recovery.signal", contents: nil))
        _ = try await ToolProcess.run("/bin/chown", ["postgres:postgres", root + "/base/recovery.signal"])
        try await ClusterTools.start(root + "/base", log: root + "/recovered.log")
        running = [root + "/base"]
        let promoted = try await Polling.until(timeout: .seconds(60)) {
            try await ClusterTools.sql(recoveredPort, "SELECT NOT pg_is_in_recovery()") == "t"
        }
        let log = (try? String(contentsOfFile: root + "/recovered.log", encoding: .utf8)) ?? ""
        #expect(promoted, "recovery ended: \(log.suffix(2_000))")
        #expect(try await ClusterTools.sql(recoveredPort, "SELECT count(*) FROM ledger") == "2000", "the rows up to the restore point, not the delete after it")
        #expect(log.contains("recovery stopping at restore point \"before_cleanup\""), "\(log.suffix(2_000))")
        #expect(log.contains("restored log file \"\(last.prefix(16))"), "the WAL came from the archive")
    }
}

/// Polls a condition until it holds or the time is up.
enum Polling {
    static func until(timeout: Duration, _ condition: () async throws -> Bool) async throws -> Bool {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if (try? await condition()) == true { return true }
            try await Task.sleep(for: .milliseconds(200))
        }
        return try await condition()
    }
}
