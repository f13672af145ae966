internal import Foundation
public import KubeClient
public import KubeObjects

/// A Kubernetes API server for tests, on loopback: generic storage for the built-in kinds the
/// controller uses and for any kind a CustomResourceDefinition registers, with the semantics
/// controllers depend on — one global resourceVersion, 409 on stale writes, 410 for watches
/// from compacted versions, watch streams with bookmarks, the status subresource, finalizers,
/// owner references with cascading delete, bearer-token auth — and knobs to inject faults.
/// What it does not do is listed in README.md beside this file.
public final class TestAPIServer: Sendable {
    public let token: String
    private let store: ObjectStore
    private let server: LoopbackHTTPServer

    public var port: Int { server.port }
    public var url: String { "http://127.0.0.1:\(server.port)" }

    /// `token` is the administrator's (group `system:masters`: RBAC allows it everything);
    /// `allowAnonymous` serves requests without a token as the administrator's too: kubectl
    /// sends no bearer token over plain http, and this server has no TLS. `version` is the
    /// release it answers as (`.v1_24` drops CronJob time zones, as the recordings show).
    public init(token: String = "test-token", allowAnonymous: Bool = false, version: KubernetesVersion = .v1_32) throws {
        let store = ObjectStore(version: version)
        store.register(token: token, for: .admin)
        self.store = store
        self.token = token
        server = try LoopbackHTTPServer { request in
            TestAPIServer.handle(request, store: store, anonymous: allowAnonymous ? .admin : nil)
        }
        store.setServerURL(url)
    }

    /// A token for a ServiceAccount: its requests are allowed only as far as the Roles,
    /// ClusterRoles and bindings stored here say (apply `k8s/rbac.yaml` first), and refused
    /// with the real server's 403 otherwise.
    public func token(forServiceAccount name: String, namespace: String) -> String {
        let token = "sa-\(namespace)-\(name)-\(UUID().uuidString.prefix(8))"
        store.register(token: token, for: .serviceAccount(namespace: namespace, name: name))
        return token
    }

    public func stop() { server.stop() }

    /// A connection to this server for `KubeClient`.
    public func connection(namespace: String = "default", token: String? = nil) -> KubeConnection {
        KubeConnection(server: url, namespace: namespace, token: .fixed(token ?? self.token))
    }

    /// Writes a kubeconfig for this server (token auth, `namespace` as the default) to a new
    /// temporary file, for a process under test; the caller removes it.
    public func writeKubeconfig(namespace: String, token: String? = nil) throws -> String {
        try Self.writeKubeconfig(server: url, token: token ?? self.token, namespace: namespace)
    }

    /// The same for a server known by URL and token (`kube-test-server` in another process).
    public static func writeKubeconfig(server: String, token: String, namespace: String) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("kubeconfig-\(UUID().uuidString)").path
        try """
            apiVersion: v1
            kind: Config
            current-context: test
            clusters: [{name: test, cluster: {server: "\(server)"}}]
            users: [{name: test, user: {token: \(token)}}]
            contexts: [{name: test, context: {cluster: test, user: test, namespace: \(namespace)}}]
            """.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    // MARK: Fault knobs

    /// Cuts every open connection: watches end with a transport error.
    public func dropConnections() { server.dropConnections() }
    /// Forgets history: any watch from a resourceVersion older than now gets 410 Gone.
    public func expireResourceVersions() { store.compact() }
    /// The next `count` requests are answered with `status` (429 or 500) before being looked at.
    public func failNextRequests(_ count: Int, status: Int, retryAfterSeconds: Int? = nil) {
        store.setFailures(count: count, status: status, retryAfter: retryAfterSeconds)
    }
    /// Every answer waits this long first.
    public func setLatency(_ latency: Duration) { store.setLatency(latency) }
    /// How often an idle watch that asked for bookmarks gets one.
    public func setBookmarkInterval(_ interval: Duration) { store.setBookmarkInterval(interval) }

    /// Runs every Job created from now on (nil: Jobs stay as created, as with no nodes).
    public func setJobRunner(_ runner: JobRunner?) { store.setJobRunner(runner) }

    /// Creates a Job from the CronJob's template now, as a schedule would; returns its name.
    public func triggerCronJob(namespace: String, name: String) throws -> String {
        try store.triggerCronJob(namespace: namespace, name: name).get()
    }

    /// The stored object, for assertions.
    public func object(_ type: ResourceType, namespace: String?, name: String) -> JSONValue? {
        store.get(ObjectStore.Key(resource: ObjectStore.resourceID(type), namespace: type.namespaced ? namespace : nil, name: name))
    }

    public var currentResourceVersion: Int { store.currentVersion }

    // MARK: Routing

    static func handle(_ request: LoopbackHTTPServer.Request, store: ObjectStore, anonymous: APIUser?) -> LoopbackHTTPServer.Response {
        store.applyLatency()
        let presented = request.headers["authorization"].flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
        guard let user = presented.flatMap(store.user(forToken:)) ?? (presented == nil ? anonymous : nil) else {
            return status(401, "Unauthorized", "Unauthorized")
        }
        if let injected = store.takeFailure() {
            return status(injected, injected == 429 ? "TooManyRequests" : "InternalError", "injected by the test")
        }
        let segments = request.path.split(separator: "/").map(String.init)
        switch segments.first {
        case "version":
            return json(200, store.version.document)
        case "api", "apis":
            return store.route(request, segments: segments, user: user)
        default:
            return status(404, "NotFound", "the server could not find the requested resource")
        }
    }

    static func json(_ code: Int, _ value: JSONValue) -> LoopbackHTTPServer.Response {
        .full(status: code, contentType: "application/json", body: [UInt8](value.encoded()))
    }

    static func status(_ code: Int, _ reason: String, _ message: String) -> LoopbackHTTPServer.Response {
        json(code, statusObject(code, reason, message))
    }

    static func statusObject(_ code: Int, _ reason: String, _ message: String) -> JSONValue {
        .object(["kind": .string("Status"), "apiVersion": .string("v1"), "metadata": .object([:]), "status": .string("Failure"),
                 "message": .string(message), "reason": .string(reason), "code": .number(Double(code))])
    }
}
