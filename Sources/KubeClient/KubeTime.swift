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
