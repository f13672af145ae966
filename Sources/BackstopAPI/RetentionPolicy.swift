public import Foundation

/// Which backups of one environment to keep, in restic's terms: a backup is kept when any keep
/// rule selects it, or when it is protected (younger than `minAge`, on hold, or the newest
/// verified backup). Everything else is deleted. Pure: the caller supplies the backups, the
/// holds and the clock.
public struct RetentionPolicy: Sendable, Codable, Equatable {
    /// The rules. Counts read as restic reads them: `nil` or 0 is no rule, -1 (restic's
    /// `unlimited`) keeps every one.
    public struct Keep: Sendable, Codable, Equatable {
        /// Every backup taken within this window before the newest backup (not before now:
        /// when backups stop, the window stops with them, as in restic).
        public var within: CalendarDuration?
        /// The newest N backups.
        public var last: Int?
        /// The newest backup in each of the newest N hours, days, ISO weeks, months, years
        /// that have a backup, in the policy's time zone; while fewer than N have one, also the
        /// oldest backup (restic 0.16 and later).
        public var hourly: Int?
        public var daily: Int?
        public var weekly: Int?
        public var monthly: Int?
        public var yearly: Int?

        public init(within: CalendarDuration? = nil, last: Int? = nil, hourly: Int? = nil, daily: Int? = nil,
                    weekly: Int? = nil, monthly: Int? = nil, yearly: Int? = nil) {
            self.within = within
            self.last = last
            self.hourly = hourly
            self.daily = daily
            self.weekly = weekly
            self.monthly = monthly
            self.yearly = yearly
        }

        /// No rule in force: every count unset or 0 and no window (or a zero one).
        public var isEmpty: Bool {
            (within?.isZero ?? true) && Rule.allCases.allSatisfy { (count(of: $0) ?? 0) == 0 }
        }

        func count(of rule: Rule) -> Int? {
            switch rule {
            case .last: last
            case .hourly: hourly
            case .daily: daily
            case .weekly: weekly
            case .monthly: monthly
            case .yearly: yearly
            }
        }
    }

    public var keep: Keep
    public var minAge: FixedDuration
    /// IANA name, e.g. `Europe/Berlin`; buckets (days, weeks …) and windows are counted in it.
    public var timeZone: String

    public static let defaultMinAge = FixedDuration(seconds: 3_600)

    public init(keep: Keep, minAge: FixedDuration = defaultMinAge, timeZone: String = "Etc/UTC") {
        self.keep = keep
        self.minAge = minAge
        self.timeZone = timeZone
    }

