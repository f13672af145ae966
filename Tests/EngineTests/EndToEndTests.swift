import BackstopAPI
import BlockingCalls
import Engine
import Foundation
import Postgres
import Storage
import TestSupport
import Testing

@Suite("End to end against PostgreSQL", .serialized, .enabled(if: TestEnvironment.integrationEnabled))
struct EndToEndTests {
    @Test("backup, verify, restore: same rows and same schema", arguments: [CompressionAlgorithm.zstd, .gzip, .none])
    func roundTrip(_ compression: CompressionAlgorithm) async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("source") { source in
            let target = source + "_restored"
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try TestEnvironment.makeContext()
            defer { try? FileManager.default.removeItem(atPath: root) }
            let key = try TestEnvironment.keyFile()
            let encryption = EncryptionSource.keyFile(key)

            let first = try await BackupCommand(context: context, options: .init(
                database: ConnectionSettings("dbname=\(source)"), compression: compression, level: nil,
                encryption: encryption)).run()
            #expect(first.verification.succeeded)
            #expect(first.verification.checks.contains("pg_restore --list"))
            #expect(first.manifest.previousManifestSHA256 == nil)
            let counts = Dictionary(uniqueKeysWithValues: first.manifest.tables.map { ($0.qualifiedName, $0.rows) })
            #expect(counts == ["shop.customers": 2000, "shop.orders": 20000, "audit.events": 5000])
            #expect(first.manifest.encryption?.keyFingerprint.hasPrefix("hmac-sha256:") == true)

            // A second backup chains to the first manifest's stored bytes.
            let second = try await BackupCommand(context: context, options: .init(
                database: ConnectionSettings("dbname=\(source)"), compression: compression, level: nil,
                encryption: encryption)).run()
            let firstBytes = try await context.storage.get(context.location.manifestKey(first.manifest.id))
            #expect(second.manifest.previousManifestSHA256 == sha256Hex(firstBytes))

            let entries = try await BackupCatalog(context: context).entries()
            #expect(entries.map(\.manifest.id) == [first.manifest.id, second.manifest.id])
            #expect(entries.allSatisfy { $0.verification?.succeeded == true })

            let verified = try await VerifyCommand(context: context, encryption: encryption).run("latest")
            #expect(verified.backupID == second.manifest.id)
            #expect((verified.archiveEntries ?? 0) > 10)

            let restored = try await RestoreCommand(context: context, options: .init(
                target: ConnectionSettings("dbname=\(target)"), encryption: encryption,
                mode: .newDatabase, noOwner: false)).run(first.manifest.id.rawValue)
            #expect(restored.createdDatabase)
            #expect(restored.rowCountDifferences.isEmpty)
            #expect(restored.tablesCompared == 3)
            #expect(try await schema(of: source) == schema(of: target))
            #expect(try await TestEnvironment.run("psql", ["-tA", "-d", target, "-c", "SELECT sum(total)::text || count(attachment) FROM shop.orders"])
                == TestEnvironment.run("psql", ["-tA", "-d", source, "-c", "SELECT sum(total)::text || count(attachment) FROM shop.orders"]))

