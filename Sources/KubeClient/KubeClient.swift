public import KubeObjects
internal import BlockingCalls
internal import Foundation
internal import HTTP
internal import Synchronization

/// Typed access to the Kubernetes API over libcurl. Every call runs its blocking transfer on
/// a thread of its own; 429 and 5xx answers are retried with backoff, honouring Retry-After.
public final class KubeClient: Sendable {
    public let connection: KubeConnection
    let http: HTTPClient
    private let tokenCache = Mutex<(token: String, readAt: Date)?>(nil)
    let maximumAttempts: Int

    public init(connection: KubeConnection, maximumAttempts: Int = 5) throws(KubeAPIError) {
        var configuration = HTTPClient.Configuration(caFile: connection.caFile, userAgent: "backstop-controller")
        configuration.caPEM = connection.caPEM
        configuration.clientCertificate = connection.clientCertificatePEM.map { .pem($0) } ?? connection.clientCertificateFile.map { .file($0) }
        configuration.clientKey = connection.clientKeyPEM.map { .pem($0) } ?? connection.clientKeyFile.map { .file($0) }
        configuration.insecureSkipTLSVerify = connection.insecureSkipTLSVerify
        do { http = try HTTPClient(configuration: configuration) }
        catch { throw KubeAPIError(.configuration, error.message) }
        self.connection = connection
        self.maximumAttempts = maximumAttempts
    }

    public enum Patch: Sendable {
        /// `application/merge-patch+json`
        case merge(JSONValue)
        /// `application/strategic-merge-patch+json` (built-in kinds only): lists with a merge
        /// key merge element by element.
        case strategicMerge(JSONValue)
        /// `application/json-patch+json`: a list of operations (start with `test` to guard).
        case json([JSONValue])
        /// Server-side apply: the whole intended object, owned by `fieldManager`.
        case apply(JSONValue, fieldManager: String, force: Bool)
    }

    public enum Propagation: String, Sendable {
        case background = "Background"
        case foreground = "Foreground"
        case orphan = "Orphan"
    }

    /// A page of a list: the items, the collection's resourceVersion (where a watch starts),
    /// and the token for the next page.
    public struct ListPage<Item: Decodable & Sendable>: Decodable, Sendable, FastListPage {
        public struct Metadata: Decodable, Sendable {
            public let resourceVersion: String?
            public let `continue`: String?
        }
        public let items: [Item]
        public let metadata: Metadata

        static var unreadItemFields: [[String]] { (Item.self as? any JSONValueDecodable.Type)?.unreadFields ?? [] }

        /// Items that read themselves from parsed JSON are read so; the page is then read
        /// without `Decodable` too.
        init?(fast json: JSONValue) throws {
            guard Item.self is any JSONValueDecodable.Type || Item.self == JSONValue.self else { return nil }
            var items: [Item] = []
            for (index, item) in (json["items"]?.array ?? []).enumerated() {
                do {
                    guard let value = try KubeClient.fastDecode(Item.self, item) else { return nil }
                    items.append(value)
                } catch {
                    throw JSONValue.ShapeError(field: "items[\(index)].\(error)", expected: "an object")
                }
            }
            self.items = items
            metadata = Metadata(resourceVersion: json[path: "metadata.resourceVersion"]?.string, continue: json[path: "metadata.continue"]?.string)
        }
    }

    // MARK: Verbs

    public func get<T: Decodable & Sendable>(_ type: ResourceType, namespace: String? = nil, name: String,
                                             as: T.Type = T.self) async throws(KubeAPIError) -> T {
        try decode(T.self, try await send("GET", path: type.path(namespace: namespace ?? connection.namespace, name: name)))
    }

    public func list<T: Decodable & Sendable>(_ type: ResourceType, namespace: String? = nil, labelSelector: String? = nil,
                                              fieldSelector: String? = nil, limit: Int? = nil, continueToken: String? = nil,
                                              as: T.Type = T.self) async throws(KubeAPIError) -> ListPage<T> {
        var query: [(String, String)] = []
        if let labelSelector { query.append(("labelSelector", labelSelector)) }
        if let fieldSelector { query.append(("fieldSelector", fieldSelector)) }
        if let limit { query.append(("limit", "\(limit)")) }
        if let continueToken { query.append(("continue", continueToken)) }
        return try decode(ListPage<T>.self, try await send("GET", path: type.path(namespace: namespace), query: query))
    }

