/// A backup's identity: UTC time to the second plus a random suffix, e.g.
/// `20261121T020000Z-3f9a`. Sorts by time as a string and is never taken twice in practice.
public struct BackupID: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    public let rawValue: String

    /// Validates the shape; use `make(at:random:)` to create new ones.
    public init(_ rawValue: String) throws(BackstopAPIError) {
        guard BackupID.isWellFormed(rawValue) else {
            throw BackstopAPIError(
                field: "backup id",
                problem: "\"\(rawValue)\" is not a backup id",
                fix: "use an id as shown by `backstop list`, like 20261121T020000Z-3f9a, or `latest`")
        }
        self.rawValue = rawValue
    }

    /// A new id for a backup started at `seconds` since 1970 (UTC).
    public static func make<R: RandomNumberGenerator>(secondsSince1970 seconds: Int64, using random: inout R) -> BackupID {
        let stamp = UTCTimestamp(secondsSince1970: seconds).compact
        let suffix = UInt16.random(in: .min ... .max, using: &random)
        let hex = String(suffix, radix: 16)
        return BackupID(unchecked: stamp + "-" + String(repeating: "0", count: 4 - hex.count) + hex)
    }

    private init(unchecked: String) { rawValue = unchecked }

    public var description: String { rawValue }

    public static func < (lhs: BackupID, rhs: BackupID) -> Bool { lhs.rawValue < rhs.rawValue }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do {
            try self.init(text)
        } catch {
            throw DecodingError.dataCorrupted(.init(
                codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    static func isWellFormed(_ text: String) -> Bool {
        // yyyyMMddTHHmmssZ-xxxx
        let bytes = Array(text.utf8)
        guard bytes.count == 21, bytes[8] == UInt8(ascii: "T"), bytes[15] == UInt8(ascii: "Z"),
              bytes[16] == UInt8(ascii: "-") else { return false }
        let digits = bytes[0..<8] + bytes[9..<15]
        let hex = bytes[17..<21]
        return digits.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
            && hex.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x66) }
    }
}
