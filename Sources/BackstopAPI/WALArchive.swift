/// The name of a file PostgreSQL archives: a WAL segment (`000000010000000000000003`), a
/// timeline history (`00000002.history`), a backup history (`…03.00000028.backup`) or a
/// partial segment (`…03.partial`). Anything else is refused: it would become a storage key.
public struct WALFileName: Hashable, Sendable, CustomStringConvertible {
    public let rawValue: String

    public init(_ rawValue: String) throws(BackstopAPIError) {
        guard Self.isWellFormed(rawValue) else {
            throw BackstopAPIError(field: "WAL file name", problem: "\"\(rawValue)\" is not a WAL segment, .history, .backup or .partial file name",
                                   fix: "pass %p (wal-push) or %f (wal-fetch) as PostgreSQL substitutes them, e.g. 000000010000000000000003")
        }
        self.rawValue = rawValue
    }

    /// The timeline, the name's first eight hex digits.
    public var timeline: String { String(rawValue.prefix(8)) }
    public var description: String { rawValue }

    static func isWellFormed(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        func hex(_ range: Range<Int>) -> Bool {
            range.upperBound <= bytes.count && bytes[range].allSatisfy { (0x30...0x39).contains($0) || (0x41...0x46).contains($0) }
        }
        guard hex(0..<8) else { return false }
        let rest = String(decoding: bytes[8...], as: UTF8.self)
        if rest == ".history" { return true }
        guard hex(8..<24) else { return false }
        let suffix = String(decoding: bytes[24...], as: UTF8.self)
        if suffix.isEmpty || suffix == ".partial" { return true }
        // `.XXXXXXXX.backup`: the offset of the backup's start in the segment.
        return suffix.utf8.count == 16 && suffix.hasPrefix(".") && suffix.hasSuffix(".backup") && hex(25..<33)
    }
}

/// `<file>.json` beside an archived WAL file: written after the file, with create-if-absent,
/// so it is the commit point. Identity is the plaintext's: the stored bytes differ on every
/// push when encrypted.
public struct WALRecord: Codable, Equatable, Sendable {
    public var formatVersion = 1
    public var fileName: String
    public var plaintextSize: Int64
    public var plaintextSHA256: String
    public var storedSize: Int64
    public var storedSHA256: String
    public var compression: BackupManifest.CompressionInfo
    public var encryption: BackupManifest.EncryptionInfo?
    public var archivedAt: UTCTimestamp
    public var toolVersion: String

    public init(fileName: String, plaintextSize: Int64, plaintextSHA256: String, storedSize: Int64, storedSHA256: String,
                compression: BackupManifest.CompressionInfo, encryption: BackupManifest.EncryptionInfo?, archivedAt: UTCTimestamp,
                toolVersion: String) {
        self.fileName = fileName
        self.plaintextSize = plaintextSize
        self.plaintextSHA256 = plaintextSHA256
        self.storedSize = storedSize
        self.storedSHA256 = storedSHA256
        self.compression = compression
        self.encryption = encryption
        self.archivedAt = archivedAt
        self.toolVersion = toolVersion
    }
}
