import BackstopAPI
import Engine
import Foundation
import Postgres
import Storage
import TestSupport
import Testing

/// `backup --physical` and `restore --physical` against a PostgreSQL of the test's own that
/// archives through `backstop wal-push`, with known commit times, a restore point and an LSN
/// between batches of rows; once through `file://` and once through S3 (moto), encrypted.
@Suite("Point-in-time recovery against PostgreSQL", .serialized, .enabled(if: TestEnvironment.integrationEnabled))
struct PointInTimeRecoveryTests {
    enum Store: String, CaseIterable, Sendable { case file, s3 }

    /// The cluster, the archive and the backstop binary of one run.
    struct Rig {
        let root: String
        let port: Int
        /// Storage and scope options, for every backstop command.
        let location: [String]
        /// Variables every backstop command needs beside the options (S3 credentials).
        let variables: [String: String]
        /// The encryption key option, for the commands that read or write data.
        var key: [String] { ["--encryption-key-file", root + "/key"] }

        func backstop(_ arguments: [String], asPostgres: Bool = false) async throws -> ChildProcess.Outcome {
            let command = [root + "/bin/backstop"] + arguments + location
            let (executable, words) = asPostgres ? ("/usr/sbin/runuser", ["-u", "postgres", "--"] + command) : (command[0], Array(command.dropFirst()))
            // The worker's own runner: a restore with --start leaves a server behind, whose end
            // Foundation's Process would wait for.
            return try await ChildProcess(executable: executable, arguments: words, environment: variables, standardOutput: .collect).wait()
        }

        /// The archive, opened as the CLI opens it.
        func storage() throws -> any ObjectStorage {
            func option(_ name: String) -> String? { location.firstIndex(of: name).map { location[$0 + 1] } }
            var settings = StorageLocation.S3Settings()
            settings.endpoint = option("--s3-endpoint")
            settings.pathStyle = true
            return try StorageLocation.open(try #require(option("--storage")), s3: settings, environment: variables)
        }

        func sql(_ statement: String, port: Int? = nil) async throws -> String {
            try await ClusterTools.sql(port ?? self.port, statement)
        }

        func stop(_ data: String) { ClusterTools.stop(data) }

        /// Recovers into a new folder as root, the server run as postgres on a port of its own.
        func recover(_ name: String, _ target: [String], archiving: Bool = false) async throws -> (outcome: ChildProcess.Outcome, data: String, port: Int) {
            let port = ClusterTools.freePort()
            let data = root + "/" + name
            let outcome = try await backstop(["restore", "--physical"] + key + ["--data-dir", data, "--start", "--run-as", "postgres",
                                              "--port", String(port), "--archive-mode", archiving ? "preserve" : "off"] + target)
            return (outcome, data, port)
        }

        /// Waits until the archiver of the server on `port` has archived everything up to now.
        func archiveEverything(port: Int? = nil) async throws {
            let last = try await sql("SELECT pg_walfile_name(pg_switch_wal())", port: port)
            let archived = try await Polling.until(timeout: .seconds(60)) {
                try await sql("SELECT coalesce(last_archived_wal, '') >= '\(last)' FROM pg_stat_archiver", port: port) == "t"
            }
            #expect(archived, "the archiver reached \(last)")
        }
    }

    /// A cluster archiving into `store`, with `ledger` holding rows 1…100, and its backstop.
    func makeRig(_ store: Store) async throws -> Rig {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-pitr-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: root + "/bin", withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: root + "/archive", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: CommandLineTests.binary, toPath: root + "/bin/backstop")
        try Data((0..<32).map { _ in UInt8.random(in: 0...255) }).base64EncodedData().write(to: URL(fileURLWithPath: root + "/key"))
        _ = try await ToolProcess.run("/bin/chmod", ["0755", root, root + "/bin", root + "/bin/backstop"])
        _ = try await ToolProcess.run("/bin/chmod", ["0600", root + "/key"])
        _ = try await ToolProcess.run("/bin/chown", ["postgres:postgres", root, root + "/archive", root + "/key"])

