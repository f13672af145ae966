internal import KubeClient
public import Logging
internal import Synchronization

/// How the API access a controller depends on is doing (its watches, its leader Lease), for
/// `/readyz` and the log: access that keeps failing (a 403 for a missing RBAC rule, an
/// unreachable server) is named with what it was doing and why, once when it starts failing
/// and once when it recovers, not on every retry.
public final class APIAccessHealth: Sendable {
    private let failing = Mutex<[String: String]>([:])
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    /// `cronjobs.batch in namespace shop: list refused: …` per failing access, sorted.
    public var problems: [String] {
        failing.withLock { state in state.keys.sorted().compactMap { key in state[key].map { "\(key): \($0)" } } }
    }

    /// Access to `what` failed (`verb`: `list`, `watch`, `get` …).
    func failed(_ what: String, verb: String, error: KubeAPIError) {
        let message = error.isForbidden
            ? "\(verb) refused: \(error.message); grant the controller's ServiceAccount \(verb) on it (k8s/rbac.yaml)"
            : "\(verb) failed: \(error.message)"
        let changed = failing.withLock { state -> Bool in
            defer { state[what] = message }
            return state[what] != message
        }
        if changed { logger.error("\(what): \(message)") }
    }

    func recovered(_ what: String) {
        let was = failing.withLock { $0.removeValue(forKey: what) }
        if was != nil { logger.notice("\(what): works again") }
    }
}
