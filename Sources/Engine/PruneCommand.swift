public import BackstopAPI
internal import Foundation
internal import Logging
internal import Storage

/// `backstop prune`: applies the retention rules to one environment and explains every
/// decision. Deletes a backup's manifest first (it stops being a backup at once), then its
/// data; records each prune in `prunes/` before deleting; sweeps the leftovers of killed runs.
/// Only the environment's own prefix is listed or touched.
public struct PruneCommand: Sendable {
    public struct Options: Sendable {
        public var retention: RetentionPolicy
        public var dryRun: Bool
        /// Folders under `backups/` without a manifest are removed once older than this: longer
        /// than any backup may run, so a backup in progress is never mistaken for a leftover.
        public var orphanGrace: RetentionDuration
        /// Storage classes kept backups move to as they age (S3 only; ignored for files).
        public var tiers: [StorageTier]

        public init(retention: RetentionPolicy, dryRun: Bool, orphanGrace: RetentionDuration = RetentionDuration(seconds: 86_400),
                    tiers: [StorageTier] = []) {
            self.retention = retention
            self.dryRun = dryRun
            self.orphanGrace = orphanGrace
            self.tiers = tiers
        }
    }

    public struct Result: Sendable {
        /// Newest first, one per committed backup.
        public let decisions: [RetentionPolicy.Decision]
        /// Leftover folders (ids without a manifest) removed, or that would be.
        public let orphans: [String]
        /// Kept backups whose data moved (or would move) to another storage class.
        public let tierMoves: [(id: BackupID, storageClass: String)]
        public let record: PruneRecord?
        public let dryRun: Bool
    }

    let context: WorkerContext
    let options: Options

    public init(context: WorkerContext, options: Options) {
        self.context = context
        self.options = options
    }

    public func run() async throws(EngineError) -> Result {
        do { try options.retention.validate() } catch { throw EngineError.wrapping(error) }
        if options.dryRun {
            let plan = try await makePlan()
            return Result(decisions: plan.decisions, orphans: plan.orphans, tierMoves: plan.moves.map { ($0.id, $0.storageClass) },
                          record: nil, dryRun: true)
        }
        // The lease comes before the listing, so the plan is made on what no other prune changes.
        let lease = PruneLease(context: context)
        try await lease.acquire()
        do {
            let result = try await apply(try await makePlan())
            await lease.release()
            return result
        } catch {
            await lease.release()
            throw error
        }
    }

    /// Everything a prune decides, before it changes anything.
    private struct Plan {
        let now: Double
        let entries: [BackupCatalog.Entry]
        let decisions: [RetentionPolicy.Decision]
        /// Objects under `backups/`, by id folder.
        let folders: [String: [ObjectInfo]]
        let orphans: [String]
        let moves: [(id: BackupID, key: String, storageClass: String)]
        var doomed: [RetentionPolicy.Decision] { decisions.filter { !$0.keep } }
    }

    private func makePlan() async throws(EngineError) -> Plan {
        let catalog = BackupCatalog(context: context)
        let now = context.now()
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.backupsPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list \(context.storage.displayName)") }
        let entries = try await catalog.entries()
        let holds = try await catalog.holds()
        let candidates = entries.map { entry in
            RetentionPolicy.Candidate(id: entry.manifest.id, time: Date(timeIntervalSince1970: Double(entry.manifest.startedAt.secondsSince1970)),
                                      verified: entry.verification?.succeeded == true, held: holds.contains(entry.manifest.id))
        }
        let decisions = options.retention.evaluate(candidates, now: Date(timeIntervalSince1970: now))

        // Folders of ids that never got a manifest, old enough to be leftovers.
        let committed = Set(entries.map(\.manifest.id.rawValue))
        let folders = Dictionary(grouping: objects) { object in
            String(object.key.dropFirst(context.location.backupsPrefix.count).prefix { $0 != "/" })
        }
        let orphans = folders.keys.filter { folder in
            guard !committed.contains(folder) else { return false }
            guard let id = try? BackupID(folder), let seconds = id.secondsSince1970 else { return false }
            return now - Double(seconds) > Double(options.orphanGrace.seconds)
        }.sorted()
        let moves = tierMoves(entries: entries, keep: Set(decisions.filter(\.keep).map(\.id)), now: now)
        return Plan(now: now, entries: entries, decisions: decisions, folders: folders, orphans: orphans, moves: moves)
    }

