public import KubeClient
public import Logging
internal import Synchronization

/// What the API server serves that the controller's objects may use. Read from `/version`
/// at start, and learnt when the server refuses a field (a v1.24 server answers an apply
/// carrying CronJob `spec.timeZone` with a 500): the controller then stops sending it,
/// instead of failing every pass.
public final class ServerCapabilities: Sendable {
    public struct Snapshot: Sendable, Equatable {
        /// `v1.24.0`, for messages; nil when unknown.
        public var version: String?
        /// CronJob `spec.timeZone` (Kubernetes 1.25 and later).
        public var cronJobTimeZone: Bool
        /// Native sidecars, init containers with `restartPolicy: Always` (on by default from
        /// Kubernetes 1.29): earlier servers drop the field, and such an init container would
        /// run forever before the drill.
        public var nativeSidecars: Bool

        public init(version: String?, cronJobTimeZone: Bool, nativeSidecars: Bool = true) {
            self.version = version
            self.cronJobTimeZone = cronJobTimeZone
            self.nativeSidecars = nativeSidecars
        }
    }

    private let state: Mutex<Snapshot>

    public init(_ snapshot: Snapshot = Snapshot(version: nil, cronJobTimeZone: true)) {
        state = Mutex(snapshot)
    }

    public var snapshot: Snapshot { state.withLock { $0 } }

    /// Asks the server. When `/version` cannot be read, every field is assumed served until
    /// the server refuses one.
    public static func discover(client: KubeClient, logger: Logger) async -> ServerCapabilities {
        do {
            let version = try await client.serverVersion()
            let minor = version.minorNumber ?? Int.max
            let snapshot = Snapshot(version: version.gitVersion, cronJobTimeZone: version.major != "1" || minor >= 25,
                                    nativeSidecars: version.major != "1" || minor >= 29)
            logger.info("API server \(version.gitVersion): CronJob time zones \(snapshot.cronJobTimeZone ? "served" : "not served"), native sidecars \(snapshot.nativeSidecars ? "served" : "not served")")
            return ServerCapabilities(snapshot)
        } catch {
            logger.warning("cannot read the API server's version (\(error)); assuming a current server")
            return ServerCapabilities()
        }
    }

    /// The server refused `spec.timeZone`; returns whether that is news.
    func cronJobTimeZoneRefused() -> Bool {
        state.withLock { state in
            defer { state.cronJobTimeZone = false }
            return state.cronJobTimeZone
        }
    }
}
