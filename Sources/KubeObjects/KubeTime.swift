public import Foundation

/// Kubernetes' two timestamp forms: `Time` (RFC 3339, whole seconds: conditions, events,
/// creationTimestamp) and `MicroTime` (six fractional digits: Leases). Format styles are
/// values, so one per call costs nothing (an `ISO8601DateFormatter` per call is slow).
public enum KubeTime {
    public static func time(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false))
    }

    public static func microTime(_ date: Date) -> String {
        // The format style writes milliseconds; the API's MicroTime has microseconds.
        let whole = date.timeIntervalSince1970.rounded(.down)
        let micros = Int(((date.timeIntervalSince1970 - whole) * 1_000_000).rounded(.down))
        let base = Date(timeIntervalSince1970: whole).formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: false))
        return String(base.dropLast()) + "." + String(repeating: "0", count: 6 - String(micros).count) + String(micros) + "Z"
    }

    /// Either form (and any number of fractional digits); nil when it is neither.
    public static func parse(_ text: String) -> Date? {
        if let date = try? Date(text, strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: false)) { return date }
        // Fractions are read by hand: the format style accepts exactly three digits.
        guard let dot = text.firstIndex(of: "."), text.hasSuffix("Z"),
              let whole = try? Date(String(text[..<dot]) + "Z", strategy: Date.ISO8601FormatStyle(includingFractionalSeconds: false)),
              let fraction = Double("0" + text[dot..<text.index(before: text.endIndex)]) else { return nil }
        return whole.addingTimeInterval(fraction)
    }
}

/// A Kubernetes `Time` (RFC 3339, whole seconds) as a `Date`: compared and subtracted as a
/// time, written as the API writes it. An unreadable value does not decode.
public struct KubeTimestamp: Codable, Sendable, Hashable, Comparable, CustomStringConvertible {
    public let date: Date

    public init(_ date: Date) {
        // Kubernetes keeps whole seconds; so do we, so a value read back compares equal.
        self.date = Date(timeIntervalSince1970: date.timeIntervalSince1970.rounded(.down))
    }

    public init?(_ text: String) {
        guard let date = KubeTime.parse(text) else { return nil }
        self.init(date)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let date = KubeTime.parse(text) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: "\"\(text)\" is not an RFC 3339 time"))
        }
        self.init(date)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String { KubeTime.time(date) }

    public static func < (lhs: KubeTimestamp, rhs: KubeTimestamp) -> Bool { lhs.date < rhs.date }
}
