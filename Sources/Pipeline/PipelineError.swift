/// Every failure of a pipeline stage. A struct with an open set of kinds, so adding one
/// breaks no caller (async-http-client's pattern).
public struct PipelineError: Error, Equatable, CustomStringConvertible, Sendable {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let compression = Kind("compression")
        public static let corruptCompressedData = Kind("corrupt compressed data")
        public static let truncated = Kind("truncated")
        public static let trailingData = Kind("trailing data")
        public static let wrongKey = Kind("wrong key")
        public static let authenticationFailed = Kind("authentication failed")
        public static let chunkOutOfOrder = Kind("chunk out of order")
        public static let chunkFromAnotherStream = Kind("chunk from another backup")
        public static let invalidHeader = Kind("invalid header")
        public static let invalidKey = Kind("invalid key")
        public static let crypto = Kind("crypto library")
        /// A tar stream (a physical base backup) that is malformed or ends early.
        public static let invalidArchive = Kind("invalid tar archive")
    }

    public let kind: Kind
    /// Says what failed, where, and what to do.
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
