public import Logging
public import Foundation

/// One log record per line in JSON or logfmt, for the log pipelines clusters run. Libraries
/// log through swift-log; only the controller executable installs this handler.
public struct LineLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        case json
        case logfmt
    }

    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let label: String
    let format: Format
    let write: @Sendable (String) -> Void
    let now: @Sendable () -> Date

    public init(label: String, format: Format, level: Logger.Level = .info,
                write: @escaping @Sendable (String) -> Void = LineLogHandler.standardError,
                now: @escaping @Sendable () -> Date = { Date() }) {
        self.label = label
        self.format = format
        self.logLevel = level
        self.write = write
        self.now = now
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var fields = metadata.merging(event.metadata ?? [:]) { _, new in new }.mapValues { "\($0)" }
        fields["source"] = nil
        let time = now().formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
        switch format {
        case .json:
            var object: [String: String] = fields
            object["time"] = time
            object["level"] = event.level.rawValue
            object["logger"] = label
            object["msg"] = "\(event.message)"
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            let line = (try? encoder.encode(object)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            write(line + "\n")
        case .logfmt:
            let pairs = [("time", time), ("level", event.level.rawValue), ("logger", label), ("msg", "\(event.message)")]
                + fields.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
            write(pairs.map { "\($0.0)=\(Self.logfmtValue($0.1))" }.joined(separator: " ") + "\n")
        }
    }

    /// Bare when it can be, quoted with escapes when it has spaces, quotes or `=`.
    static func logfmtValue(_ value: String) -> String {
        guard value.isEmpty || value.contains(where: { $0 == " " || $0 == "\"" || $0 == "=" || $0 == "\n" || $0 == "\\" }) else { return value }
        let escaped = value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
            .replacingOccurrences(of: "\n", with: "\\n")
        return "\"\(escaped)\""
    }

    public static let standardError: @Sendable (String) -> Void = { line in
        FileHandle.standardError.write(Data(line.utf8))
    }
}
