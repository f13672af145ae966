internal import BackstopAPI
internal import Foundation
internal import Storage

/// One prune at a time per environment: `<environment>/prune.lease`, created only if absent,
/// naming its owner and an expiry. A lease left by a killed prune is taken over once expired.
struct PruneLease: Sendable {
    struct Content: Codable {
        var owner: String
        var acquiredAt: UTCTimestamp
        var expiresAt: UTCTimestamp
    }

    static let duration: Double = 3_600

    let context: WorkerContext
    /// The pod's name (HOSTNAME in a pod) and a random part: unique per prune, readable in
    /// the refusal another prune prints. Not `ProcessInfo.hostName`, which may block on DNS.
    let owner = "\(ProcessInfo.processInfo.environment["HOSTNAME"] ?? "backstop")-\(getpid())-\(String(UInt32.random(in: 0...UInt32.max), radix: 16))"

    var key: String { context.location.environmentPrefix + "prune.lease" }

    func acquire() async throws(EngineError) {
        let now = context.now()
        let content = Content(owner: owner, acquiredAt: UTCTimestamp(secondsSince1970: Int64(now)),
                              expiresAt: UTCTimestamp(secondsSince1970: Int64(now + Self.duration)))
        let bytes: [UInt8]
        do { bytes = [UInt8](try JSONEncoder().encode(content)) }
        catch { throw EngineError(.storage, "cannot encode the prune lease: \(error)") }
        for _ in 0..<2 {
            do {
                if try await context.storage.putIfAbsent(key, bytes: bytes) { return }
                let held = try JSONDecoder().decode(Content.self, from: Data(try await context.storage.get(key)))
                if held.owner == owner { return }
                guard Double(held.expiresAt.secondsSince1970) < now else {
                    throw EngineError(.storage, "another prune of \(context.location.environmentPrefix) holds the lease (\(held.owner), until \(held.expiresAt)); it runs alone — try again later, or delete \(key) if that prune is known to be dead")
                }
                // Expired: its prune died. Remove it and race for a fresh one.
                try await context.storage.delete([key])
            } catch let error as EngineError {
                throw error
            } catch let error as StorageError {
                if error.kind == .notFound { continue }  // released between our create and read
                throw EngineError.wrapping(error, context: "prune lease")
            } catch {
                throw EngineError(.integrity, "the prune lease \(key) cannot be read (\(error)); delete it if no prune is running")
            }
        }
        throw EngineError(.storage, "could not take the prune lease \(key): it changed hands while we tried; try again")
    }

    /// Deletes the lease if it is still ours.
    func release() async {
        guard let bytes = try? await context.storage.get(key),
              let held = try? JSONDecoder().decode(Content.self, from: Data(bytes)), held.owner == owner else { return }
        try? await context.storage.delete([key])
    }
}
