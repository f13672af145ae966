import BackstopAPI
import BlockingCalls
import Engine
import Foundation
import Postgres
@testable import Storage
import TestSupport
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The ways a backup tool loses data or blocks its users that tests against a well-behaved
/// storage never show: a damaged manifest, a killed run's leftovers, two runs at once, a
/// restore aimed at a template database.
@Suite("Data safety against PostgreSQL and storage", .serialized, .enabled(if: TestEnvironment.integrationEnabled))
struct DataSafetyTests {
    enum Backend: String, CaseIterable { case file, s3 }

    func context(_ backend: Backend, environment: String) async throws -> (WorkerContext, String?) {
        switch backend {
        case .file:
            let (context, root) = try TestEnvironment.makeContext(environment: environment)
            return (context, root)
        case .s3:
            return (try await TestEnvironment.makeS3Context(), nil)
        }
    }

    func backup(_ context: WorkerContext, _ database: String) async throws -> BackupID {
        try await BackupCommand(context: context, options: .init(
            database: ConnectionSettings("dbname=\(database)"), compression: .zstd, level: nil, encryption: .none)).run().manifest.id
    }

    @Test("a damaged manifest is one damaged backup: listed with the reason, left alone by prune, named by the chain; later backups go on",
          arguments: Backend.allCases)
    func damagedManifest(_ backend: Backend) async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("damaged") { source in
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try await context(backend, environment: "damaged")
            defer { if let root { try? FileManager.default.removeItem(atPath: root) } }
            var ids: [BackupID] = []
            for _ in 0..<3 { ids.append(try await backup(context, source)) }
            let damagedKey = context.location.manifestKey(ids[1])
            try await context.storage.put(damagedKey, bytes: Array("{\"formatVersion\": 1, \"id\": ".utf8))

            let catalog = BackupCatalog(context: context)
            let contents = try await catalog.contents()
            #expect(contents.entries.map(\.manifest.id) == [ids[0], ids[2]])
            #expect(contents.damaged.map(\.id) == [ids[1]])
            #expect(contents.damaged.first?.problem.contains("not valid JSON") == true, "\(contents.damaged)")
            #expect(contents.damaged.first.map { !$0.problem.contains("DecodingError") && !$0.problem.contains("given data") } == true)

            // The next backup commits, chained to the damaged manifest's stored bytes.
            ids.append(try await backup(context, source))
            let chain = try await catalog.chain()
            #expect(chain.map(\.id) == ids)
            #expect(chain.map(\.status) == [.first, .damaged(contents.damaged[0].problem), .broken(chain[2].brokenText), .linked],
                    "the damaged link is named; its successor sees the altered bytes; the rest links: \(chain)")

