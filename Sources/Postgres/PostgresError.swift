/// Every failure of the Postgres module: connection, query or child process.
public struct PostgresError: Error, Equatable, CustomStringConvertible, Sendable {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let invalidConnectionString = Kind("invalid connection string")
        public static let connectionFailed = Kind("connection failed")
        public static let authenticationFailed = Kind("authentication failed")
        public static let queryFailed = Kind("query failed")
        public static let toolMissing = Kind("tool missing")
        public static let versionMismatch = Kind("version mismatch")
        public static let processFailed = Kind("process failed")
    }

    public let kind: Kind
    public let message: String
    /// The SQLSTATE of a failed query, e.g. `42P04` (duplicate database).
    public let sqlState: String?

    public init(_ kind: Kind, _ message: String, sqlState: String? = nil) {
        self.kind = kind
        self.message = message
        self.sqlState = sqlState
    }

    public var description: String { message }
}
