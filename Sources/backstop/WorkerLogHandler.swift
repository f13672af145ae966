import Foundation
import Logging

/// How the worker's log reads on stderr (and so in `kubectl logs`): progress as
/// `<time> <message>`; warnings and errors as `backstop: warning: …` and `backstop: error: …`,
/// the form every error line of the CLI has. Only the executable installs it.
struct WorkerLogHandler: LogHandler {
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let line: String
        switch event.level {
        case .warning:
            line = "backstop: warning: \(event.message)"
        case .error, .critical:
            line = "backstop: error: \(event.message)"
        default:
            line = "\(Date().formatted(.iso8601)) \(event.message)"
        }
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
