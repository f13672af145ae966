/// A span such as `90d`, `12h`, `30m`, `2w` or `45s`: what retention rules and grace periods
/// are written in. Months and years are not durations (their length varies); bucket rules
/// (`monthly`, `yearly`) express those.
public struct RetentionDuration: Hashable, Sendable, Codable, CustomStringConvertible {
    public let seconds: Int64

    public init(seconds: Int64) { self.seconds = seconds }

    /// Parses `<number><unit>` with unit `s`, `m`, `h`, `d` or `w`.
    public init(parsing text: String, field: String) throws(BackstopAPIError) {
        let units: [Character: Int64] = ["s": 1, "m": 60, "h": 3_600, "d": 86_400, "w": 604_800]
        guard let unit = text.last, let multiplier = units[unit], let count = Int64(text.dropLast()), count >= 0,
              count <= Int64.max / multiplier else {
            throw BackstopAPIError(field: field, problem: "\"\(text)\" is not a duration",
                                   fix: "write a number and a unit: 90d, 12h, 30m, 2w or 45s")
        }
        seconds = count * multiplier
    }

    public var description: String {
        for (unit, size) in [("w", Int64(604_800)), ("d", 86_400), ("h", 3_600), ("m", 60)] where seconds >= size && seconds % size == 0 {
            return "\(seconds / size)\(unit)"
        }
        return "\(seconds)s"
    }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try RetentionDuration(parsing: text, field: decoder.codingPath.map(\.stringValue).joined(separator: "."))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
