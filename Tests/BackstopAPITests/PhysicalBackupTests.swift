import BackstopAPI
import Testing

@Suite("WAL locations, segment names and recovery targets")
struct PhysicalBackupTests {
    @Test("LSNs read and print as PostgreSQL writes them, and name their segments")
    func locations() throws {
        let lsn = try LogSequenceNumber("1/2000028")
        #expect(lsn.value == 0x1_0200_0028)
        #expect(lsn.description == "1/2000028")
        #expect(try LogSequenceNumber("0/0") < lsn)
        for bad in ["", "0", "1/", "/1", "g/1", "123456789/0", "0/1/2"] {
            #expect(throws: BackstopAPIError.self, "\(bad)") { _ = try LogSequenceNumber(bad) }
        }
        // pg_walfile_name('1/2000028') on timeline 1 with 16 MiB segments.
        #expect(WALSegment.name(timeline: 1, segment: lsn.segmentNumber(segmentSize: 16 << 20), segmentSize: 16 << 20) == "000000010000000100000002")
        // 64 MiB segments: 64 per 4 GiB; 2/C0000000 is segment 176 = 2 × 64 + 0x30.
        #expect(WALSegment.name(timeline: 3, segment: try LogSequenceNumber("2/C0000000").segmentNumber(segmentSize: 64 << 20), segmentSize: 64 << 20) == "000000030000000200000030")
        // A range that ends exactly on a segment boundary does not need the next segment.
        #expect(WALSegment.range(timeline: 1, start: try LogSequenceNumber("0/2000028"), stop: try LogSequenceNumber("0/4000000"), segmentSize: 16 << 20)
                == ["000000010000000000000002", "000000010000000000000003"])
        #expect(WALSegment.range(timeline: 1, start: try LogSequenceNumber("0/FF000028"), stop: try LogSequenceNumber("1/00000100"), segmentSize: 16 << 20)
                == ["0000000100000000000000FF", "000000010000000100000000"])
    }

    @Test("target times: RFC 3339 with Z or an offset, kept to the digit for PostgreSQL")
    func targetTimes() throws {
        let utc = try RecoveryTime("2026-12-01T10:15:00Z")
        #expect(utc.postgresText == "2026-12-01 10:15:00+00")
        #expect(utc.secondsSince1970 == 1_796_120_100)
        let offset = try RecoveryTime("2026-12-01T11:15:00.123456+01:00")
        #expect(offset.postgresText == "2026-12-01 11:15:00.123456+01:00")
        #expect(abs(offset.secondsSince1970 - 1_796_120_100.123456) < 0.000_001)
        #expect(try RecoveryTime("2026-12-01T05:15:00-05:00").secondsSince1970 == utc.secondsSince1970)
        for bad in ["2026-12-01 10:15:00", "2026-12-01T10:15:00", "2026-12-01T10:15Z", "2026-13-01T10:15:00Z", "2026-12-01T10:15:00.Z",
                    "2026-12-01T10:15:00+1:00", "yesterday"] {
            #expect(throws: BackstopAPIError.self, "\(bad)") { _ = try RecoveryTime(bad) }
        }
        #expect(RecoveryTarget.name("before_cleanup").settings.map(\.name) == ["recovery_target_name", "recovery_target_action"])
        #expect(RecoveryTarget.endOfArchive.settings.isEmpty)
    }
}
