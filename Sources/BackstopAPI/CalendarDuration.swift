public import Foundation

/// A retention window as restic counts it: `90d`, `2w`, `36h`, `6mo` (calendar months), `1y`
/// (calendar years), or several parts at once, `1y6mo`. Years, months, weeks and days move the
/// calendar date and keep the time of day (so a month back from 31 March is 3 March, as Go's
/// `AddDate`, which restic uses, normalises it); hours, minutes and seconds are exact.
///
/// A bare `m` is refused: restic reads `6m` as six months, Kubernetes and Go as six minutes, and
/// a retention window read the wrong way deletes backups without a word.
public struct CalendarDuration: Hashable, Sendable, TextCodedValue {
    public var years: Int
    public var months: Int
    /// Weeks are counted as seven days.
    public var days: Int
    /// Hours, minutes and seconds.
    public var seconds: Int64

    public init(years: Int = 0, months: Int = 0, days: Int = 0, seconds: Int64 = 0) {
        self.years = years
        self.months = months
        self.days = days
        self.seconds = seconds
    }

    static let grammar = "a number and a unit: s, min, h, d, w, mo (calendar months) or y (calendar years), e.g. 90d, 6mo or 1y6mo"

    public init(parsing text: String, field: String) throws(BackstopAPIError) {
        self.init()
        var rest = Substring(text)
        guard !rest.isEmpty else {
            throw BackstopAPIError(field: field, problem: "empty", fix: "write \(Self.grammar)")
        }
        while !rest.isEmpty {
            let digits = rest.prefix { $0.isASCII && $0.isNumber }
            rest = rest.dropFirst(digits.count)
            let unit = rest.prefix { $0.isASCII && $0.isLetter }
            rest = rest.dropFirst(unit.count)
            if unit == "m" {
                throw BackstopAPIError(
                    field: field, problem: "\"\(text)\" is ambiguous: restic reads \(digits)m as \(digits) months, Kubernetes and Go as \(digits) minutes",
                    fix: "write \(digits)mo for months or \(digits)min for minutes")
            }
            guard let count = Int(digits), count <= 1_000_000 else {
                throw BackstopAPIError(field: field, problem: "\"\(text)\" is not a duration", fix: "write \(Self.grammar)")
            }
            switch unit {
            case "y": years += count
            case "mo": months += count
            case "w": days += 7 * count
            case "d": days += count
            case "h": seconds += Int64(count) * 3_600
            case "min": seconds += Int64(count) * 60
            case "s": seconds += Int64(count)
            default:
                throw BackstopAPIError(field: field, problem: "\"\(text)\" is not a duration", fix: "write \(Self.grammar)")
            }
        }
    }

    public var isZero: Bool { years == 0 && months == 0 && days == 0 && seconds == 0 }

    /// The instant this long before `date`, in `calendar`'s time zone: the calendar part first,
    /// keeping the time of day and normalising overflowing days (restic's `AddDate`), then the
    /// exact part.
    public func before(_ date: Date, in calendar: Calendar) -> Date {
        var moved = date
        if years != 0 || months != 0 || days != 0 {
            var parts = calendar.dateComponents([.era, .year, .month, .day, .hour, .minute, .second, .nanosecond], from: date)
            parts.year = (parts.year ?? 0) - years
            parts.month = (parts.month ?? 1) - months
            parts.day = (parts.day ?? 1) - days
            moved = calendar.date(from: parts) ?? date
        }
        return moved.addingTimeInterval(-Double(seconds))
    }

    public var description: String {
        var text = ""
        if years != 0 { text += "\(years)y" }
        if months != 0 { text += "\(months)mo" }
        if days != 0 { text += "\(days)d" }  // weeks as days, as restic writes them
        for (unit, amount) in [("h", seconds / 3_600), ("min", seconds % 3_600 / 60), ("s", seconds % 60)] where amount != 0 {
            text += "\(amount)\(unit)"
        }
        return text.isEmpty ? "0s" : text
    }
}
