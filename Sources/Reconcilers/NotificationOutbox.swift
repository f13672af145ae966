internal import BackstopAPI
internal import Foundation
public import HTTP
public import KubeClient
internal import KubeObjects
public import Logging
internal import Synchronization

/// Delivers owed notifications beside the reconciles, never inside them: a reconcile hands
/// over what is due and returns; each delivery runs in a task of its own (the webhook's
/// Secret read from the controller's namespace, one POST with a timeout), and its outcome
/// waits here until a pass has written it into the policy's status. A delivery whose outcome
/// is lost (a restart) is still owed in the status and is sent again: at least once.
public final class NotificationOutbox: Sendable {
    /// Where webhook Secrets live: the controller's own namespace.
    let secretNamespace: String
    let client: KubeClient
    let http: HTTPClient
    let metrics: Metrics
    let logger: Logger
    /// The longest a receiver may stay silent before the attempt counts as failed.
    let timeout: Duration
    /// The first wait before a failed delivery is tried again; it doubles each time.
    let retryBase: Duration

    private struct State {
        /// `policy key \u{0} target identity` of deliveries under way.
        var inFlight: Set<String> = []
        /// Policy key → outcomes not yet in its status.
        var outcomes: [String: [NotificationOutcome]] = [:]
        /// Asks for a pass of the policy once an outcome is in.
        var wake: (@Sendable (String) -> Void)?
    }
    private let state = Mutex(State())

    public init(client: KubeClient, secretNamespace: String? = nil, metrics: Metrics, logger: Logger, timeout: Duration = .seconds(10),
                retryBase: Duration = .seconds(30)) throws(HTTPError) {
        self.retryBase = retryBase
        self.client = client
        self.secretNamespace = secretNamespace ?? client.connection.namespace
        // The system's CA bundle, as for any public HTTPS service; TLS is always verified.
        self.http = try HTTPClient(configuration: .init(connectTimeout: timeout, stallTimeout: timeout, userAgent: "backstop-controller"),
                                   maximumConcurrentRequests: 4)
        self.metrics = metrics
        self.logger = logger
        self.timeout = timeout
    }

    func setWake(_ wake: @escaping @Sendable (String) -> Void) { state.withLock { $0.wake = wake } }

    /// Outcomes of `key` its status does not hold yet. Those `observed` (the status this pass
    /// starts from) holds are forgotten first; the others stay until a status shows them, so a
    /// pass that starts from a stale status neither loses an outcome nor sends again.
    /// Outcomes for targets the policy no longer names are dropped with them.
    func outcomes(for key: String, observed: NotificationStatus?, targets: Set<String>) -> [NotificationOutcome] {
        state.withLock { state in
            state.outcomes[key]?.removeAll { $0.isReflected(in: observed) || !targets.contains($0.target) }
            if state.outcomes[key]?.isEmpty == true { state.outcomes[key] = nil }
            return state.outcomes[key] ?? []
        }
    }

    /// Starts a delivery for each due notification not already under way or finished.
    func dispatch(_ due: [NotificationStatus.Pending], of policy: BackupPolicy, key: String) {
        let targets = Dictionary((policy.spec.notifications ?? []).map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        let subject = NotificationPayload.Subject(namespace: policy.metadata.namespace ?? "", policy: policy.metadata.name)
        for notification in due {
            guard let target = targets[notification.target] else { continue }
            let flight = "\(key)\u{0}\(target.name) \(notification.identity)"
            let started: Bool = state.withLock { state in
                // An outcome not yet in the status: the attempt after it is the next pass's to start.
                let finished = state.outcomes[key]?.contains { $0.target == target.name && $0.identity == notification.identity } ?? false
                guard !finished, state.inFlight.insert(flight).inserted else { return false }
                return true
            }
            guard started else { continue }
            Task {
                let error = await deliver(notification, to: target, subject: subject)
                metrics.recordNotification(namespace: subject.namespace, policy: subject.policy, target: target.name, delivered: error == nil)
                if let error {
                    logger.warning("notification \(notification.identity) of \(key) to \(target.name) failed: \(error)")
                } else {
                    logger.info("notified \(target.name) of \(notification.identity) (\(key))")
                }
                let wake: (@Sendable (String) -> Void)? = state.withLock { state in
                    state.inFlight.remove(flight)
                    state.outcomes[key, default: []].append(NotificationOutcome(target: target.name, identity: notification.identity,
                                                                                attempt: notification.attempts + 1, error: error, time: KubeTimestamp(Date())))
                    return state.wake
                }
                wake?(key)
            }
        }
    }

    /// One attempt; nil when the receiver took it (any 2xx). The error says what failed in
    /// words that never include the URL: the URL is the secret.
    func deliver(_ notification: NotificationStatus.Pending, to target: NotificationTarget, subject: NotificationPayload.Subject) async -> String? {
        let key = target.webhook.key ?? "url"
        let url: String
        do {
            let secret = try await client.get(.secrets, namespace: secretNamespace, name: target.webhook.secretName, as: JSONValue.self)
            guard let encoded = secret[path: "data"]?[key]?.string, let data = Data(base64Encoded: encoded),
                  let text = String(data: data, encoding: .utf8)?.trimmingCharacters(in: .whitespacesAndNewlines), !text.isEmpty else {
                return "Secret \(secretNamespace)/\(target.webhook.secretName) has no key \(key) with the webhook's URL"
            }
            url = text
        } catch where error.isNotFound {
            return "Secret \(secretNamespace)/\(target.webhook.secretName) does not exist: create it in the controller's namespace with the webhook's URL under \(key)"
        } catch {
            return "cannot read Secret \(secretNamespace)/\(target.webhook.secretName): \(error.code.map { "HTTP \($0)" } ?? "the API is unreachable")"
                + (error.code == 403 ? "; the controller may read only the Secrets its Role names (the chart's notifications.secretNames)" : "")
        }
        guard url.hasPrefix("https://") || url.hasPrefix("http://") else {
            return "Secret \(secretNamespace)/\(target.webhook.secretName) key \(key) does not hold an http(s) URL"
        }
        let body = NotificationPayload.body(notification, format: target.format ?? .generic, subject: subject)
        let request = HTTPRequest(method: "POST", url: url, headers: [HTTPHeader("Content-Type", "application/json")], body: body,
                                  maximumResponseBytes: 64 * 1024, stallTimeout: timeout)
        do {
            let response = try await http.send(request)
            guard (200..<300).contains(response.status) else {
                let said = String(response.bodyText.replacingOccurrences(of: url, with: "<url>").prefix(160))
                return "the receiver answered HTTP \(response.status)" + (said.isEmpty ? "" : ": \(said)")
            }
            return nil
        } catch {
            // HTTPError's message may name the URL: only its kind is told.
            return "the receiver could not be reached (\(error.kind))"
        }
    }
}
