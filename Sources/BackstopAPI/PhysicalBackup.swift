/// A position in PostgreSQL's write-ahead log, written as PostgreSQL prints it (`0/3000028`:
/// the high and low 32 bits in hex).
public struct LogSequenceNumber: Comparable, Hashable, Sendable, CustomStringConvertible, Codable {
    public let value: UInt64

    public init(_ value: UInt64) { self.value = value }

    public init(_ text: String) throws(BackstopAPIError) {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false)
        guard parts.count == 2, (1...8).contains(parts[0].count), (1...8).contains(parts[1].count),
              let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16) else {
            throw BackstopAPIError(field: "LSN", problem: "\"\(text)\" is not a WAL location",
                                   fix: "write it as PostgreSQL prints it, e.g. 0/3000028 (pg_current_wal_lsn())")
        }
        value = high << 32 | low
    }

    public var description: String {
        String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.value < rhs.value }

    public init(from decoder: any Decoder) throws {
        let text = try decoder.singleValueContainer().decode(String.self)
        do { try self.init(text) } catch {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: error.description))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    /// The number of the segment holding this location.
    public func segmentNumber(segmentSize: UInt64) -> UInt64 { value / segmentSize }
}

/// WAL segment names: `TTTTTTTTXXXXXXXXYYYYYYYY`, the timeline, then the segment number split
/// at the number of segments per 4 GiB of WAL (PostgreSQL's XLogFileName).
public enum WALSegment {
    public static func name(timeline: UInt32, segment: UInt64, segmentSize: UInt64) -> String {
        let perID = 0x1_0000_0000 / segmentSize
        return hex8(UInt64(timeline)) + hex8(segment / perID) + hex8(segment % perID)
    }

    /// The segments a base backup needs replayed to become consistent: from the one holding
    /// its start to the one holding the last byte before its stop location.
    public static func range(timeline: UInt32, start: LogSequenceNumber, stop: LogSequenceNumber, segmentSize: UInt64) -> [String] {
        let first = start.segmentNumber(segmentSize: segmentSize)
        let last = max(first, (max(stop.value, 1) - 1) / segmentSize)
        return (first...last).map { name(timeline: timeline, segment: $0, segmentSize: segmentSize) }
    }

    private static func hex8(_ value: UInt64) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 8 - digits.count)) + digits
    }
}

extension BackupManifest {
    /// `dump.format` of a physical base backup: pg_basebackup's tar stream of the data directory.
    public static let baseBackupFormat = "basebackup-tar"

    /// True for a physical base backup, which `restore --physical` recovers; a logical
    /// restore refuses it.
    public var isPhysical: Bool { dump.format == Self.baseBackupFormat }

    /// What recovery needs to know about a physical base backup.
    public struct PhysicalInfo: Codable, Equatable, Sendable {
        public var timeline: UInt32
        /// Where replay starts (the backup's checkpoint redo location).
        public var startLSN: LogSequenceNumber
        /// Where the base backup ended: recovery is consistent once replay reaches it.
        public var stopLSN: LogSequenceNumber
        /// `wal_segment_size` of the cluster, in bytes.
        public var walSegmentSize: UInt64
        /// The first and last WAL segments replay needs; all were archived before the commit.
        public var firstWALSegment: String
        public var lastWALSegment: String
        /// The `backup_label` file as pg_basebackup wrote it.
        public var backupLabel: String
        /// When pg_basebackup finished, in seconds since 1970 with their fraction (a recovery
        /// target time must lie after it; targets are often seconds after a backup).
        public var stopTime: Double

        public init(timeline: UInt32, startLSN: LogSequenceNumber, stopLSN: LogSequenceNumber, walSegmentSize: UInt64,
                    backupLabel: String, stopTime: Double) {
            self.timeline = timeline
            self.startLSN = startLSN
            self.stopLSN = stopLSN
            self.walSegmentSize = walSegmentSize
            let range = WALSegment.range(timeline: timeline, start: startLSN, stop: stopLSN, segmentSize: walSegmentSize)
            firstWALSegment = range.first ?? ""
            lastWALSegment = range.last ?? ""
            self.backupLabel = backupLabel
            self.stopTime = stopTime
        }

        /// Every segment between the first and the last.
        public var walSegments: [String] {
            WALSegment.range(timeline: timeline, start: startLSN, stop: stopLSN, segmentSize: walSegmentSize)
        }
    }
}