        var location = ["--namespace", "shop", "--policy", "orders", "--environment", "pitr"]
        var variables: [String: String] = [:]
        switch store {
        case .file:
            location += ["--storage", "file://\(root)/archive"]
        case .s3:
            let endpoint = try #require(ProcessInfo.processInfo.environment["BACKSTOP_TEST_S3_ENDPOINT"], "no S3 server: run hack/test.sh")
            let bucket = "pitr-\(UUID().uuidString.lowercased().prefix(12))"
            location += ["--storage", "s3://\(bucket)/clusters", "--s3-endpoint", endpoint, "--s3-path-style"]
            variables = ["AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"]
            _ = try await ToolProcess.run("/usr/bin/curl", ["-sf", "-X", "PUT", "\(endpoint)/\(bucket)"])
        }
        let port = ClusterTools.freePort()
        let rig = Rig(root: root, port: port, location: location, variables: variables)
        let pushEnvironment = variables.map { "\($0.key)=\($0.value)" }.sorted().joined(separator: " ")
        // With push-ahead, as a busy server would run it: later segments go in parallel.
        let push = "env \(pushEnvironment) \(root)/bin/backstop wal-push %p --push-ahead 4 --spool-dir \(root)/spool \((location + rig.key).joined(separator: " "))"
        try await ClusterTools.asPostgres("initdb", ["-D", root + "/data", "-U", "postgres", "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8"])
        try ClusterTools.append([
            "listen_addresses = '127.0.0.1'", "port = \(port)", "unix_socket_directories = '\(root)'", "fsync = off",
            "wal_level = replica", "archive_mode = on", "archive_command = '\(push)'",
        ], to: root + "/data/postgresql.conf")
        try await ClusterTools.start(root + "/data", log: root + "/server.log")
        _ = try await rig.sql("CREATE TABLE ledger (id int PRIMARY KEY); INSERT INTO ledger SELECT generate_series(1, 100)")
        return rig
    }

