/// Every failure of an HTTP exchange below the status line: the request never got an answer.
/// An answer with any status, 500s included, is an `HTTPResponse`, not an error.
public struct HTTPError: Error, CustomStringConvertible, Sendable {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// Could not connect, or the connection broke mid-exchange: worth retrying.
        public static let connection = Kind("connection failed")
        /// The host name did not resolve: worth retrying (cluster DNS has bad moments), and
        /// worth a hint when it persists (a virtual-host bucket name, a typo).
        public static let nameResolution = Kind("name not resolved")
        /// No progress within the configured time: worth retrying.
        public static let timeout = Kind("timed out")
        /// The server's certificate was not trusted, or the handshake failed: retrying will not help.
        public static let tls = Kind("TLS failure")
        /// The request itself is malformed (URL, option): retrying will not help.
        public static let invalidRequest = Kind("invalid request")
        /// The body source or sink failed (e.g. the response was larger than allowed).
        public static let body = Kind("body failure")
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// Whether sending the same request again may succeed.
    public var isTransient: Bool { kind == .connection || kind == .timeout || kind == .nameResolution }

    public var description: String { message }
}