    /// Every page, and the resourceVersion of the first (a consistent snapshot to watch from).
    public func listAll<T: Decodable & Sendable>(_ type: ResourceType, namespace: String? = nil, labelSelector: String? = nil,
                                                 pageSize: Int = 500, as: T.Type = T.self) async throws(KubeAPIError) -> (items: [T], resourceVersion: String) {
        var items: [T] = []
        var token: String?
        var version = ""
        repeat {
            let page = try await list(type, namespace: namespace, labelSelector: labelSelector, limit: pageSize, continueToken: token, as: T.self)
            items += page.items
            if token == nil { version = page.metadata.resourceVersion ?? "" }
            token = page.metadata.continue.flatMap { $0.isEmpty ? nil : $0 }
        } while token != nil
        return (items, version)
    }

    public func create<T: Codable & Sendable>(_ type: ResourceType, namespace: String? = nil, _ object: T) async throws(KubeAPIError) -> T {
        try await create(type, namespace: namespace, object, as: T.self)
    }

    /// POST, the answer read as `T` (e.g. `Acknowledgement` when it is not needed).
    public func create<Body: Encodable & Sendable, T: Decodable & Sendable>(_ type: ResourceType, namespace: String? = nil, _ object: Body,
                                                                           as: T.Type) async throws(KubeAPIError) -> T {
        try decode(T.self, try await send("POST", path: type.path(namespace: namespace ?? connection.namespace), body: try encode(object)))
    }

    /// PUT: fails with a conflict when `object`'s resourceVersion is stale.
    public func update<T: Codable & Sendable>(_ type: ResourceType, namespace: String? = nil, name: String, _ object: T) async throws(KubeAPIError) -> T {
        try decode(T.self, try await send("PUT", path: type.path(namespace: namespace ?? connection.namespace, name: name), body: try encode(object)))
    }

    /// PUT to the status subresource: spec changes in `object` are ignored by the server.
    public func updateStatus<T: Codable & Sendable>(_ type: ResourceType, namespace: String? = nil, name: String, _ object: T) async throws(KubeAPIError) -> T {
        try decode(T.self, try await send("PUT", path: type.path(namespace: namespace ?? connection.namespace, name: name, subresource: "status"),
                                          body: try encode(object)))
    }

    public func patch<T: Decodable & Sendable>(_ type: ResourceType, namespace: String? = nil, name: String, _ patch: Patch,
                                               subresource: String? = nil, as: T.Type = T.self) async throws(KubeAPIError) -> T {
        let contentType: String
        let body: Data
        var query: [(String, String)] = []
        switch patch {
        case .merge(let value):
            contentType = "application/merge-patch+json"
            body = value.encoded()
        case .strategicMerge(let value):
            contentType = "application/strategic-merge-patch+json"
            body = value.encoded()
        case .json(let operations):
            contentType = "application/json-patch+json"
            body = JSONValue.array(operations).encoded()
        case .apply(let value, let manager, let force):
            contentType = "application/apply-patch+yaml"  // JSON is YAML
            body = value.encoded()
            query = [("fieldManager", manager)] + (force ? [("force", "true")] : [])
        }
        return try decode(T.self, try await send("PATCH", path: type.path(namespace: namespace ?? connection.namespace, name: name, subresource: subresource),
                                                 query: query, body: body, contentType: contentType))
    }

    /// `/version`: which Kubernetes release the server is, e.g. to know which fields it serves.
    public func serverVersion() async throws(KubeAPIError) -> ServerVersion {
        try decode(ServerVersion.self, try await send("GET", path: "/version"))
    }

    public func delete(_ type: ResourceType, namespace: String? = nil, name: String,
                       propagation: Propagation? = nil) async throws(KubeAPIError) {
        let body = propagation.map { JSONValue.object(["kind": .string("DeleteOptions"), "apiVersion": .string("v1"),
                                                       "propagationPolicy": .string($0.rawValue)]).encoded() }
        _ = try await send("DELETE", path: type.path(namespace: namespace ?? connection.namespace, name: name), body: body)
    }

    // MARK: Requests

    func url(_ path: String, query: [(String, String)]) -> String {
        let encoded = query.map { "\(PercentEncoding.encode($0.0))=\(PercentEncoding.encode($0.1))" }.joined(separator: "&")
        return connection.server + path + (encoded.isEmpty ? "" : "?" + encoded)
    }

    func headers(contentType: String?) throws(KubeAPIError) -> [HTTPHeader] {
        var headers = [HTTPHeader("Accept", "application/json")]
        if let contentType { headers.append(HTTPHeader("Content-Type", contentType)) }
        if let token = try bearerToken() { headers.append(HTTPHeader("Authorization", "Bearer \(token)")) }
        return headers
    }

