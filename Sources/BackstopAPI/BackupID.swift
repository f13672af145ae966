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

    /// A new id for a backup started at `seconds` since 1970 (UTC), always above `newest` (the
    /// newest existing id): in the same second the suffix is drawn above its suffix, and a clock
    /// that went backwards borrows the newest id's second. So ids sort in the order backups were taken.
    public static func make<R: RandomNumberGenerator>(
        secondsSince1970 seconds: Int64, after newest: BackupID? = nil, using random: inout R
    ) -> BackupID {
        var seconds = seconds
        var lowest: UInt16 = 0
        if let newest, let newestSeconds = newest.secondsSince1970, newestSeconds >= seconds {
            seconds = newestSeconds
            if newest.suffix == .max {
                seconds += 1
            } else {
                lowest = newest.suffix + 1
            }
        }
        let stamp = UTCTimestamp(secondsSince1970: seconds).compact
        let hex = String(UInt16.random(in: lowest ... .max, using: &random), radix: 16)
        return BackupID(unchecked: stamp + "-" + String(repeating: "0", count: 4 - hex.count) + hex)
    }

    /// The time part.
    public var secondsSince1970: Int64? {
        let digits = Array(rawValue.utf8)
        func part(_ range: Range<Int>) -> String { String(decoding: digits[range], as: UTF8.self) }
        let civil = "\(part(0..<4))-\(part(4..<6))-\(part(6..<8))T\(part(9..<11)):\(part(11..<13)):\(part(13..<15))Z"
        return UTCTimestamp(rfc3339: civil)?.secondsSince1970
    }

    var suffix: UInt16 { UInt16(rawValue.suffix(4), radix: 16) ?? 0 }

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
