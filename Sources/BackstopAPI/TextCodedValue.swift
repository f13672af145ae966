/// A value a policy writes as text (`90d`, `6mo`): decoded by parsing, so a bad value's error
/// names its field and the fix; encoded as its canonical text.
public protocol TextCodedValue: Codable, CustomStringConvertible {
    init(parsing text: String, field: String) throws(BackstopAPIError)
}

extension TextCodedValue {
    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        self = try Self(parsing: text, field: decoder.codingPath.map(\.stringValue).joined(separator: "."))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }
}
