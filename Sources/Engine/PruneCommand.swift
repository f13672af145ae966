public import BackstopAPI
internal import Foundation
internal import Logging
public import Storage

/// `backstop prune`: applies the retention rules to one environment and explains every
/// decision. Deletes a backup's manifest first (it stops being a backup at once), then its
/// data; records each prune in `prunes/` before deleting; sweeps the leftovers of killed runs
/// (folders without a manifest, unfinished uploads). A backup whose manifest cannot be read is
/// reported and left alone: nothing is deleted on the strength of a manifest nobody can read.
/// Only the environment's own prefix is listed or touched.
public struct PruneCommand: Sendable {
    public struct Options: Sendable {
        public var retention: RetentionPolicy
        public var dryRun: Bool
        /// Folders under `backups/` without a manifest, and unfinished uploads, are removed once
        /// older than this: longer than any backup may run, so a backup in progress is never
        /// mistaken for a leftover.
        public var orphanGrace: FixedDuration
        /// Storage classes kept backups move to as they age (S3 only; ignored for files).
        public var tiers: [StorageTier]

        public init(retention: RetentionPolicy, dryRun: Bool, orphanGrace: FixedDuration = FixedDuration(seconds: 86_400),
                    tiers: [StorageTier] = []) {
            self.retention = retention
            self.dryRun = dryRun
            self.orphanGrace = orphanGrace
            self.tiers = tiers
        }
    }

