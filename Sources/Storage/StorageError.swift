/// Every failure of a storage backend, with the key and a hint for the fix.
public struct StorageError: Error, Equatable, CustomStringConvertible, Sendable {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let notFound = Kind("not found")
        public static let invalidKey = Kind("invalid key")
        public static let invalidLocation = Kind("invalid storage location")
        public static let io = Kind("I/O error")
        public static let permissionDenied = Kind("permission denied")
    }

    public let kind: Kind
    /// The object concerned, when there is one.
    public let key: String?
    public let message: String

    public init(_ kind: Kind, key: String?, _ message: String) {
        self.kind = kind
        self.key = key
        self.message = message
    }

    public var description: String { message }
}
