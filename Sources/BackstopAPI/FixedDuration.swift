/// A span of fixed length such as `1h`, `30m`, `90d`, `2w` or `45s`: what `minAge`, grace
/// periods and recovery objectives are written in. `m` is minutes here, as in Kubernetes and Go
/// (`min` is accepted too). Months and years have no fixed length and are refused; retention
/// windows, which count them as restic does, are `CalendarDuration`s.
public struct FixedDuration: Hashable, Sendable, TextCodedValue {
    public let seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    static let units: [String: Int64] = ["s": 1, "m": 60, "min": 60, "h": 3_600, "d": 86_400, "w": 604_800]

    /// Parses `<number><unit>` with unit `s`, `m` or `min` (minutes), `h`, `d` or `w`.
    public init(parsing text: String, field: String) throws(BackstopAPIError) {
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let unit = String(text.dropFirst(digits.count))
        if unit == "mo" || unit == "y" {
            throw BackstopAPIError(field: field, problem: "\"\(text)\" is in \(unit == "y" ? "years" : "months"), which have no fixed length",
                                   fix: "write it in days or weeks, e.g. 180d or 26w")
        }
        guard !digits.isEmpty, let multiplier = Self.units[unit], let count = Int64(digits), count <= Int64.max / multiplier else {
            throw BackstopAPIError(field: field, problem: "\"\(text)\" is not a duration",
                                   fix: "write a number and a unit: 45s, 30m (minutes), 12h, 90d or 2w")
        }
        seconds = count * multiplier
    }

    public var description: String {
        for (unit, size) in [("w", Int64(604_800)), ("d", 86_400), ("h", 3_600), ("m", 60)] where seconds >= size && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }
}
