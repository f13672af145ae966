internal import BackstopAPI
internal import Foundation
internal import Storage

/// What killed runs leave in an environment, idle for longer than a grace: backup folders that
/// never got a manifest, and unfinished uploads — never those of the backup a live lease says
/// is running. Prune removes them (after `--orphan-grace`); doctor reports them (any age).
struct Leftovers {
    /// The objects under `backups/`, by id folder.
    let folders: [String: [ObjectInfo]]
    /// Folders of ids without a manifest, sorted.
    let orphans: [String]
    let unfinishedUploads: [IncompleteUpload]

    /// `objects` is the listing of `backups/`, taken before `contents` (so a backup committed
    /// in between is accounted for, not an orphan).
    static func find(_ context: WorkerContext, objects: [ObjectInfo], contents: BackupCatalog.Contents, grace: FixedDuration,
                     now: Double) async throws(EngineError) -> Leftovers {
        // A damaged backup has a manifest: it is not a leftover; nor is a backup still being
        // written however long it runs (its live lease names it).
        let running = await EnvironmentLease.backupInProgress(context)
        var accountedFor = Set(contents.entries.map(\.manifest.id.rawValue) + contents.damaged.map(\.id.rawValue))
        if let running { accountedFor.insert(running.rawValue) }
        let prefix = context.location.backupsPrefix
        let folders = Dictionary(grouping: objects) { object in String(object.key.dropFirst(prefix.count).prefix { $0 != "/" }) }
        let orphans = folders.keys.filter { folder in
            guard !accountedFor.contains(folder) else { return false }
            guard let id = try? BackupID(folder), let seconds = id.secondsSince1970 else { return false }
            return now - Double(seconds) > Double(grace.seconds)
        }.sorted()

        let uploads: [IncompleteUpload]
        do { uploads = try await context.storage.incompleteUploads(prefix: context.location.environmentPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list the unfinished uploads in \(context.storage.displayName)") }
        let unfinished = uploads.filter { upload in
            if let running, upload.key.hasPrefix(context.location.backupPrefix(running)) { return false }
            // An upload under `backups/<id>/` is as old as its backup at least: that guards a
            // running backup on services that report a wrong start (moto reports 2010).
            var lastActivity = upload.lastActivity.timeIntervalSince1970
            if upload.key.hasPrefix(prefix), let id = try? BackupID(String(upload.key.dropFirst(prefix.count).prefix { $0 != "/" })),
               let started = id.secondsSince1970 {
                lastActivity = max(lastActivity, Double(started))
            }
            return now - lastActivity > Double(grace.seconds)
        }
        return Leftovers(folders: folders, orphans: orphans, unfinishedUploads: unfinished)
    }
}
