/// Where a point-in-time recovery stops: PostgreSQL's `recovery_target_*` settings.
public enum RecoveryTarget: Sendable, Equatable, CustomStringConvertible {
    /// Replay all the archived WAL, then promote (no `recovery_target_*`).
    case endOfArchive
    /// Stop as soon as the base backup is consistent.
    case immediate
    case time(RecoveryTime)
    case lsn(LogSequenceNumber)
    /// A restore point made with `pg_create_restore_point`.
    case name(String)

    /// The settings for `postgresql.auto.conf`, values unquoted.
    public var settings: [(name: String, value: String)] {
        let target: [(name: String, value: String)] = switch self {
        case .endOfArchive: []
        case .immediate: [("recovery_target", "immediate")]
        case .time(let time): [("recovery_target_time", time.postgresText)]
        case .lsn(let lsn): [("recovery_target_lsn", lsn.description)]
        case .name(let name): [("recovery_target_name", name)]
        }
        return target.isEmpty ? [] : target + [("recovery_target_action", "promote")]
    }

    /// The `backstop restore --physical` options that ask for this target.
    public var arguments: [String] {
        switch self {
        case .endOfArchive: []
        case .immediate: ["--target", "immediate"]
        case .time(let time): ["--target-time", time.text]
        case .lsn(let lsn): ["--target-lsn", lsn.description]
        case .name(let name): ["--target-name", name]
        }
    }

    public var description: String {
        switch self {
        case .endOfArchive: "the end of the archive"
        case .immediate: "the end of the base backup (immediate)"
        case .time(let time): "time \(time.text)"
        case .lsn(let lsn): "LSN \(lsn)"
        case .name(let name): "restore point \"\(name)\""
        }
    }
}

extension RecoveryTarget {
    /// How the caller's input names the four ways to ask for a target (flags, or a
    /// BackupRestore's fields), so a message names what the user wrote.
    public struct Fields: Sendable {
        public let time: String, lsn: String, name: String, immediate: String
        /// Where "more than one target" is reported.
        public let all: String

        public static let commandLine = Fields(time: "--target-time", lsn: "--target-lsn", name: "--target-name", immediate: "--target immediate",
                                               all: "--target-*")
        public static let backupRestore = Fields(time: "spec.pointInTime.targetTime", lsn: "spec.pointInTime.targetLSN",
                                                 name: "spec.pointInTime.targetName", immediate: "spec.pointInTime.targetImmediate",
                                                 all: "spec.pointInTime")
    }

    /// The one target asked for, parsed; none asked for is the end of the archive.
    public static func chosen(time: String?, lsn: String?, name: String?, immediate: Bool, fields: Fields) throws(BackstopAPIError) -> RecoveryTarget {
        var targets: [RecoveryTarget] = []
        if let time {
            do { targets.append(.time(try RecoveryTime(time))) }
            catch { throw BackstopAPIError(field: fields.time, problem: error.problem, fix: error.fix) }
        }
        if let lsn {
            do { targets.append(.lsn(try LogSequenceNumber(lsn))) }
            catch { throw BackstopAPIError(field: fields.lsn, problem: error.problem, fix: error.fix) }
        }
        if let name {
            guard !name.isEmpty else { throw BackstopAPIError(field: fields.name, problem: "empty", fix: "name the restore point") }
            targets.append(.name(name))
        }
        if immediate { targets.append(.immediate) }
        guard targets.count <= 1 else {
            throw BackstopAPIError(field: fields.all, problem: "\(targets.count) recovery targets",
                                   fix: "give one of \(fields.time), \(fields.lsn), \(fields.name) and \(fields.immediate)")
        }
        return targets.first ?? .endOfArchive
    }
}

/// A recovery target time given as RFC 3339 (`2026-12-01T10:15:00Z`, `…10:15:00.25+01:00`),
/// kept to the digit for PostgreSQL (which reads `2026-12-01 10:15:00.25+01:00`) and as
/// seconds since 1970 for choosing a base backup.
public struct RecoveryTime: Sendable, Equatable {
    /// As given.
    public let text: String
    public let postgresText: String
    public let secondsSince1970: Double

    public init(_ text: String) throws(BackstopAPIError) {
        let invalid = BackstopAPIError(field: "--target-time", problem: "\"\(text)\" is not an RFC 3339 time",
                                       fix: "write it like 2026-12-01T10:15:00Z or 2026-12-01T11:15:00.5+01:00 (a zone is required)")
        let bytes = Array(text.utf8)
        guard bytes.count >= 20, bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t") || bytes[10] == UInt8(ascii: " "),
              let wallClock = UTCTimestamp(rfc3339: String(decoding: bytes[0..<10], as: UTF8.self) + "T" + String(decoding: bytes[11..<19], as: UTF8.self) + "Z")
        else { throw invalid }
        var index = 19
        var fraction = ""
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            while index < bytes.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(bytes[index]) {
                fraction.append(Character(UnicodeScalar(bytes[index])))
                index += 1
            }
            guard (1...9).contains(fraction.count) else { throw invalid }
        }
        let zone = String(decoding: bytes[index...], as: UTF8.self)
        let offsetSeconds: Int
        if zone == "Z" || zone == "z" {
            offsetSeconds = 0
        } else {
            let zoneBytes = Array(zone.utf8)
            guard zoneBytes.count == 6, zoneBytes[0] == UInt8(ascii: "+") || zoneBytes[0] == UInt8(ascii: "-"), zoneBytes[3] == UInt8(ascii: ":"),
                  let hours = Int(String(decoding: zoneBytes[1..<3], as: UTF8.self)), let minutes = Int(String(decoding: zoneBytes[4..<6], as: UTF8.self)),
                  hours < 24, minutes < 60 else { throw invalid }
            offsetSeconds = (zoneBytes[0] == UInt8(ascii: "-") ? -1 : 1) * (hours * 3600 + minutes * 60)
        }
        self.text = text
        postgresText = String(decoding: bytes[0..<10], as: UTF8.self) + " " + String(decoding: bytes[11..<19], as: UTF8.self)
            + (fraction.isEmpty ? "" : "." + fraction) + (offsetSeconds == 0 ? "+00" : zone)
        secondsSince1970 = Double(wallClock.secondsSince1970 - Int64(offsetSeconds)) + (Double("0." + fraction) ?? 0)
    }
}
