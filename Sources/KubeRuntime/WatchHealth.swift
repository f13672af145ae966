internal import KubeClient
public import Logging
internal import Synchronization

/// How a controller's watches are doing, for `/readyz` and the log: a watch that keeps
/// failing (a 403 for a missing RBAC rule, an unreachable server) is named with what it was
/// doing and why, once when it starts failing and once when it recovers, not on every retry.
public final class WatchHealth: Sendable {
    private let failing = Mutex<[String: String]>([:])
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// `list cronjobs.batch in namespace shop: 403 Forbidden: …` per failing watch, sorted.
    public var problems: [String] {
        failing.withLock { state in state.keys.sorted().compactMap { key in state[key].map { "\(key): \($0)" } } }
    }

    /// A watch's step failed (`verb` is `list` or `watch`).
    func failed(_ watch: String, verb: String, error: KubeAPIError) {
        let message = error.isForbidden
            ? "\(verb) refused: \(error.message); grant the controller's ServiceAccount \(verb) on it (k8s/rbac.yaml)"
            : "\(verb) failed: \(error.message)"
        let changed = failing.withLock { state -> Bool in
            defer { state[watch] = message }
            return state[watch] != message
        }
        if changed { logger.error("watch of \(watch): \(message)") }
    }

    func recovered(_ watch: String) {
        let was = failing.withLock { $0.removeValue(forKey: watch) }
        if was != nil { logger.notice("watch of \(watch) works again") }
    }
}
