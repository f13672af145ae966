internal import BackstopAPI
internal import KubeClient
internal import Pipeline
internal import Postgres
internal import Storage

/// Every failure of a worker command: one line that says what failed and what to do,
/// with the underlying error kept.
public struct EngineError: Error, CustomStringConvertible, Sendable {
    public struct Kind: Hashable, Sendable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        public static let invalidOption = Kind("invalid option")
        public static let notFound = Kind("not found")
        public static let database = Kind("database")
        public static let storage = Kind("storage")
        public static let dumpFailed = Kind("dump failed")
        public static let integrity = Kind("integrity")
        public static let restoreFailed = Kind("restore failed")
        public static let interrupted = Kind("interrupted")
        public static let encryption = Kind("encryption")
        /// Another run holds the environment's lease.
        public static let busy = Kind("busy")
        /// What is stored already says otherwise (a hold with another reason).
        public static let conflict = Kind("conflict")
        /// The Kubernetes API refused or could not be reached (Secrets and ConfigMaps).
        public static let kubernetes = Kind("kubernetes")
    }

    public let kind: Kind
    public let message: String
    public let underlying: (any Error & Sendable)?

    public init(_ kind: Kind, _ message: String, underlying: (any Error & Sendable)? = nil) {
        self.kind = kind
        self.message = message
        self.underlying = underlying
    }

    public var description: String { message }

    /// Wraps an error from another module, keeping its own message (they already name the fix).
    static func wrapping(_ error: any Error, context: String? = nil) -> EngineError {
        let prefix = context.map { "\($0): " } ?? ""
        switch error {
        case let error as EngineError:
            return error
        case let error as StorageError:
            return EngineError(error.kind == .notFound ? .notFound : .storage, prefix + error.message, underlying: error)
        case let error as PostgresError:
            return EngineError(.database, prefix + error.message, underlying: error)
        case let error as PipelineError:
            let kind: Kind = error.kind == .wrongKey || error.kind == .invalidKey ? .encryption : .integrity
            return EngineError(kind, prefix + error.message, underlying: error)
        case let error as KubeAPIError:
            return EngineError(.kubernetes, prefix + error.message, underlying: error)
        case let error as BackstopAPIError:
            return EngineError(.invalidOption, prefix + error.description, underlying: error)
        case is CancellationError:
            return EngineError(.interrupted, prefix + "interrupted (SIGTERM or SIGINT)")
        case is DecodingError:
            return EngineError(.integrity, prefix + describeDecoding(error, document: "the document"))
        default:
            return EngineError(.storage, prefix + "\(error)")
        }
    }

    /// What a JSON decoder's failure means, in words: the field and what was expected, never
    /// the decoder's internals.
    static func describeDecoding(_ error: any Error, document: String) -> String {
        guard let error = error as? DecodingError else { return "\(document) is not valid JSON" }
        let problem = BackstopAPIError(decoding: error, document: document)
        return "\(problem.field): \(problem.problem)"
    }
}