    /// The token, re-read from its file at most once a minute (service-account tokens rotate).
    private func bearerToken() throws(KubeAPIError) -> String? {
        switch connection.token {
        case nil: return nil
        case .fixed(let token): return token
        case .file(let path):
            if let cached = tokenCache.withLock({ $0 }), Date().timeIntervalSince(cached.readAt) < 60 { return cached.token }
            guard let data = FileManager.default.contents(atPath: path) else {
                throw KubeAPIError(.configuration, "cannot read the token file \(path)")
            }
            let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            tokenCache.withLock { $0 = (token, Date()) }
            return token
        }
    }

    /// One request with retries on 429 and 5xx (Retry-After honoured) and on lost connections.
    func send(_ method: String, path: String, query: [(String, String)] = [], body: Data? = nil,
              contentType: String? = "application/json") async throws(KubeAPIError) -> Data {
        let request = HTTPRequest(method: method, url: url(path, query: query),
                                  headers: try headers(contentType: body == nil ? nil : contentType), body: body.map { [UInt8]($0) } ?? [])
        var attempt = 0
        while true {
            attempt += 1
            let response: HTTPResponse
            do {
                response = try await http.send(request)
            } catch {
                guard error.isTransient, attempt < maximumAttempts else {
                    throw KubeAPIError(.transport, "\(method) \(path): \(error.message)")
                }
                try await Self.pause(attempt: attempt, retryAfter: nil)
                continue
            }
            if (200..<300).contains(response.status) { return Data(response.body) }
            let failure = Self.apiError(status: response.status, body: response.body, what: "\(method) \(path)")
            guard response.status == 429 || response.status >= 500, !failure.isUnservedField, attempt < maximumAttempts else { throw failure }
            try await Self.pause(attempt: attempt, retryAfter: response[header: "retry-after"].flatMap(Double.init))
        }
    }

    /// 0.1–0.2 s, 0.2–0.4 s … at most 5 s between attempts, unless the server says.
    static let retryBackoff = Backoff(base: .milliseconds(100), cap: .seconds(5))

    static func pause(attempt: Int, retryAfter: Double?) async throws(KubeAPIError) {
        let delay = retryAfter.map { Duration.milliseconds(Int(min($0, 60) * 1000)) } ?? retryBackoff.delay(afterFailures: attempt - 1)
        do { try await Task.sleep(for: delay) }
        catch { throw KubeAPIError(.transport, "cancelled while waiting to retry") }
    }

    static func apiError(status: Int, body: [UInt8], what: String) -> KubeAPIError {
        let decoded = try? JSONDecoder().decode(KubeStatus.self, from: Data(body))
        let message = decoded?.message ?? String(decoding: body.prefix(300), as: UTF8.self)
        return KubeAPIError(.api, "\(what): \(status) \(decoded?.reason ?? ""): \(message)", code: decoded?.code ?? status, reason: decoded?.reason)
    }

    func decode<T: Decodable>(_ type: T.Type, _ data: Data) throws(KubeAPIError) -> T {
        // Untyped answers, and types that read themselves from parsed JSON, skip `JSONDecoder`
        // (see `JSONValueDecodable`); lists of them too.
        if T.self == JSONValue.self || T.self is any JSONValueDecodable.Type || T.self is any FastListPage.Type {
            do {
                if let value = try Self.fastDecode(T.self, JSONValue.decode(data, skipping: Self.unreadFields(of: T.self))) { return value }
            } catch {
                throw KubeAPIError(.decoding, "cannot decode \(T.self) from the API's answer: \(error)")
            }
        }
        do { return try JSONDecoder().decode(T.self, from: data) }
        catch { throw KubeAPIError(.decoding, "cannot decode \(T.self) from the API's answer: \(error)") }
    }

    /// What a type never reads, as paths in its JSON (a list's items' under `items.*`).
    static func unreadFields<T>(of type: T.Type, under prefix: [String] = []) -> [[String]] {
        if let readable = T.self as? any JSONValueDecodable.Type { return readable.unreadFields.map { prefix + $0 } }
        if let page = T.self as? any FastListPage.Type { return page.unreadItemFields.map { prefix + ["items", "*"] + $0 } }
        return []
    }

    /// `json` as `T` without `Decodable`, when `T` allows; nil otherwise.
    static func fastDecode<T>(_ type: T.Type, _ json: JSONValue) throws -> T? {
        if let value = json as? T { return value }
        if let readable = T.self as? any JSONValueDecodable.Type { return try readable.init(json: json) as? T }
        if let page = T.self as? any FastListPage.Type { return try page.init(fast: json) as? T }
        return nil
    }

    func encode<T: Encodable>(_ value: T) throws(KubeAPIError) -> Data {
        do { return try JSONEncoder().encode(value) }
        catch { throw KubeAPIError(.decoding, "cannot encode \(T.self): \(error)") }
    }
}
