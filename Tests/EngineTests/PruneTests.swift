import BackstopAPI
import Engine
import Foundation
import Postgres
import Storage
import Testing

@Suite("Prune and the hash chain", .enabled(if: TestEnvironment.integrationEnabled), .serialized)
struct PruneTests {
    enum Backend: String, CaseIterable { case file, s3 }

    func context(_ backend: Backend) async throws -> (WorkerContext, String?) {
        switch backend {
        case .file:
            let (context, root) = try TestEnvironment.makeContext(environment: "prune")
            return (context, root)
        case .s3:
            return (try await TestEnvironment.makeS3Context(), nil)
        }
    }

    @Test("prune keeps what the rules, holds and protections say, sweeps old leftovers, and the chain explains the gaps",
          arguments: Backend.allCases)
    func pruneAndChain(_ backend: Backend) async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("prune") { source in
            try await TestEnvironment.loadSample(into: source)
            let (context, root) = try await context(backend)
            defer { if let root { try? FileManager.default.removeItem(atPath: root) } }
            var ids: [BackupID] = []
            for _ in 0..<4 {
                ids.append(try await BackupCommand(context: context, options: .init(
                    database: ConnectionSettings("dbname=\(source)"), compression: .zstd, level: nil, encryption: .none)).run().manifest.id)
            }
            let catalog = BackupCatalog(context: context)
            guard case .held(let hold) = try await catalog.hold(ids[0].rawValue, reason: "audit") else {
                Issue.record("a new hold was not created")
                return
            }
            #expect(hold.backupID == ids[0] && hold.reason == "audit")
            // Holding again keeps the first hold; another reason is refused, never written over it.
            #expect(try await catalog.hold(ids[0].rawValue, reason: nil) == .alreadyHeld(hold))
            #expect(try await catalog.hold(ids[0].rawValue, reason: "audit") == .alreadyHeld(hold))
            let overwrite = await #expect(throws: EngineError.self) { try await catalog.hold(ids[0].rawValue, reason: "something else") }
            #expect(overwrite?.kind == .conflict && overwrite?.message.contains("audit") == true)
            #expect(try await catalog.holds()[ids[0]]?.reason == "audit")

            // A killed run's leftovers (three days old) and a backup still running (no manifest yet).
            let now = Int64(Date().timeIntervalSince1970)
            var random = SystemRandomNumberGenerator()
            let stale = BackupID.make(secondsSince1970: now - 3 * 86_400, after: nil, using: &random)
            let running = BackupID.make(secondsSince1970: now, after: ids.last, using: &random)
            try await context.storage.put(context.location.objectKey(stale, name: "data.dump.zst"), bytes: [1, 2, 3])
            try await context.storage.put(context.location.objectKey(running, name: "data.dump.zst"), bytes: [4, 5, 6])

            let rules = RetentionPolicy(keep: .init(last: 1), minAge: .init(seconds: 0))
            let preview = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: true)).run()
            #expect(preview.decisions.map(\.keep) == [true, false, false, true])
            #expect(preview.decisions.map(\.summary) == [
                "kept: last 1 of 1, newest verified backup",
                "deleted: no rule keeps it, not among the newest 1",
                "deleted: no rule keeps it, not among the newest 1",
                "kept: on hold",
            ])
            #expect(preview.orphans == [stale.rawValue])
            #expect(try await catalog.committedIDs() == ids, "a dry run deletes nothing")

            let pruned = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false)).run()
            #expect(pruned.record?.deleted.map(\.backupID) == [ids[2], ids[1]])
            #expect(try await catalog.committedIDs() == [ids[0], ids[3]])
            let remaining = Set(try await context.storage.list(prefix: context.location.backupsPrefix).map {
                String($0.key.dropFirst(context.location.backupsPrefix.count).prefix { $0 != "/" })
            })
            #expect(remaining == [ids[0].rawValue, ids[3].rawValue, running.rawValue], "data of pruned backups and old leftovers are gone; the running one stays")

            var chain = try await catalog.chain()
            #expect(chain.map(\.id) == [ids[0], ids[3]])
            #expect(chain[0].status == .first)
            guard case .predecessorPruned = chain[1].status else {
                Issue.record("expected the predecessor of \(ids[3]) to be explained by the prune record, got \(chain[1].status)")
                return
            }

            // Released, the held backup goes too; the chain still explains every gap.
            #expect(try await catalog.release(ids[0].rawValue) == ids[0])
            await #expect(throws: EngineError.self) { try await catalog.release(ids[0].rawValue) }
            _ = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false)).run()
            #expect(try await catalog.committedIDs() == [ids[3]])
            chain = try await catalog.chain()
            guard case .predecessorPruned = chain[0].status else {
                Issue.record("expected a pruned predecessor, got \(chain[0].status)")
                return
            }

            // A manifest removed outside retention breaks the chain.
            let fifth = try await BackupCommand(context: context, options: .init(
                database: ConnectionSettings("dbname=\(source)"), compression: .zstd, level: nil, encryption: .none)).run().manifest.id
            let sixth = try await BackupCommand(context: context, options: .init(
                database: ConnectionSettings("dbname=\(source)"), compression: .zstd, level: nil, encryption: .none)).run().manifest.id
            try await context.storage.delete([context.location.manifestKey(fifth)])
            chain = try await catalog.chain()
            #expect(chain.map(\.id) == [ids[3], sixth])
            guard case .broken = chain[1].status else {
                Issue.record("a manifest deleted by hand went unnoticed: \(chain[1].status)")
                return
            }
        }
    }

    @Test("tiers move kept S3 backups as they age; they still verify; files stay where they are")
    func tiers() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("tiers") { source in
            try await TestEnvironment.loadSample(into: source)
            var context = try await TestEnvironment.makeS3Context()
            let first = try await BackupCommand(context: context, options: .init(
                database: ConnectionSettings("dbname=\(source)"), compression: .zstd, level: nil, encryption: .none)).run().manifest.id
            let tiers = [try StorageTier(parsing: "30d:STANDARD_IA"), try StorageTier(parsing: "90d:GLACIER_IR")]
            let rules = RetentionPolicy(keep: .init(within: .init(seconds: 400 * 86_400)))
            let start = context.now()
            context.now = { start + 40 * 86_400 }  // forty days later
            let moved = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false, tiers: tiers)).run()
            #expect(moved.tierMoves.map(\.storageClass) == ["STANDARD_IA"])
            #expect(try await BackupCatalog(context: context).entries().map(\.storageClass) == ["STANDARD_IA"])
            context.now = { start + 100 * 86_400 }
            _ = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false, tiers: tiers)).run()
            #expect(try await BackupCatalog(context: context).entries().map(\.storageClass) == ["GLACIER_IR"])
            let again = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false, tiers: tiers)).run()
            #expect(again.tierMoves.isEmpty, "already in its tier")
            #expect(try await VerifyCommand(context: context, encryption: .none).run(first.rawValue).succeeded)
        }
        #expect(throws: BackstopAPIError.self) { try StorageTier(parsing: "30d:DEEP_ARCHIVE") }
        #expect(throws: BackstopAPIError.self) { try StorageTier(parsing: "30d:GLACIER") }
        #expect(throws: BackstopAPIError.self) { try StorageTier(parsing: "STANDARD_IA") }
    }

    @Test("one prune at a time: a live lease refuses a second prune, an expired one is taken over")
    func lease() async throws {
        let (context, root) = try TestEnvironment.makeContext(environment: "lease")
        defer { try? FileManager.default.removeItem(atPath: root) }
        let key = context.location.environmentPrefix + "prune.lease"
        let now = Int64(context.now())
        let rules = RetentionPolicy(keep: .init(last: 3))
        try await context.storage.put(key, bytes: Array("{\"owner\":\"other-host-1\",\"acquiredAt\":\"\(UTCTimestamp(secondsSince1970: now))\",\"expiresAt\":\"\(UTCTimestamp(secondsSince1970: now + 600))\"}".utf8))
        do {
            _ = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false)).run()
            Issue.record("a second prune ran while the lease was held")
        } catch {
            #expect(error.message.contains("other-host-1"))
        }
        #expect(try await PruneCommand(context: context, options: .init(retention: rules, dryRun: true)).run().dryRun, "a dry run needs no lease")

        try await context.storage.put(key, bytes: Array("{\"owner\":\"dead-host\",\"acquiredAt\":\"\(UTCTimestamp(secondsSince1970: now - 7_200))\",\"expiresAt\":\"\(UTCTimestamp(secondsSince1970: now - 3_600))\"}".utf8))
        _ = try await PruneCommand(context: context, options: .init(retention: rules, dryRun: false)).run()
        await #expect(throws: StorageError.self, "released after the prune") { try await context.storage.head(key) }
    }

    @Test("a prune never touches another environment, namespace or policy, even one whose name extends its own")
    func confined() async throws {
        try TestEnvironment.requireServer()
        try await TestEnvironment.withDatabase("confined") { source in
            try await TestEnvironment.loadSample(into: source)
            let (prod, root) = try TestEnvironment.makeContext(environment: "prod")
            defer { try? FileManager.default.removeItem(atPath: root) }
            var neighbours: [WorkerContext] = []
            for (namespace, policy, environment) in [("shop", "orders", "production"), ("shop", "orders-2", "prod"), ("shop2", "orders", "prod")] {
                var context = prod
                context.location = try BackupLocation(namespace: namespace, policy: policy, environment: environment)
                neighbours.append(context)
            }
            for context in [prod] + neighbours {
                for _ in 0..<2 {
                    _ = try await BackupCommand(context: context, options: .init(
                        database: ConnectionSettings("dbname=\(source)"), compression: .zstd, level: nil, encryption: .none)).run()
                }
            }
            let before = try await prod.storage.list(prefix: "")
            let result = try await PruneCommand(context: prod, options: .init(retention: RetentionPolicy(keep: .init(last: 1), minAge: .init(seconds: 0)),
                                                                              dryRun: false, orphanGrace: .init(seconds: 0))).run()
            #expect(result.decisions.count == 2 && result.decisions.filter { !$0.keep }.count == 1)
            let after = try await prod.storage.list(prefix: "")
            let removed = Set(before.map(\.key)).subtracting(after.map(\.key))
            #expect(!removed.isEmpty && removed.allSatisfy { $0.hasPrefix(prod.location.environmentPrefix) }, "\(removed)")
            for context in neighbours {
                #expect(try await BackupCatalog(context: context).committedIDs().count == 2)
            }
        }
    }

    @Test("a prune without rules is refused before anything is listed")
    func noRules() async throws {
        let (context, root) = try TestEnvironment.makeContext(environment: "norules")
        defer { try? FileManager.default.removeItem(atPath: root) }
        await #expect(throws: EngineError.self) {
            try await PruneCommand(context: context, options: .init(retention: RetentionPolicy(keep: .init()), dryRun: false)).run()
        }
    }
}