    private func apply(_ plan: Plan) async throws(EngineError) -> Result {
        let doomed = plan.doomed
        let now = plan.now
        let entries = plan.entries
        let folders = plan.folders
        let hashes = Dictionary(uniqueKeysWithValues: entries.map { ($0.manifest.id, $0.manifestSHA256) })
        let record = PruneRecord(
            prunedAt: UTCTimestamp(secondsSince1970: Int64(now)), runID: String(UInt32.random(in: 0...UInt32.max), radix: 16),
            retention: options.retention.summary,
            deleted: doomed.map { .init(backupID: $0.id, manifestSHA256: hashes[$0.id] ?? "", reasons: $0.reasons) },
            toolVersion: WorkerContext.toolVersion)
        if !doomed.isEmpty {
            // The record goes first: a prune cut short still explains the gap in the chain.
            try await write(record, to: context.location.pruneRecordKey(record))
        }
        for decision in doomed {
            let keys = (folders[decision.id.rawValue] ?? []).map(\.key)
            do {
                try await context.storage.delete([context.location.manifestKey(decision.id)])
                try await context.storage.delete(keys.filter { $0 != context.location.manifestKey(decision.id) })
            } catch {
                throw EngineError.wrapping(error, context: "pruning \(decision.id)")
            }
            context.logger.info("pruned \(decision.id): \(decision.reasons.joined(separator: ", "))")
        }
        for orphan in plan.orphans {
            do { try await context.storage.delete((folders[orphan] ?? []).map(\.key)) }
            catch { throw EngineError.wrapping(error, context: "removing the leftovers of \(orphan)") }
            context.logger.info("removed leftovers of \(orphan): no manifest, older than \(options.orphanGrace)")
        }
        if let tiered = context.storage as? any TieredStorage {
            for move in plan.moves {
                do { try await tiered.changeStorageClass(move.key, to: move.storageClass) }
                catch { throw EngineError.wrapping(error, context: "moving \(move.id) to \(move.storageClass)") }
                context.logger.info("moved \(move.id) to \(move.storageClass)")
            }
        }
        return Result(decisions: plan.decisions, orphans: plan.orphans, tierMoves: plan.moves.map { ($0.id, $0.storageClass) },
                      record: doomed.isEmpty ? nil : record, dryRun: false)
    }

    /// Data objects of kept backups that have aged into a tier they are not in yet. Manifests
    /// and verification records stay where they are: small, and read by every listing.
    private func tierMoves(entries: [BackupCatalog.Entry], keep: Set<BackupID>, now: Double) -> [(id: BackupID, key: String, storageClass: String)] {
        guard !options.tiers.isEmpty else { return [] }
        guard context.storage is any TieredStorage else {
            context.logger.info("storage tiers apply to S3 only; \(context.storage.displayName) keeps every backup where it is")
            return []
        }
        return entries.compactMap { entry in
            let age = now - Double(entry.manifest.startedAt.secondsSince1970)
            guard keep.contains(entry.manifest.id), let tier = StorageTier.target(for: age, in: options.tiers),
                  (entry.storageClass ?? "STANDARD") != tier.storageClass, let object = entry.manifest.objects.first else { return nil }
            return (entry.manifest.id, context.location.objectKey(entry.manifest.id, name: object.name), tier.storageClass)
        }
    }

    private func write(_ record: PruneRecord, to key: String) async throws(EngineError) {
        do { try await context.storage.put(key, bytes: [UInt8](try BackupCatalog.encoder.encode(record))) }
        catch { throw EngineError.wrapping(error, context: "cannot write the prune record \(key)") }
    }
}
