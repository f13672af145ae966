/// Every failure of the Kubernetes client: configuration, transport, or an answer from the
/// API server, whose `Status` body is decoded so callers can ask `isNotFound`, `isConflict` …
public struct KubeAPIError: Error, CustomStringConvertible, Sendable {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// No usable kubeconfig or in-cluster configuration.
        public static let configuration = Kind("configuration")
        /// The request never got an answer.
        public static let transport = Kind("transport")
        /// The API server answered with an error status.
        public static let api = Kind("api")
        /// The answer could not be decoded.
        public static let decoding = Kind("decoding")
    }

    public let kind: Kind
    public let message: String
    /// HTTP status of an API answer.
    public let code: Int?
    /// `Status.reason`: NotFound, AlreadyExists, Conflict, Gone, Forbidden, Expired …
    public let reason: String?

    public init(_ kind: Kind, _ message: String, code: Int? = nil, reason: String? = nil) {
        self.kind = kind
        self.message = message
        self.code = code
        self.reason = reason
    }

    public var description: String { message }

    public var isNotFound: Bool { code == 404 }
    public var isConflict: Bool { code == 409 && reason != "AlreadyExists" }
    public var isAlreadyExists: Bool { code == 409 && reason == "AlreadyExists" }
    /// The resourceVersion asked for is too old: relist.
    public var isGone: Bool { code == 410 || reason == "Expired" || reason == "Gone" }
    public var isForbidden: Bool { code == 403 }
    /// A server-side apply named a field the server does not serve (a v1.24 server and
    /// CronJob `spec.timeZone`: a 500 that no retry will change).
    public var isUnservedField: Bool { code == 500 && message.contains("field not declared in schema") }
    public var isUnauthorized: Bool { code == 401 }
}

/// `meta/v1 Status`, the body of every error answer (and of a watch's ERROR event).
public struct KubeStatus: Codable, Sendable, Equatable {
    public var status: String?
    public var message: String?
    public var reason: String?
    public var code: Int?

    public init(status: String? = "Failure", message: String?, reason: String?, code: Int?) {
        self.status = status
        self.message = message
        self.reason = reason
        self.code = code
    }
}