            // Restoring over the now non-empty database is refused without --clean --yes.
            await #expect(throws: EngineError.self) {
                try await RestoreCommand(context: context, options: .init(
                    target: ConnectionSettings("dbname=\(target)"), encryption: encryption,
                    mode: .newDatabase, noOwner: false)).run("latest")
            }
            let replaced = try await RestoreCommand(context: context, options: .init(
                target: ConnectionSettings("dbname=\(target)"), encryption: encryption,
                mode: .clean(confirmed: true), noOwner: false)).run("latest")
            #expect(!replaced.createdDatabase && replaced.rowCountDifferences.isEmpty)
        }
    }

    @Test("backup, verify, restore through S3")
    func roundTripThroughS3() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("s3") { source in
            try await TestEnvironment.loadSample(into: source)
            let context = try await TestEnvironment.makeS3Context()
            let encryption = EncryptionSource.keyFile(try TestEnvironment.keyFile())
            let backup = try await BackupCommand(context: context, options: .init(
                database: ConnectionSettings("dbname=\(source)"), compression: .zstd, level: nil,
                encryption: encryption)).run()
            #expect(backup.verification.succeeded)
            let stored = try await context.storage.list(prefix: context.location.backupPrefix(backup.manifest.id)).map(\.key)
            #expect(stored.map { $0.split(separator: "/").last.map(String.init) ?? "" } == ["data.dump.zst.enc", "manifest.json", "verified.json"])
            let verified = try await VerifyCommand(context: context, encryption: encryption).run("latest")
            #expect(verified.succeeded)
            let restored = try await RestoreCommand(context: context, options: .init(
                target: ConnectionSettings("dbname=\(source)_restored"), encryption: encryption,
                mode: .newDatabase, noOwner: false)).run("latest")
            #expect(restored.rowCountDifferences.isEmpty && restored.tablesCompared == 3)
            #expect(try await schema(of: source) == schema(of: source + "_restored"))
        }
    }

    /// Injected faults (503 SlowDown, resets before answers and mid-part, delays) through a
    /// loopback proxy: each backup either commits and verifies, or fails and leaves no
    /// manifest, no stray object and no pending multipart upload.
    @Test("backups through a faulty S3 connection commit and verify, or leave nothing")
    func throughFaults() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("faults") { source in
            // About 12 MB of incompressible rows, so the dump goes up in several parts.
            try await TestEnvironment.run("psql", ["-q", "-d", source, "-c", "CREATE EXTENSION IF NOT EXISTS pgcrypto",
                                             "-c", "CREATE TABLE blobs AS SELECT i, gen_random_bytes(1024) AS b FROM generate_series(1, 12000) i"])
            let clean = try await TestEnvironment.makeS3Context()
            let direct = try #require(clean.storage as? S3Storage)
            let proxy = try FaultProxy(upstream: direct.configuration.endpoint!, faultRate: 0.3, seed: 3)
            defer { proxy.stop() }
            // Surely among the random faults: CreateMultipartUpload answers lost after S3 started
            // the upload (the retry starts another; the first must not be left pending).
            proxy.inject(.loseAnswer, times: 2) { $0.hasPrefix("POST ") && $0.contains("?uploads= ") }
            var configuration = direct.configuration
            configuration.endpoint = proxy.endpoint
            configuration.partSize = S3Configuration.minimumPartSize
            configuration.maximumAttempts = 3  // few enough that some backups fail
            var faulty = WorkerContext(storage: S3Storage(configuration: configuration, credentials: direct.credentials, http: direct.http),
                                       location: clean.location, logger: clean.logger)
            faulty.leaseTiming = TestEnvironment.testLeaseTiming
            var committed = 0
            var failed = 0
            for _ in 0..<25 where proxy.counts.totalInjected < 50 || committed == 0 || failed == 0 {
                do {
                    let result = try await BackupCommand(context: faulty, options: .init(
                        database: ConnectionSettings("dbname=\(source)"), compression: .zstd, level: nil, encryption: .none)).run()
                    #expect(result.verification.succeeded)
                    committed += 1
                } catch {
                    failed += 1
                }
                // Whatever happened, storage holds only committed backups, each complete.
                let objects = try await direct.list(prefix: clean.location.backupsPrefix)
                let folders = Set(objects.map { $0.key.split(separator: "/").dropLast().joined(separator: "/") })
                for folder in folders {
                    let names = Set(objects.filter { $0.key.hasPrefix(folder + "/") }.map { $0.key.split(separator: "/").last.map(String.init) ?? "" })
                    #expect(names.contains("manifest.json") && names.contains("data.dump.zst"), "\(folder) holds \(names)")
                }
                #expect(try await direct.incompleteUploads(prefix: "").isEmpty, "no multipart upload left pending")
            }
            #expect(committed > 0)
            #expect(proxy.counts.totalInjected >= 50, "faults injected: \(proxy.counts.injected); \(committed) committed, \(failed) failed")
            #expect(proxy.counts.lostAnswers.filter { $0.contains("?uploads= ") }.count >= 2, "answers were lost after S3 acted: \(proxy.counts.lostAnswers)")
            proxy.setFaultRate(0)
            let verified = try await VerifyCommand(context: clean, encryption: .none).run("latest")
            #expect(verified.succeeded)
        }
    }

    @Test("a flipped byte fails verify naming the block, and restore leaves no database")
    func flippedByte() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("flip") { source in
            let target = source + "_restored"
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try TestEnvironment.makeContext()
            defer { try? FileManager.default.removeItem(atPath: root) }
            let backup = try await BackupCommand(context: context, options: .init(
                database: ConnectionSettings("dbname=\(source)"), compression: .none, level: nil, encryption: .none)).run()

            let object = backup.manifest.objects[0]
            let path = root + "/" + context.location.objectKey(backup.manifest.id, name: object.name)
            var bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: path)))
            bytes[bytes.count / 2] ^= 0x40
            try Data(bytes).write(to: URL(fileURLWithPath: path))

            let error = await #expect(throws: EngineError.self) {
                try await VerifyCommand(context: context, encryption: .none).run("latest")
            }
            #expect(error?.kind == .integrity)
            #expect(error?.message.contains("\(object.name): block 0") == true)
            let record = try #require(await BackupCatalog(context: context).entries().first?.verification)
            #expect(!record.succeeded)

            let restoreError = await #expect(throws: EngineError.self) {
                try await RestoreCommand(context: context, options: .init(
                    target: ConnectionSettings("dbname=\(target)"), encryption: .none,
                    mode: .newDatabase, noOwner: false)).run("latest")
            }
            #expect(restoreError?.kind == .integrity)
            #expect(try await !TestEnvironment.databaseExists(target))

            // A shortened object is refused before anything is created.
            try Data(bytes.dropLast(10)).write(to: URL(fileURLWithPath: path))
            let sizeError = await #expect(throws: EngineError.self) {
                try await RestoreCommand(context: context, options: .init(
                    target: ConnectionSettings("dbname=\(target)"), encryption: .none,
                    mode: .newDatabase, noOwner: false)).run("latest")
            }
            #expect(sizeError?.message.contains("the manifest says") == true)
            #expect(try await !TestEnvironment.databaseExists(target))
        }
    }

    @Test("a failing dump writes no manifest", arguments: [
        ("dbname=does_not_exist_anywhere", "does not exist"),
        ("dbname=postgres password=wrong-password", "password"),
        ("dbname=postgres host=127.0.0.1 port=1", "check --database"),
    ])
    func failingDump(_ connection: String, _ expected: String) async throws {
        try TestEnvironment.requireServer()
        let (context, root) = try TestEnvironment.makeContext()
        defer { try? FileManager.default.removeItem(atPath: root) }
        let error = await #expect(throws: EngineError.self) {
            try await BackupCommand(context: context, options: .init(
                database: ConnectionSettings(connection), compression: .zstd, level: nil, encryption: .none)).run()
        }
        #expect(error?.message.contains(expected) == true, "\(error?.message ?? "")")
        #expect(try await context.storage.list(prefix: "").isEmpty)
    }

    @Test("wrong or missing keys are refused before reading data")
    func wrongKey() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("keys") { source in
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try TestEnvironment.makeContext()
            defer { try? FileManager.default.removeItem(atPath: root) }
            _ = try await BackupCommand(context: context, options: .init(
                database: ConnectionSettings("dbname=\(source)"), compression: .zstd, level: nil,
                encryption: .keyFile(try TestEnvironment.keyFile()))).run()
            let wrong = await #expect(throws: EngineError.self) {
                try await VerifyCommand(context: context, encryption: .keyFile(try TestEnvironment.keyFile())).run("latest")
            }
            #expect(wrong?.kind == .encryption)
            #expect(wrong?.message.contains("wrong key") == true)
            let missing = await #expect(throws: EngineError.self) {
                try await VerifyCommand(context: context, encryption: .none).run("latest")
            }
            #expect(missing?.message.contains("--encryption-key-file") == true)
            // A wrong key is the caller's mistake, not damage: the backup stays verified.
            #expect(try await BackupCatalog(context: context).entries().first?.verification?.succeeded == true)
        }
    }

    @Test("cancelling a backup mid-stream leaves nothing behind")
    func cancelled() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("cancel") { source in
            // About 60 MB of incompressible text, so the dump is still running when cancelled.
            try await TestEnvironment.run("psql", ["-q", "-d", source, "-c",
                "CREATE TABLE noise AS SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) AS t FROM generate_series(1, 600000) i"])
            let (context, root) = try TestEnvironment.makeContext()
            defer { try? FileManager.default.removeItem(atPath: root) }
            let backup = Task {
                try await BackupCommand(context: context, options: .init(
                    database: ConnectionSettings("dbname=\(source)"), compression: .zstd, level: 19, encryption: .none)).run()
            }
            try await Task.sleep(for: .milliseconds(400))
            backup.cancel()
            let result = await backup.result
            guard case .failure(let error as EngineError) = result else {
                Issue.record("the backup was not interrupted: \(result)")
                return
            }
            #expect(error.kind == .interrupted)
            #expect(try await context.storage.list(prefix: "").isEmpty)
            #expect(FileManager.default.enumerator(atPath: root)?.allObjects.compactMap { $0 as? String }
                .filter { $0.contains(".partial-") }.isEmpty ?? true)
        }
    }

    @Test("SIGTERM to the backstop binary mid-backup: pg_dump stopped, nothing left, no manifest, exit 1 with a report")
    func sigtermToTheBinary() async throws {
        try TestEnvironment.requireServer()
        let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../../.build/debug/backstop").standardized.path
        try #require(FileManager.default.isExecutableFile(atPath: binary), "build the backstop binary first (hack/test.sh does)")
        try await TestEnvironment.withDatabase("sigterm") { source in
            try await TestEnvironment.run("psql", ["-q", "-d", source, "-c",
                "CREATE TABLE noise AS SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) AS t FROM generate_series(1, 600000) i"])
            let root = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-sigterm-\(UUID().uuidString)").path
            defer { try? FileManager.default.removeItem(atPath: root) }
            let report = root + ".report"
            defer { try? FileManager.default.removeItem(atPath: report) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: binary)
            process.arguments = ["backup", "--storage", "file://" + root, "--database", "dbname=\(source)", "--level", "19",
                                 "--report-path", report]
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            try process.run()
            try await Task.sleep(for: .milliseconds(800))
            #expect(process.isRunning, "the backup is still dumping")
            process.terminate()  // SIGTERM
            let exited = UncheckedProcess(process)
            try await runBlocking(name: "wait") { exited.process.waitUntilExit() }
            #expect(process.terminationReason == .exit && process.terminationStatus == 1, "a clean failure, not death by signal")
            // Folders may stay; no file may: no object, no partial upload, no manifest.
            let files = (FileManager.default.enumerator(atPath: root)?.allObjects.compactMap { $0 as? String } ?? []).filter { path in
                var isFolder: ObjCBool = false
                return FileManager.default.fileExists(atPath: root + "/" + path, isDirectory: &isFolder) && !isFolder.boolValue
            }
            #expect(files.isEmpty, "left behind: \(files)")
            let line = try String(contentsOfFile: report, encoding: .utf8)
            #expect(line.contains("\"outcome\":\"failed\"") && line.contains("interrupted"), "\(line)")
            // pg_dump went with it: no backend of this database is still copying.
            let active = try await TestEnvironment.run("psql", ["-tA", "-d", "postgres", "-c",
                "SELECT count(*) FROM pg_stat_activity WHERE datname = '\(source)' AND application_name = 'pg_dump'"])
            #expect(active.trimmingCharacters(in: .whitespacesAndNewlines) == "0")
        }
    }

    private func schema(of database: String) async throws -> String {
        try await TestEnvironment.run("pg_dump", ["--schema-only", "--no-comments", "-d", database])
            .split(separator: "\n")
            // Comments, and psql's random \restrict key (new in 15.14), differ between any two dumps.
            .filter { !$0.hasPrefix("--") && !$0.hasPrefix("\\restrict") && !$0.hasPrefix("\\unrestrict") }
            .joined(separator: "\n")
    }
}

func sha256Hex(_ bytes: [UInt8]) -> String {
    // Independent of the code under test: the system's sha256sum.
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
    let input = Pipe()
    let output = Pipe()
    process.standardInput = input
    process.standardOutput = output
    try? process.run()
    input.fileHandleForWriting.write(Data(bytes))
    try? input.fileHandleForWriting.close()
    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
    process.waitUntilExit()
    return String(text.prefix(64))
}

/// A child process handed to the thread that waits for it.
struct UncheckedProcess: @unchecked Sendable {
    let process: Process
    init(_ process: Process) { self.process = process }
}
