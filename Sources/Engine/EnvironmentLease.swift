internal import BackstopAPI
internal import Foundation
internal import Logging
internal import Storage

/// One backup, or one prune, of an environment at a time: `<environment>/<purpose>.lease`,
/// created only if absent, naming its owner and an expiry that the holder pushes forward while
/// it works. Two backups at once would both name the same predecessor in their manifests (a
/// fork the hash chain would call broken); two prunes would plan on each other's deletions.
///
/// A lease nobody renews is a dead holder's (SIGKILL, an OOM kill, a lost node): it is taken
/// over once expired. A caller that finds a lease waits, at most one lease period, to tell the
/// two apart, so a Job's retry after a killed pod succeeds instead of failing on its
/// predecessor's lease; a live holder is refused as soon as it is seen renewing.
struct EnvironmentLease: Sendable {
    enum Purpose: String, Sendable {
        case backup
        case prune
    }

    struct Content: Codable, Equatable {
        var owner: String
        var acquiredAt: UTCTimestamp
        var expiresAt: UTCTimestamp
        /// The backup a backup lease's holder is writing, once it has an id: named in the
        /// refusal another caller prints, and never swept by a prune as a leftover.
        var backupID: BackupID?
    }

    let context: WorkerContext
    let purpose: Purpose
    /// The pod's name (HOSTNAME in a pod) and a random part: unique per run, readable in the
    /// refusal another caller prints. Not `ProcessInfo.hostName`, which may block on DNS.
    let owner = "\(ProcessInfo.processInfo.environment["HOSTNAME"] ?? "backstop")-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"

    init(context: WorkerContext, purpose: Purpose) {
        self.context = context
        self.purpose = purpose
    }

    var key: String { context.location.environmentPrefix + purpose.rawValue + ".lease" }
    private var timing: WorkerContext.LeaseTiming { context.leaseTiming }

    /// Runs `body` holding the lease, renewing it meanwhile; releases it afterwards. `body`
    /// should call `confirm()` before an irreversible step (a backup's commit).
    func holding<T: Sendable>(_ body: (EnvironmentLease) async throws(EngineError) -> T) async throws(EngineError) -> T {
        try await acquire()
        let renewing = Task { [self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: timing.renewal)
                if Task.isCancelled { return }
                try? await renew()
            }
        }
        // A renewal still writing when the lease is released would put it back.
        func stopRenewing() async {
            renewing.cancel()
            await renewing.value
        }
        do {
            let result = try await body(self)
            await stopRenewing()
            await release()
            return result
        } catch {
            await stopRenewing()
            await release()
            throw error
        }
    }

    func acquire() async throws(EngineError) {
        var firstSeen: (content: Content, at: ContinuousClock.Instant)?
        while true {
            let now = context.now()
            let bytes = try encode(Content(owner: owner, acquiredAt: UTCTimestamp(secondsSince1970: Int64(now)),
                                           expiresAt: UTCTimestamp(secondsSince1970: Int64(now + timing.duration / .seconds(1)))))
            let held: Content
            do {
                if try await context.storage.putIfAbsent(key, bytes: bytes) { return }
                held = try JSONDecoder().decode(Content.self, from: Data(try await context.storage.get(key)))
            } catch let error as StorageError where error.kind == .notFound {
                continue  // released between our create and our read
            } catch let error as StorageError {
                throw EngineError.wrapping(error, context: "\(purpose.rawValue) lease")
            } catch {
                throw EngineError(.integrity, "the \(purpose.rawValue) lease \(key) cannot be read (\(EngineError.describeDecoding(error, document: key))); delete it if no \(purpose.rawValue) of this environment is running")
            }
            if held.owner == owner { return }
            if Double(held.expiresAt.secondsSince1970) < now {
                // Expired: its holder died. Remove it and race for a fresh one.
                context.logger.info("taking over the \(purpose.rawValue) lease of \(held.owner), which expired at \(held.expiresAt)")
                do { try await context.storage.delete([key]) }
                catch { throw EngineError.wrapping(error, context: "\(purpose.rawValue) lease") }
                continue
            }
            let clock = ContinuousClock()
            if let seen = firstSeen {
                // A holder that renews is alive; one that has not renewed for a whole lease
                // period answers to its own, longer expiry: either way, not ours to wait for.
                if seen.content != held || clock.now - seen.at > timing.duration + timing.renewal {
                    throw refusal(held)
                }
            } else {
                firstSeen = (held, clock.now)
                context.logger.info("another \(purpose.rawValue) of \(context.location.environmentPrefix) holds its lease (\(held.owner)); waiting up to \(timing.duration) to see whether it is alive")
            }
            do { try await Task.sleep(for: min(timing.renewal, .seconds(2))) }
            catch { throw EngineError(.interrupted, "interrupted (SIGTERM or SIGINT) while waiting for the \(purpose.rawValue) lease") }
        }
    }

    /// Fails when the lease is no longer ours: another caller took it over while this one was
    /// stalled past its expiry.
    func confirm() async throws(EngineError) {
        guard let held = try? await current(), held.owner == owner else {
            throw EngineError(.storage, "lost the \(purpose.rawValue) lease \(key) to another run while this one was stalled; nothing was committed — run it again")
        }
    }

    /// Records the backup the holder writes, once it has an id.
    func describe(backupID: BackupID) async {
        guard var held = try? await current(), held.owner == owner else { return }
        held.backupID = backupID
        guard let bytes = try? encode(held) else { return }
        try? await context.storage.put(key, bytes: bytes)
    }

    /// Pushes the expiry forward, if the lease is still ours.
    func renew() async throws(EngineError) {
        guard var held = try? await current(), held.owner == owner else { return }
        held.expiresAt = UTCTimestamp(secondsSince1970: Int64(context.now() + timing.duration / .seconds(1)))
        do { try await context.storage.put(key, bytes: try encode(held)) }
        catch { throw EngineError.wrapping(error, context: "renewing the \(purpose.rawValue) lease") }
    }

    /// Deletes the lease if it is still ours.
    func release() async {
        guard let held = try? await current(), held.owner == owner else { return }
        try? await context.storage.delete([key])
    }

    private func current() async throws -> Content {
        try JSONDecoder().decode(Content.self, from: Data(try await context.storage.get(key)))
    }

    /// The backup a live backup lease says is being written, if any.
    static func backupInProgress(_ context: WorkerContext) async -> BackupID? {
        let lease = EnvironmentLease(context: context, purpose: .backup)
        guard let held = try? await lease.current(), Double(held.expiresAt.secondsSince1970) >= context.now() else { return nil }
        return held.backupID
    }

    private func encode(_ content: Content) throws(EngineError) -> [UInt8] {
        do { return [UInt8](try JSONEncoder().encode(content)) }
        catch { throw EngineError(.storage, "cannot encode the \(purpose.rawValue) lease: \(error)") }
    }

    private func refusal(_ held: Content) -> EngineError {
        let what = held.backupID.map { " (backup \($0))" } ?? ""
        let fix = "delete \(key) only if that run is known to be dead"
        switch purpose {
        case .backup:
            return EngineError(.busy, "another backup of \(context.location.environmentPrefix) is running\(what): \(held.owner), started \(held.acquiredAt); backups of one environment run one at a time — wait for it to finish (\(fix))")
        case .prune:
            return EngineError(.busy, "another prune of \(context.location.environmentPrefix) is running: \(held.owner), started \(held.acquiredAt); prunes run one at a time — try again later (\(fix))")
        }
    }
}
