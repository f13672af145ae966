import BackstopAPI
import Engine
import Postgres
import Storage
import YAML

/// The one error the CLI reports. `main` prints it as one line on stderr,
/// `backstop: error: <what failed>; <what to do>`, and exits 64 for a usage error (a bad flag
/// or variable value, a file that cannot be read) or 1 for a failure at run time.
struct CommandLineError: Error {
    enum Kind {
        case usage
        case failure
    }

    let kind: Kind
    let message: String

    static func usage(_ message: String) -> CommandLineError { CommandLineError(kind: .usage, message: message) }
    static func failure(_ message: String) -> CommandLineError { CommandLineError(kind: .failure, message: message) }

    var exitCode: Int32 { kind == .usage ? 64 : 1 }

    /// Sorts another module's error: bad input is a usage error, anything else a failure.
    init(_ error: any Error) {
        switch error {
        case let error as CommandLineError:
            self = error
        case let error as EngineError:
            self.init(kind: error.kind == .invalidOption ? .usage : .failure, message: error.message)
        case let error as PostgresError:
            self.init(kind: error.kind == .invalidConnectionString ? .usage : .failure, message: error.message)
        case let error as BackstopAPIError:
            self.init(kind: .usage, message: error.description)
        case let error as YAMLError:
            self.init(kind: .usage, message: error.description)
        case let error as StorageError:
            self.init(kind: .failure, message: error.message)
        default:
            self.init(kind: .failure, message: "\(error)")
        }
    }

    private init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }
}
