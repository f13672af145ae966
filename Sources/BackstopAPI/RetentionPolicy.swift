public import Foundation

/// Which backups of one environment to keep, in restic's terms: a backup is kept when any keep
/// rule selects it, or when it is protected (younger than `minAge`, on hold, or the newest
/// verified backup). Everything else is deleted. Pure: the caller supplies the backups, the
/// holds and the clock.
public struct RetentionPolicy: Sendable, Codable, Equatable {
    public struct Keep: Sendable, Codable, Equatable {
        /// Every backup younger than this.
        public var within: RetentionDuration?
        /// The newest N backups.
        public var last: Int?
        /// The newest backup in each of the newest N hours, days, ISO weeks, months, years
        /// that have a backup, in the policy's time zone.
        public var hourly: Int?
        public var daily: Int?
        public var weekly: Int?
        public var monthly: Int?
        public var yearly: Int?

        public init(within: RetentionDuration? = nil, last: Int? = nil, hourly: Int? = nil, daily: Int? = nil,
                    weekly: Int? = nil, monthly: Int? = nil, yearly: Int? = nil) {
            self.within = within
            self.last = last
            self.hourly = hourly
            self.daily = daily
            self.weekly = weekly
            self.monthly = monthly
            self.yearly = yearly
        }

        var isEmpty: Bool { self == Keep() }
    }

    public var keep: Keep
    public var minAge: RetentionDuration
    /// IANA name, e.g. `Europe/Berlin`; buckets (days, weeks …) are counted in it.
    public var timeZone: String

    public static let defaultMinAge = RetentionDuration(seconds: 3_600)

    public init(keep: Keep, minAge: RetentionDuration = defaultMinAge, timeZone: String = "Etc/UTC") {
        self.keep = keep
        self.minAge = minAge
        self.timeZone = timeZone
    }

    /// A retention without any keep rule would delete everything: it is refused, never read
    /// as "delete all".
    public func validate() throws(BackstopAPIError) {
        if keep.isEmpty {
            throw BackstopAPIError(field: "retention.keep", problem: "no keep rule is set, which would delete every backup",
                                   fix: "set at least one of within, last, hourly, daily, weekly, monthly, yearly (e.g. --keep-daily 7)")
        }
        for (name, value) in [("last", keep.last), ("hourly", keep.hourly), ("daily", keep.daily), ("weekly", keep.weekly),
                              ("monthly", keep.monthly), ("yearly", keep.yearly)] {
            if let value, value < 0 {
                throw BackstopAPIError(field: "retention.keep.\(name)", problem: "\(value) is negative", fix: "use 0 or more")
            }
        }
        if TimeZone(identifier: timeZone) == nil {
            throw BackstopAPIError(field: "retention.timeZone", problem: "\"\(timeZone)\" is not a time zone",
                                   fix: "use an IANA name such as Etc/UTC or Europe/Berlin")
        }
    }

    /// One backup as retention sees it.
    public struct Candidate: Sendable, Equatable {
        public var id: BackupID
        /// When the backup was taken (its snapshot): what buckets and ages are computed from.
        public var time: Date
        public var verified: Bool
        public var held: Bool

        public init(id: BackupID, time: Date, verified: Bool, held: Bool) {
            self.id = id
            self.time = time
            self.verified = verified
            self.held = held
        }
    }

    public struct Decision: Sendable, Equatable {
        public var id: BackupID
        public var keep: Bool
        /// Why: every rule that keeps it, or why none does.
        public var reasons: [String]

        public var summary: String { (keep ? "kept: " : "deleted: ") + reasons.joined(separator: ", ") }
    }

    enum Bucket: String, CaseIterable {
        case hourly, daily, weekly, monthly, yearly
    }

    /// Decisions for `backups`, newest first. The policy must be valid.
    public func evaluate(_ backups: [Candidate], now: Date) -> [Decision] {
        let ordered = backups.sorted { $0.time != $1.time ? $0.time > $1.time : $0.id > $1.id }
        var reasons = Array(repeating: [String](), count: ordered.count)

        if let within = keep.within {
            for (index, backup) in ordered.enumerated() where now.timeIntervalSince(backup.time) < Double(within.seconds) {
                reasons[index].append("within \(within)")
            }
        }
        if let last = keep.last {
            for index in ordered.indices.prefix(last) { reasons[index].append("last \(index + 1) of \(last)") }
        }
        var calendar = Calendar(identifier: .iso8601)
        // validate() rejects unknown zones; GMT stands in if an unvalidated policy gets here.
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        var keptKeys: [Bucket: [String]] = [:]
        for bucket in Bucket.allCases {
            guard let count = count(of: bucket), count > 0 else { continue }
            var seen: [String] = []
            for (index, backup) in ordered.enumerated() {
                let key = Self.key(of: backup.time, in: bucket, calendar: calendar)
                if seen.last == key { continue }  // a newer backup already holds this bucket
                guard seen.count < count else { break }
                seen.append(key)
                reasons[index].append("\(bucket.rawValue) \(key)")
            }
            keptKeys[bucket] = seen
        }

        let newestVerified = ordered.firstIndex { $0.verified }
        return ordered.enumerated().map { index, backup in
            var why = reasons[index]
            if now.timeIntervalSince(backup.time) < Double(minAge.seconds) { why.append("younger than minAge \(minAge)") }
            if backup.held { why.append("on hold") }
            if index == newestVerified { why.append("newest verified backup") }
            if !why.isEmpty { return Decision(id: backup.id, keep: true, reasons: why) }
            var explanation = ["no rule keeps it"]
            for bucket in Bucket.allCases {
                guard let kept = keptKeys[bucket], let oldest = kept.last else { continue }
                let key = Self.key(of: backup.time, in: bucket, calendar: calendar)
                // Keys are visited newest first, so the kept ones are in descending order.
                explanation.append(key >= oldest ? "\(bucket.rawValue) \(key) is kept by a newer backup"
                                                 : "\(bucket.rawValue) \(key) is older than the newest \(kept.count) kept (\(oldest))")
            }
            if let within = keep.within { explanation.append("older than \(within)") }
            if let last = keep.last { explanation.append("not among the newest \(last)") }
            return Decision(id: backup.id, keep: false, reasons: explanation)
        }
    }

    private func count(of bucket: Bucket) -> Int? {
        switch bucket {
        case .hourly: keep.hourly
        case .daily: keep.daily
        case .weekly: keep.weekly
        case .monthly: keep.monthly
        case .yearly: keep.yearly
        }
    }

    /// The bucket a time falls in, as a readable key: `2026-11-20T14`, `2026-11-20`, `2026-W47`
    /// (ISO week-numbering year), `2026-11`, `2026`.
    static func key(of time: Date, in bucket: Bucket, calendar: Calendar) -> String {
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .yearForWeekOfYear, .weekOfYear], from: time)
        let year = parts.year ?? 0, month = parts.month ?? 0, day = parts.day ?? 0, hour = parts.hour ?? 0
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        switch bucket {
        case .hourly: return "\(year)-\(two(month))-\(two(day))T\(two(hour))"
        case .daily: return "\(year)-\(two(month))-\(two(day))"
        case .weekly: return "\(parts.yearForWeekOfYear ?? 0)-W\(two(parts.weekOfYear ?? 0))"
        case .monthly: return "\(year)-\(two(month))"
        case .yearly: return "\(year)"
        }
    }
}