    @Test("a physical base backup and the WAL archive recover to a time, a restore point, an LSN and a second timeline; beyond the archive or through a damaged segment they fail and do not promote",
          arguments: Store.allCases)
    func pointInTime(_ store: Store) async throws {
        try TestEnvironment.requireServer()
        try #require(getuid() == 0, "the test runs PostgreSQL as the postgres user: run it as root (hack/test.sh in CI is)")
        let rig = try await makeRig(store)
        var running = [rig.root + "/data"]
        defer {
            for data in running { rig.stop(data) }
            if ProcessInfo.processInfo.environment["KEEP"] == nil { try? FileManager.default.removeItem(atPath: rig.root) }
        }

        let backup = try await rig.backstop(["backup", "--physical"] + rig.key + ["--database", "postgres://postgres@127.0.0.1:\(rig.port)/postgres"], asPostgres: true)
        try #require(backup.termination.succeeded, "\(backup.standardError)")
        let report = backup.standardOutput
        #expect(report.contains("\"verified\":true") && report.contains("backup_label and backup_manifest"), "\(report)")
        let deep = try await rig.backstop(["verify", "latest", "--deep", "--scratch-dir", rig.root] + rig.key)
        #expect(deep.termination.succeeded && deep.standardOutput.contains("pg_verifybackup"), "\(deep.standardError)")

        // Batches of rows with a time, a restore point and an LSN between them.
        _ = try await rig.sql("INSERT INTO ledger SELECT generate_series(101, 200)")
        try await Task.sleep(for: .milliseconds(50))
        // One instant, written in UTC and with an offset (two hours ahead).
        let between = try await rig.sql(#"SELECT to_char(t, 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') || ' ' || to_char(t + interval '2 hours', 'YYYY-MM-DD"T"HH24:MI:SS.US"+02:00"') FROM (SELECT clock_timestamp() AT TIME ZONE 'UTC' AS t) AS now"#)
            .split(separator: " ").map(String.init)
        try #require(between.count == 2)
        let (betweenTime, betweenWithOffset) = (between[0], between[1])
        try await Task.sleep(for: .milliseconds(50))
        _ = try await rig.sql("INSERT INTO ledger SELECT generate_series(201, 300)")
        _ = try await rig.sql("SELECT pg_create_restore_point('after_300')")
        _ = try await rig.sql("INSERT INTO ledger SELECT generate_series(301, 400)")
        let afterFourHundred = try await rig.sql("SELECT pg_current_wal_insert_lsn()")
        _ = try await rig.sql("INSERT INTO ledger SELECT generate_series(401, 500)")
        try await rig.archiveEverything()
        let doctor = try await rig.backstop(["doctor", "--rpo", "1h", "--database", "postgres://postgres@127.0.0.1:\(rig.port)/postgres"] + rig.key)
        #expect(doctor.standardOutput.contains("✓ WAL archiving to"), "\(doctor.standardOutput)")
        // The check the controller schedules: the newest archived file and the server's archiver.
        let status = try await rig.backstop(["wal-status", "--database", "postgres://postgres@127.0.0.1:\(rig.port)/postgres"])
        let walArchiving = try #require(status.standardOutput.split(separator: "\n").last.flatMap {
            (try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any])?["walArchiving"] as? [String: Any]
        }, "\(status.standardOutput)")
        #expect(walArchiving["failing"] as? Bool == false && walArchiving["failedCount"] as? Int == 0)
        #expect((walArchiving["lastArchivedFile"] as? String)?.hasPrefix("00000001") == true, "\(walArchiving)")

        // Without --start: the data directory and the settings for a server started elsewhere
        // (a BackupRestore with pointInTime), its restore_command naming the bundle's path there.
        let settingsOnly = try await rig.backstop(["restore", "--physical"] + rig.key + ["--data-dir", rig.root + "/settings-only",
                                                   "--wal-fetch-path", "/backstop/bin/backstop", "--target-name", "after_300",
                                                   "--prefetch", "2", "--spool-dir", "/backstop-spool"])
        #expect(settingsOnly.termination.succeeded, "\(settingsOnly.standardError)")
        let autoConf = try String(contentsOfFile: rig.root + "/settings-only/postgresql.auto.conf", encoding: .utf8)
        #expect(autoConf.contains("restore_command = '''/backstop/bin/backstop'' ''wal-fetch'' %f %p"), "\(autoConf)")
        #expect(autoConf.contains("recovery_target_name = 'after_300'") && autoConf.contains("recovery_target_action = 'promote'"))
        #expect(autoConf.contains("''--prefetch'' ''2'' ''--spool-dir'' ''/backstop-spool''"), "\(autoConf)")
        #expect(FileManager.default.fileExists(atPath: rig.root + "/settings-only/recovery.signal"))
        #expect(FileManager.default.fileExists(atPath: rig.root + "/settings-only/global/pg_control"))

        // The time given with an offset stands for the same instant.
        for (name, target, rows) in [
            ("by-time", ["--target-time", betweenWithOffset], "200"),
            ("by-name", ["--target-name", "after_300"], "300"),
            ("by-lsn", ["--target-lsn", afterFourHundred], "400"),
        ] {
            let recovered = try await rig.recover(name, target)
            running.append(recovered.data)
            #expect(recovered.outcome.termination.succeeded, "\(name): \(recovered.outcome.standardError)")
            #expect(try await rig.sql("SELECT count(*) FROM ledger", port: recovered.port) == rows, "\(name)")
            #expect(try await rig.sql("SELECT NOT pg_is_in_recovery()", port: recovered.port) == "t", "\(name): promoted")
            #expect(recovered.outcome.standardOutput.contains("recovery stopping"), "\(name): \(recovered.outcome.standardOutput)")
            rig.stop(recovered.data)
        }

        // A target past the archive's end: recovery fails and the server is not promoted.
        let future = try await rig.sql(#"SELECT to_char((clock_timestamp() + interval '1 hour') AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"+00:00"')"#)
        let beyond = try await rig.recover("beyond", ["--target-time", future])
        running.append(beyond.data)
        #expect(!beyond.outcome.termination.succeeded)
        #expect(beyond.outcome.standardError.contains("the archive ends before time \(future)"), "\(beyond.outcome.standardError)")
        #expect(!promoted(beyond.data), "never promoted")

        // A first recovery that keeps archiving moves to timeline 2; a second one follows it.
        let first = try await rig.recover("timeline-2", ["--target-time", betweenTime], archiving: true)
        running.append(first.data)
        #expect(first.outcome.termination.succeeded, "\(first.outcome.standardError)")
        #expect(first.outcome.standardOutput.contains("timeline 2"), "\(first.outcome.standardOutput)")
        // Two calls: psql -c runs its statements in one transaction, committed after the point.
        _ = try await rig.sql("INSERT INTO ledger SELECT generate_series(1001, 1010)", port: first.port)
        _ = try await rig.sql("SELECT pg_create_restore_point('on_timeline_2')", port: first.port)
        try await rig.archiveEverything(port: first.port)
        rig.stop(first.data)
        let second = try await rig.recover("timeline-3", ["--target-name", "on_timeline_2"])
        running.append(second.data)
        #expect(second.outcome.termination.succeeded, "\(second.outcome.standardError)")
        let rows = try await rig.sql("SELECT count(*) FROM ledger", port: second.port)
        #expect(rows == "210", "200 rows of timeline 1 and 10 of timeline 2: \(second.outcome.standardOutput)")
        #expect(second.outcome.standardOutput.contains("timeline 3"), "\(second.outcome.standardOutput)")
        rig.stop(second.data)

        // One damaged byte in an archived segment: wal-fetch refuses it, recovery stops.
        let segment = try #require(try await firstSegment(of: backup.standardError, rig))
        try await damage(segment, rig: rig)
        let damaged = try await rig.recover("damaged", ["--target", "immediate"])
        running.append(damaged.data)
        #expect(!damaged.outcome.termination.succeeded)
        #expect(damaged.outcome.standardError.contains("does not match its record"), "\(damaged.outcome.standardError)")
        #expect(!promoted(damaged.data), "never promoted")

        // Retention: a second base backup kept alone lets the first go, with the WAL before it
        // (the damaged segment among it); the second still recovers on its own timeline.
        let newer = try await rig.backstop(["backup", "--physical"] + rig.key + ["--database", "postgres://postgres@127.0.0.1:\(rig.port)/postgres"], asPostgres: true)
        try #require(newer.termination.succeeded, "\(newer.standardError)")
        let pruned = try await rig.backstop(["prune", "--keep-last", "1", "--min-age", "0s"], asPostgres: true)
        #expect(pruned.termination.succeeded, "\(pruned.standardError)")
        #expect(pruned.standardOutput.contains("archived WAL files older than every kept base backup"), "\(pruned.standardOutput)")
        let storage = try rig.storage()
        await #expect(throws: StorageError.self, "the damaged segment's record is gone") {
            _ = try await storage.head("shop/orders/pitr/wal/\(segment.prefix(8))/\(segment).json")
        }
        let afterPrune = try await rig.recover("after-prune", ["--target", "immediate", "--target-timeline", "current"])
        running.append(afterPrune.data)
        #expect(afterPrune.outcome.termination.succeeded, "\(afterPrune.outcome.standardError)")
        #expect(try await rig.sql("SELECT count(*) FROM ledger", port: afterPrune.port) == "500")

        // A tablespace outside the data directory: a streamed tar cannot carry it.
        try FileManager.default.createDirectory(atPath: rig.root + "/tablespace", withIntermediateDirectories: true)
        _ = try await ToolProcess.run("/bin/chown", ["postgres:postgres", rig.root + "/tablespace"])
        _ = try await rig.sql("CREATE TABLESPACE elsewhere LOCATION '\(rig.root)/tablespace'")
        let refused = try await rig.backstop(["backup", "--physical"] + rig.key + ["--database", "postgres://postgres@127.0.0.1:\(rig.port)/postgres"], asPostgres: true)
        #expect(!refused.termination.succeeded && refused.standardError.contains("tablespaces besides pg_default and pg_global (elsewhere)"), "\(refused.standardError)")
    }

    @Test("backup --physical refuses a cluster that does not archive, naming the setting")
    func refusesWithoutArchiving() async throws {
        try TestEnvironment.requireServer()
        let run = try await CommandLineTests.backstop(["backup", "--physical", "--storage", "file:///tmp/backstop-never-written"])
        #expect(run.status != 0, "\(run.errors)")
        #expect(run.errors.contains("archive_mode is off"), "\(run.errors)")
        #expect(!FileManager.default.fileExists(atPath: "/tmp/backstop-never-written/default/default/default/backups"))
    }

    /// Whether the server on `data` ended recovery and chose a new timeline. (pg_control alone
    /// cannot say: a base backup's copy reads "in production" before recovery starts.)
    private func promoted(_ data: String) -> Bool {
        ((try? String(contentsOfFile: data + "/backstop-recovery.log", encoding: .utf8)) ?? "").contains("selected new timeline ID")
    }

    /// The base backup's first WAL segment: the start of the range its commit line names
    /// ("WAL 0/2000028–0/2000100 on timeline 1"), named by the server.
    private func firstSegment(of backupLog: String, _ rig: Rig) async throws -> String? {
        guard let range = backupLog.components(separatedBy: " WAL ").dropFirst().first,
              let start = range.split(separator: "–").first else { return nil }
        return try await rig.sql("SELECT pg_walfile_name('\(start)')")
    }

    /// Flips one byte of an archived file where it is stored, through the storage layer.
    private func damage(_ segment: String, rig: Rig) async throws {
        let storage = try rig.storage()
        let key = "shop/orders/pitr/wal/\(segment.prefix(8))/\(segment)"
        var bytes = try await storage.get(key)
        bytes[bytes.count / 2] ^= 0x01
        try await storage.put(key, bytes: bytes)
    }
}