    /// A retention without any keep rule in force would delete everything: it is refused,
    /// never read as "delete all". Zeros count as no rule, as they do in restic.
    public func validate() throws(BackstopAPIError) {
        for rule in Rule.allCases {
            if let value = keep.count(of: rule), value < -1 {
                throw BackstopAPIError(field: "retention.keep.\(rule.rawValue)", problem: "\(value) is negative",
                                       fix: "use 1 or more (or -1, restic's unlimited, to keep every one)")
            }
        }
        if keep.isEmpty {
            throw BackstopAPIError(field: "retention.keep", problem: "no keep rule is in force (0 means no rule, as in restic), which would delete every backup",
                                   fix: "set at least one of within, last, hourly, daily, weekly, monthly, yearly above 0 (e.g. --keep-daily 7)")
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

    /// The counted rules, in the order restic applies them.
    enum Rule: String, CaseIterable {
        case last, hourly, daily, weekly, monthly, yearly
    }

    /// The calendar buckets and windows are counted in.
    public var calendar: Calendar {
        var calendar = Calendar(identifier: .iso8601)
        // validate() rejects unknown zones; GMT stands in if an unvalidated policy gets here.
        calendar.timeZone = TimeZone(identifier: timeZone) ?? TimeZone(secondsFromGMT: 0) ?? calendar.timeZone
        return calendar
    }

    /// Decisions for `backups`, newest first. The policy must be valid. The rules select
    /// exactly what restic's `forget` would select for snapshots taken at the same times
    /// (hack/restic-oracle.py checks this against restic itself); the protections come on top.
    public func evaluate(_ backups: [Candidate], now: Date) -> [Decision] {
        let ordered = backups.sorted { $0.time != $1.time ? $0.time > $1.time : $0.id > $1.id }
        var reasons = Array(repeating: [String](), count: ordered.count)
        let calendar = self.calendar

        // restic counts the window back from the newest backup that is not in the future; with
        // none (every backup is in the future of this clock), everything is within.
        let windowStart = keep.within.flatMap { within -> Date? in
            guard !within.isZero, let newest = ordered.first(where: { $0.time < now }) else { return nil }
            return within.before(newest.time, in: calendar)
        }
        if let within = keep.within, !within.isZero {
            for (index, backup) in ordered.enumerated() where windowStart.map({ backup.time > $0 }) ?? true {
                reasons[index].append("within \(within)")
            }
        }

        var keptKeys: [Rule: [String]] = [:]
        for rule in Rule.allCases {
            guard let count = keep.count(of: rule), count != 0 else { continue }
            var remaining = count  // -1: no limit
            var kept: [String] = []
            for (index, backup) in ordered.enumerated() where remaining != 0 {
                if rule == .last {
                    reasons[index].append(count < 0 ? "last \(index + 1) of unlimited" : "last \(index + 1) of \(count)")
                    remaining -= 1
                    continue
                }
                let key = Self.key(of: backup.time, in: rule, calendar: calendar)
                let isOldest = index == ordered.count - 1
                // A newer backup already holds this bucket; restic still keeps the oldest backup
                // while the rule has buckets left over, so a young history is not cut short.
                guard kept.last != key || isOldest else { continue }
                reasons[index].append(kept.last != key ? "\(rule.rawValue) \(key)"
                    : "\(rule.rawValue) \(key), the oldest backup" + (count > 0 ? " (fewer than \(count) \(rule.rawValue) kept)" : ""))
                if kept.last != key { kept.append(key) }
                if remaining > 0 { remaining -= 1 }
            }
            keptKeys[rule] = kept
        }

        let newestVerified = ordered.firstIndex { $0.verified }
        return ordered.enumerated().map { index, backup in
            var why = reasons[index]
            if now.timeIntervalSince(backup.time) < Double(minAge.seconds) { why.append("younger than minAge \(minAge)") }
            if backup.held { why.append("on hold") }
            if index == newestVerified { why.append("newest verified backup") }
            if !why.isEmpty { return Decision(id: backup.id, keep: true, reasons: why) }
            var explanation = ["no rule keeps it"]
            for rule in Rule.allCases where rule != .last {
                guard let kept = keptKeys[rule], let oldest = kept.last, let count = keep.count(of: rule) else { continue }
                let key = Self.key(of: backup.time, in: rule, calendar: calendar)
                // Keys are visited newest first, so the kept ones are in descending order.
                explanation.append(key >= oldest ? "\(rule.rawValue) \(key) is kept by a newer backup"
                                                 : "\(rule.rawValue) \(key) is older than the newest \(count) kept (\(oldest))")
            }
            if let within = keep.within, !within.isZero { explanation.append("more than \(within) before the newest backup") }
            if let last = keep.last, last > 0 { explanation.append("not among the newest \(last)") }
            return Decision(id: backup.id, keep: false, reasons: explanation)
        }
    }

    /// The bucket a time falls in, as a readable key: `2026-11-20T14`, `2026-11-20`, `2026-W47`
    /// (ISO week-numbering year), `2026-11`, `2026`.
    static func key(of time: Date, in rule: Rule, calendar: Calendar) -> String {
        let parts = calendar.dateComponents([.year, .month, .day, .hour, .yearForWeekOfYear, .weekOfYear], from: time)
        let year = parts.year ?? 0, month = parts.month ?? 0, day = parts.day ?? 0, hour = parts.hour ?? 0
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        switch rule {
        case .last: return ""  // `last` counts backups, not buckets
        case .hourly: return "\(year)-\(two(month))-\(two(day))T\(two(hour))"
        case .daily: return "\(year)-\(two(month))-\(two(day))"
        case .weekly: return "\(parts.yearForWeekOfYear ?? 0)-W\(two(parts.weekOfYear ?? 0))"
        case .monthly: return "\(year)-\(two(month))"
        case .yearly: return "\(year)"
        }
    }
}