            // Prune deletes nothing on the strength of a manifest it cannot read.
            let rules = RetentionPolicy(keep: .init(last: 1), minAge: .init(seconds: 0))
            let pruned = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false, orphanGrace: .init(seconds: 0))).run()
            #expect(pruned.damaged.map(\.id) == [ids[1]])
            #expect(pruned.orphans.isEmpty, "a damaged backup has a manifest: it is not a leftover")
            #expect(try await context.storage.get(damagedKey) == Array("{\"formatVersion\": 1, \"id\": ".utf8))
            #expect(try await catalog.committedIDs() == [ids[1], ids[3]])
            let objects = try await context.storage.list(prefix: context.location.backupPrefix(ids[1])).map(\.key)
            #expect(objects.contains(context.location.objectKey(ids[1], name: "data.dump.zst")), "its data stays too")
        }
    }

    @Test("a killed run's unfinished uploads are swept once idle past the grace; a running one is not", arguments: Backend.allCases)
    func unfinishedUploads(_ backend: Backend) async throws {
        let (context, root) = try await context(backend, environment: "leftovers")
        defer { if let root { try? FileManager.default.removeItem(atPath: root) } }
        let now = Int64(context.now())
        var random = SystemRandomNumberGenerator()
        let killed = BackupID.make(secondsSince1970: now - 3 * 86_400, using: &random)
        let running = BackupID.make(secondsSince1970: now - 60, using: &random)
        // A backup that has run for three days: older than the grace, but its live lease names it.
        let longRunning = BackupID.make(secondsSince1970: now - 3 * 86_400, after: killed, using: &random)
        let lease = "{\"owner\":\"orders-backup-pod\",\"acquiredAt\":\"\(UTCTimestamp(secondsSince1970: now - 3 * 86_400))\",\"expiresAt\":\"\(UTCTimestamp(secondsSince1970: now + 90))\",\"backupID\":\"\(longRunning)\"}"
        try await context.storage.put(context.location.environmentPrefix + "backup.lease", bytes: Array(lease.utf8))
        // What SIGKILL leaves: a writer that neither finished nor aborted.
        var writers: [UncheckedWriter] = []
        for id in [killed, running, longRunning] {
            let key = context.location.objectKey(id, name: "data.dump.zst")
            writers.append(try await runBlocking(name: "test") {
                let writer = try context.storage.makeWriter(key)
                // More than a part (8 MiB), so S3 has a multipart upload under way.
                try [UInt8](repeating: 1, count: (8 << 20) + 1).withUnsafeBytes { try writer.write($0) }
                return UncheckedWriter(writer)
            })
        }
        if backend == .file, let root {
            // The killed run's partial file was last written three days ago (and so, to test
            // the lease, the long-running one's).
            for id in [killed, longRunning] {
                let folder = root + "/" + context.location.backupPrefix(id)
                let partial = try #require(try FileManager.default.contentsOfDirectory(atPath: folder).first { $0.contains(".partial-") })
                var times = [timespec(tv_sec: Int(now - 3 * 86_400), tv_nsec: 0), timespec(tv_sec: Int(now - 3 * 86_400), tv_nsec: 0)]
                #expect(utimensat(AT_FDCWD, folder + partial, &times, 0) == 0)
            }
        }
        #expect(try await context.storage.incompleteUploads(prefix: context.location.environmentPrefix).count == 3)

        let rules = RetentionPolicy(keep: .init(last: 3))
        let preview = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: true, orphanGrace: .init(seconds: 3_600))).run()
        #expect(preview.unfinishedUploads.map(\.key) == [context.location.objectKey(killed, name: "data.dump.zst")])
        let result = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false, orphanGrace: .init(seconds: 3_600))).run()
        #expect(result.unfinishedUploads.count == 1)
        let left = try await context.storage.incompleteUploads(prefix: context.location.environmentPrefix)
        #expect(Set(left.map(\.key)) == Set([running, longRunning].map { context.location.objectKey($0, name: "data.dump.zst") }),
                "the running backups' uploads stay")
        let kept = writers
        try await runBlocking(name: "test") { for writer in kept { writer.writer.abort() } }
    }

    @Test("two backups of one environment at once: one runs, the other is refused naming it; the chain stays whole")
    func concurrentBackups() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("concurrent") { source in
            // Slow to compress (zstd 15), so the first backup outlives a lease renewal (1 s here).
            try await TestEnvironment.run("psql", ["-q", "-d", source, "-c",
                "CREATE TABLE noise AS SELECT i, md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text) AS t FROM generate_series(1, 300000) i"])
            let (context, root) = try TestEnvironment.makeContext(environment: "concurrent")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let slow = BackupCommand.Options.self
            let options = try slow.init(database: ConnectionSettings("dbname=\(source)"), compression: .zstd, level: 15, encryption: .none)
            let first = Task { try await BackupCommand(context: context, options: options).run().manifest.id }
            let second = Task { try await BackupCommand(context: context, options: options).run().manifest.id }
            let results = [await first.result, await second.result]
            let committed = results.compactMap { try? $0.get() }
            let refusals = results.compactMap { result -> EngineError? in
                if case .failure(let error as EngineError) = result { return error }
                return nil
            }
            #expect(committed.count == 1 && refusals.count == 1, "\(results)")
            #expect(refusals.first?.kind == .busy)
            #expect(refusals.first?.message.contains("another backup of shop/orders/concurrent/ is running (backup \(committed.first?.rawValue ?? "?"))") == true,
                    "\(refusals.first?.message ?? "")")
            _ = try await backup(context, source)
            let chain = try await BackupCatalog(context: context).chain()
            #expect(chain.map(\.status) == [.first, .linked], "no false alarm: \(chain)")
        }
    }

    @Test("a lease left by a killed backup is taken over once it expires, so the Job's retry succeeds")
    func deadHolder() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("dead") { source in
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try TestEnvironment.makeContext(environment: "dead")
            defer { try? FileManager.default.removeItem(atPath: root) }
            let now = Int64(context.now())
            let lease = "{\"owner\":\"orders-dead-pod-1\",\"acquiredAt\":\"\(UTCTimestamp(secondsSince1970: now - 60))\",\"expiresAt\":\"\(UTCTimestamp(secondsSince1970: now + 2))\"}"
            try await context.storage.put(context.location.environmentPrefix + "backup.lease", bytes: Array(lease.utf8))
            let started = ContinuousClock.now
            _ = try await backup(context, source)
            #expect(ContinuousClock.now - started >= .seconds(1), "it waited for the lease to expire")
            await #expect(throws: StorageError.self, "released after the backup") {
                try await context.storage.head(context.location.environmentPrefix + "backup.lease")
            }
        }
    }

    @Test("restores into template0 or template1 are refused; a polluted template1 does not break a restore")
    func templates() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("templates") { source in
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try TestEnvironment.makeContext(environment: "templates")
            defer { try? FileManager.default.removeItem(atPath: root) }
            _ = try await backup(context, source)
            for template in ["template1", "template0"] {
                let error = await #expect(throws: EngineError.self) {
                    try await RestoreCommand(context: context, options: .init(
                        target: ConnectionSettings("dbname=\(template)", option: "--target"), encryption: .none,
                        mode: .clean(confirmed: true), noOwner: false)).run("latest")
                }
                #expect(error?.kind == .invalidOption && error?.message.contains("--target names \(template)") == true, "\(error?.message ?? "")")
            }
            let polluted = try await TestEnvironment.run("psql", ["-tA", "-d", "template1", "-c", "SELECT count(*) FROM pg_namespace WHERE nspname = 'shop'"])
            #expect(polluted.trimmingCharacters(in: .whitespacesAndNewlines) == "0", "template1 untouched")

            // Someone put a table into template1 that the dump also holds: a database copied
            // from template1 would make the restore fail on it; one copied from template0 does not.
            try await TestEnvironment.run("psql", ["-q", "-d", "template1", "-c", "CREATE SCHEMA zz_probe; CREATE TABLE zz_probe.collides (i int)"])
            try await TestEnvironment.run("psql", ["-q", "-d", source, "-c", "CREATE SCHEMA zz_probe; CREATE TABLE zz_probe.collides (i int)"])
            do {
                _ = try await backup(context, source)
                let restored = try await RestoreCommand(context: context, options: .init(
                    target: ConnectionSettings("dbname=\(source)_restored", option: "--target"), encryption: .none,
                    mode: .newDatabase, noOwner: false)).run("latest")
                #expect(restored.rowCountDifferences.isEmpty && restored.createdDatabase)
            } catch {
                try await TestEnvironment.run("psql", ["-q", "-d", "template1", "-c", "DROP SCHEMA zz_probe CASCADE"])
                throw error
            }
            try await TestEnvironment.run("psql", ["-q", "-d", "template1", "-c", "DROP SCHEMA zz_probe CASCADE"])
        }
    }
}

extension BackupCatalog.ChainLink {
    /// The text of a broken link, for comparing whole chains.
    var brokenText: String {
        if case .broken(let text) = status { return text }
        return ""
    }
}

/// A writer kept alive (never finished, never aborted) to stand for a killed process.
struct UncheckedWriter: @unchecked Sendable {
    let writer: any ObjectWriter
    init(_ writer: any ObjectWriter) { self.writer = writer }
}
