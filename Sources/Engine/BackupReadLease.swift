internal import BackstopAPI
internal import Foundation
internal import Logging
internal import Storage

/// A restore's claim on the backup it reads: `<environment>/reads/<owner>.lease`, naming the
/// backup and an expiry the reader pushes forward while it works. Prune keeps every backup a
/// live read lease names, as it keeps a held one, so a restore that takes minutes never
/// loses its dump halfway. Unlike `EnvironmentLease`, readers do not exclude each other: any
/// number of restores may read at once, each under its own key. A reader that dies leaves a
/// lease that simply expires.
///
/// Prune lists the read leases when it plans; a restore that starts after that listing and
/// reads a backup the prune then deletes fails on the missing object, before the target is
/// changed (the restore streams into a database it created, or into a temporary one).
struct BackupReadLease: Sendable {
    struct Content: Codable, Equatable {
        var owner: String
        var backupID: BackupID
        var acquiredAt: UTCTimestamp
        var expiresAt: UTCTimestamp
    }

    let context: WorkerContext
    let owner = "\(ProcessInfo.processInfo.environment["HOSTNAME"] ?? "backstop")-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"

    var key: String { context.location.readsPrefix + owner + ".lease" }
    private var timing: WorkerContext.LeaseTiming { context.leaseTiming }

    /// Runs `body` with `id` leased for reading, renewing the lease meanwhile.
    func holding<T: Sendable>(_ id: BackupID, _ body: () async throws(EngineError) -> T) async throws(EngineError) -> T {
        try await write(id)
        let renewing = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: timing.renewal)
                if Task.isCancelled { return }
                try? await write(id)
            }
        }
        func release() async {
            renewing.cancel()
            await renewing.value
            try? await context.storage.delete([key])
        }
        do {
            let result = try await body()
            await release()
            return result
        } catch {
            await release()
            throw error
        }
    }

    private func write(_ id: BackupID) async throws(EngineError) {
        let now = context.now()
        let content = Content(owner: owner, backupID: id, acquiredAt: UTCTimestamp(secondsSince1970: Int64(now)),
                              expiresAt: UTCTimestamp(secondsSince1970: Int64(now + timing.duration / .seconds(1))))
        do { try await context.storage.put(key, bytes: [UInt8](try JSONEncoder().encode(content))) }
        catch { throw EngineError.wrapping(error, context: "cannot lease \(id) for reading") }
    }

    /// The backups live read leases name. A lease that cannot be read still counts for
    /// nothing: it names no backup, and a dead reader's lease must not pin backups forever.
    static func backupsBeingRead(_ context: WorkerContext) async throws(EngineError) -> Set<BackupID> {
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.readsPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list the read leases in \(context.storage.displayName)") }
        var reading: Set<BackupID> = []
        let now = context.now()
        for object in objects where object.key.hasSuffix(".lease") {
            guard let bytes = try? await context.storage.get(object.key),
                  let lease = try? JSONDecoder().decode(Content.self, from: Data(bytes)) else { continue }
            if Double(lease.expiresAt.secondsSince1970) >= now {
                reading.insert(lease.backupID)
            } else if now - Double(lease.expiresAt.secondsSince1970) > 24 * 3_600 {
                // A reader that died a day ago: its lease is only clutter now.
                try? await context.storage.delete([object.key])
            }
        }
        return reading
    }
}