    public struct Result: Sendable {
        /// Newest first, one per committed backup whose manifest reads.
        public let decisions: [RetentionPolicy.Decision]
        /// Backups whose manifests cannot be read: left alone, whatever the rules say.
        public let damaged: [BackupCatalog.DamagedEntry]
        /// Leftover folders (ids without a manifest) removed, or that would be.
        public let orphans: [String]
        /// Unfinished uploads (partial files, pending S3 multipart uploads) discarded, or that would be.
        public let unfinishedUploads: [IncompleteUpload]
        /// Kept backups whose data moved (or would move) to another storage class.
        public let tierMoves: [(id: BackupID, storageClass: String)]
        /// Archived WAL files (and their records) older than every kept base backup: deleted,
        /// or that would be.
        public let walFilesDeleted: Int
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
            return Result(decisions: plan.decisions, damaged: plan.damaged, orphans: plan.orphans, unfinishedUploads: plan.unfinishedUploads,
                          tierMoves: plan.moves.map { ($0.id, $0.storageClass) }, walFilesDeleted: plan.expiredWAL.files.count, record: nil, dryRun: true)
        }
        // The lease comes before the listing, so the plan is made on what no other prune changes.
        return try await EnvironmentLease(context: context, purpose: .prune).holding { _ throws(EngineError) in
            try await apply(try await makePlan())
        }
    }

    /// Everything a prune decides, before it changes anything.
    private struct Plan {
        let now: Double
        let entries: [BackupCatalog.Entry]
        let damaged: [BackupCatalog.DamagedEntry]
        let decisions: [RetentionPolicy.Decision]
        /// Objects under `backups/`, by id folder.
        let folders: [String: [ObjectInfo]]
        let orphans: [String]
        let unfinishedUploads: [IncompleteUpload]
        let moves: [(id: BackupID, key: String, storageClass: String)]
        /// Archived WAL files no kept base backup needs: their records, and the files.
        let expiredWAL: (records: [String], files: [String])
        var doomed: [RetentionPolicy.Decision] { decisions.filter { !$0.keep } }
    }

    private func makePlan() async throws(EngineError) -> Plan {
        let catalog = BackupCatalog(context: context)
        let now = context.now()
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.backupsPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list \(context.storage.displayName)") }
        let contents = try await catalog.contents()
        let holds = try await catalog.holds()
        // A backup a restore is reading is kept as a held one is, until the restore ends.
        let reading = try await BackupReadLease.backupsBeingRead(context)
        let candidates = contents.entries.map { entry in
            RetentionPolicy.Candidate(id: entry.manifest.id, time: Date(timeIntervalSince1970: Double(entry.manifest.startedAt.secondsSince1970)),
                                      verified: entry.verification?.succeeded == true,
                                      held: holds[entry.manifest.id] != nil || reading.contains(entry.manifest.id))
        }
        let decisions = options.retention.evaluate(candidates, now: Date(timeIntervalSince1970: now))
        for damage in contents.damaged {
            context.logger.warning("backup \(damage.id) is damaged (\(damage.problem)); prune leaves it alone — look at it, then restore from another backup or delete it by hand")
        }

        let leftovers = try await Leftovers.find(context, objects: objects, contents: contents, grace: options.orphanGrace, now: now)
        let moves = tierMoves(entries: contents.entries, keep: Set(decisions.filter(\.keep).map(\.id)), now: now)
        let expiredWAL = try await expiredWAL(entries: contents.entries, keep: Set(decisions.filter(\.keep).map(\.id)),
                                              damaged: !contents.damaged.isEmpty)
        return Plan(now: now, entries: contents.entries, damaged: contents.damaged, decisions: decisions, folders: leftovers.folders,
                    orphans: leftovers.orphans, unfinishedUploads: leftovers.unfinishedUploads, moves: moves, expiredWAL: expiredWAL)
    }

    /// WAL is kept from the first segment of the oldest kept base backup on: recovery from any
    /// kept base backup needs everything after its start. Older segments, backup history
    /// files and partial segments of the same or earlier timelines go; timeline history files
    /// stay (tiny, and recovery reads them to follow timelines). Nothing goes while no base
    /// backup is kept, or while a damaged manifest might be one.
    private func expiredWAL(entries: [BackupCatalog.Entry], keep: Set<BackupID>, damaged: Bool) async throws(EngineError) -> (records: [String], files: [String]) {
        let kept = entries.filter { keep.contains($0.manifest.id) }.compactMap(\.manifest.physical)
        guard let oldest = kept.min(by: { $0.startLSN < $1.startLSN }) else { return ([], []) }
        guard !damaged else {
            context.logger.warning("archived WAL is not pruned while a backup's manifest is damaged: it might be a base backup that needs it")
            return ([], [])
        }
        let firstNeeded = oldest.firstWALSegment
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.walPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list the WAL archive") }
        var records: [String] = []
        var files: [String] = []
        for object in objects {
            let name = (object.key as NSString).lastPathComponent
            let isRecord = name.hasSuffix(".json")
            let fileName = isRecord ? String(name.dropLast(5)) : name
            guard let file = try? WALFileName(fileName), !fileName.hasSuffix(".history"),
                  file.timeline <= String(firstNeeded.prefix(8)),
                  fileName.dropFirst(8).prefix(16) < firstNeeded.dropFirst(8).prefix(16) else { continue }
            if isRecord { records.append(object.key) } else { files.append(object.key) }
        }
        return (records, files)
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
        for upload in plan.unfinishedUploads {
            do { try await context.storage.discard(upload) }
            catch { throw EngineError.wrapping(error, context: "discarding the unfinished upload of \(upload.key)") }
            context.logger.info("discarded an unfinished upload of \(upload.key), idle for longer than \(options.orphanGrace)")
        }
        if let tiered = context.storage as? any TieredStorage {
            for move in plan.moves {
                do { try await tiered.changeStorageClass(move.key, to: move.storageClass) }
                catch { throw EngineError.wrapping(error, context: "moving \(move.id) to \(move.storageClass)") }
                context.logger.info("moved \(move.id) to \(move.storageClass)")
            }
        }
        if !plan.expiredWAL.records.isEmpty || !plan.expiredWAL.files.isEmpty {
            // Records first: a prune cut short leaves files without records, which read as not
            // archived, never records without their files.
            do {
                try await context.storage.delete(plan.expiredWAL.records)
                try await context.storage.delete(plan.expiredWAL.files)
            } catch { throw EngineError.wrapping(error, context: "deleting archived WAL older than every kept base backup") }
            context.logger.info("deleted \(plan.expiredWAL.files.count) archived WAL files older than every kept base backup")
        }
        return Result(decisions: plan.decisions, damaged: plan.damaged, orphans: plan.orphans, unfinishedUploads: plan.unfinishedUploads,
                      tierMoves: plan.moves.map { ($0.id, $0.storageClass) }, walFilesDeleted: plan.expiredWAL.files.count,
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
        let calendar = options.retention.calendar
        return entries.compactMap { entry in
            let taken = Date(timeIntervalSince1970: Double(entry.manifest.startedAt.secondsSince1970))
            guard keep.contains(entry.manifest.id),
                  let tier = StorageTier.target(for: taken, now: Date(timeIntervalSince1970: now), in: options.tiers, calendar: calendar),
                  (entry.storageClass ?? "STANDARD") != tier.storageClass, let object = entry.manifest.objects.first else { return nil }
            return (entry.manifest.id, context.location.objectKey(entry.manifest.id, name: object.name), tier.storageClass)
        }
    }

    private func write(_ record: PruneRecord, to key: String) async throws(EngineError) {
        do { try await context.storage.put(key, bytes: [UInt8](try BackupCatalog.encoder.encode(record))) }
        catch { throw EngineError.wrapping(error, context: "cannot write the prune record \(key)") }
    }
}
