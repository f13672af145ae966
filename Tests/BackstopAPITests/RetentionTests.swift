import BackstopAPI
import Foundation
import TestSupport
import Testing

@Suite("Retention")
struct RetentionTests {
    /// A fresh formatter per use: ISO8601DateFormatter is not Sendable.
    static var formatter: ISO8601DateFormatter {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime]
        return formatter
    }

    static func date(_ text: String) -> Date { formatter.date(from: text)! }

    /// A backup taken at `time` (ISO 8601, UTC), with an id derived from it.
    static func backup(_ time: String, suffix: String = "0000", verified: Bool = false, held: Bool = false) -> RetentionPolicy.Candidate {
        let date = date(time)
        let compact = time.replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
        return .init(id: try! BackupID("\(compact)-\(suffix)"), time: date, verified: verified, held: held)
    }

    static func daily(from start: String, days: Int, at hour: Int = 2) -> [RetentionPolicy.Candidate] {
        (0..<days).map { day in
            let time = date(start).addingTimeInterval(Double(day * 86_400 + hour * 3_600))
            return backup(formatter.string(from: time))
        }
    }

    static func kept(_ decisions: [RetentionPolicy.Decision]) -> [String] {
        decisions.filter(\.keep).map { String($0.id.rawValue.prefix(8)) }
    }

    @Test("a retention without a keep rule in force is refused, naming the field; zeros are no rule, as in restic")
    func noRuleIsInvalid() throws {
        #expect(throws: BackstopAPIError.self) { try RetentionPolicy(keep: .init()).validate() }
        do {
            try RetentionPolicy(keep: .init()).validate()
        } catch {
            #expect(error.field == "retention.keep")
        }
        // Zero counts and a zero window are no rule: a policy of them would delete everything
        // but the protected backups.
        for zeros in [RetentionPolicy.Keep(last: 0), .init(daily: 0), .init(within: CalendarDuration()), .init(within: .init(days: 0), last: 0, yearly: 0)] {
            #expect(zeros.isEmpty)
            #expect(throws: BackstopAPIError.self, "\(zeros)") { try RetentionPolicy(keep: zeros, minAge: .init(seconds: 0)).validate() }
        }
        #expect(!RetentionPolicy.Keep(last: 0, daily: 1).isEmpty)
        try RetentionPolicy(keep: .init(daily: -1)).validate()  // restic's unlimited
        #expect(throws: BackstopAPIError.self) { try RetentionPolicy(keep: .init(daily: -2)).validate() }
        #expect(throws: BackstopAPIError.self) { try RetentionPolicy(keep: .init(daily: 7), timeZone: "Mars/Olympus").validate() }
    }

    @Test("retention windows: restic's units, calendar months and years, and a bare m refused with both readings")
    func windows() throws {
        #expect(try CalendarDuration(parsing: "90d", field: "x") == CalendarDuration(days: 90))
        #expect(try CalendarDuration(parsing: "2w", field: "x") == CalendarDuration(days: 14))
        #expect(try CalendarDuration(parsing: "6mo", field: "x") == CalendarDuration(months: 6))
        #expect(try CalendarDuration(parsing: "1y6mo", field: "x") == CalendarDuration(years: 1, months: 6))
        #expect(try CalendarDuration(parsing: "36h", field: "x") == CalendarDuration(seconds: 36 * 3_600))
        #expect(try CalendarDuration(parsing: "90min", field: "x") == CalendarDuration(seconds: 5_400))
        #expect(try CalendarDuration(parsing: "1y2mo3d4h5min6s", field: "x").description == "1y2mo3d4h5min6s")
        #expect(try CalendarDuration(parsing: "0d", field: "x").isZero)
        for text in ["6m", "1y6m"] {
            do {
                _ = try CalendarDuration(parsing: text, field: "--keep-within")
                Issue.record("\(text) was read without a word")
            } catch {
                #expect(error.field == "--keep-within")
                #expect(error.problem.contains("months") && error.problem.contains("minutes"), "both readings: \(error.problem)")
                #expect(error.fix.contains("6mo") && error.fix.contains("6min"))
            }
        }
        for bad in ["", "90", "d", "90 days", "1.5d", "-3d", "6M"] {
            #expect(throws: BackstopAPIError.self, "\(bad)") { try CalendarDuration(parsing: bad, field: "x") }
        }
        // A month back from 31 March is 3 March, as Go's AddDate (and so restic) normalises it.
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "Etc/UTC")!
        #expect(CalendarDuration(months: 1).before(Self.date("2026-03-31T12:00:00Z"), in: calendar) == Self.date("2026-03-03T12:00:00Z"))
        #expect(CalendarDuration(years: 1).before(Self.date("2028-02-29T12:00:00Z"), in: calendar) == Self.date("2027-03-01T12:00:00Z"))

        // Other durations keep Kubernetes' m for minutes; months and years have no fixed length there.
        #expect(try FixedDuration(parsing: "6m", field: "x").seconds == 360)
        #expect(try FixedDuration(parsing: "30min", field: "x").seconds == 1_800)
        #expect(try FixedDuration(parsing: "90d", field: "x").seconds == 90 * 86_400)
        #expect(try FixedDuration(parsing: "36h", field: "x").description == "36h")
        #expect(try FixedDuration(parsing: "14d", field: "x").description == "2w")
        #expect(throws: BackstopAPIError.self) { try FixedDuration(parsing: "90 days", field: "keep.within") }
        #expect(throws: BackstopAPIError.self) { try FixedDuration(parsing: "6mo", field: "minAge") }
        #expect(throws: BackstopAPIError.self) { try FixedDuration(parsing: "1y", field: "minAge") }
    }

    @Test("seed 004: within 90 days alone")
    func withinAlone() {
        let backups = Self.daily(from: "2026-07-01T00:00:00Z", days: 144)  // to 2026-11-21
        let policy = RetentionPolicy(keep: .init(within: CalendarDuration(days: 90)))
        let decisions = policy.evaluate(backups, now: Self.date("2026-11-21T03:00:00Z"))
        #expect(decisions.count == 144)
        #expect(Self.kept(decisions).count == 90)
        #expect(Self.kept(decisions).last == "20260824")
        let oldest = decisions.last!
        #expect(!oldest.keep && oldest.summary == "deleted: no rule keeps it, more than 90d before the newest backup")
        #expect(decisions.first!.summary == "kept: within 90d", "exactly one hour old is not younger than minAge 1h")
    }

    @Test("seed 001: 7 daily, 4 weekly, 12 monthly")
    func grandfatherFatherSon() {
        let backups = Self.daily(from: "2026-01-01T00:00:00Z", days: 325)  // 2026-01-01 … 2026-11-21, 02:00 UTC
        let policy = RetentionPolicy(keep: .init(daily: 7, weekly: 4, monthly: 12))
        let decisions = policy.evaluate(backups, now: Self.date("2026-11-21T03:00:00Z"))
        #expect(Self.kept(decisions) == [
            "20261121", "20261120", "20261119", "20261118", "20261117", "20261116", "20261115",  // daily
            "20261108", "20261101",                                                             // weekly W45, W44
            "20261031", "20260930", "20260831", "20260731", "20260630", "20260531", "20260430",  // monthly
            "20260331", "20260228", "20260131",
            "20260101",  // eleven months have backups, twelve are kept: the oldest stays (restic 0.16+)
        ])
        let newest = decisions[0]
        #expect(newest.reasons == ["daily 2026-11-21", "weekly 2026-W47", "monthly 2026-11"])
        let first = decisions.last!
        #expect(first.keep && first.reasons == ["monthly 2026-01, the oldest backup (fewer than 12 monthly kept)"])
        let second = decisions[decisions.count - 2]
        #expect(!second.keep)
        #expect(second.reasons.contains("daily 2026-01-02 is older than the newest 7 kept (2026-11-15)"))
        #expect(second.reasons.contains("monthly 2026-01 is kept by a newer backup"))
    }

    @Test("seed 002: keep the last 30")
    func lastAlone() {
        let backups = Self.daily(from: "2026-10-01T00:00:00Z", days: 40)
        let decisions = RetentionPolicy(keep: .init(last: 30), minAge: .init(seconds: 0)).evaluate(backups, now: Self.date("2026-12-01T00:00:00Z"))
        #expect(Self.kept(decisions).count == 30)
        #expect(decisions[29].reasons == ["last 30 of 30"])
        #expect(decisions[30].summary == "deleted: no rule keeps it, not among the newest 30")
    }

    @Test("days are counted in the policy's time zone, across the end of daylight saving time")
    func timeZoneAndDST() {
        // 2026-10-25 is the last day of CEST; 22:30Z is 23:30 CET on the 25th, 23:30Z is 00:30 CET on the 26th.
        let backups = [Self.backup("2026-10-25T22:30:00Z"), Self.backup("2026-10-25T23:30:00Z")]
        let now = Self.date("2026-11-01T00:00:00Z")
        let berlin = RetentionPolicy(keep: .init(daily: 5), minAge: .init(seconds: 0), timeZone: "Europe/Berlin").evaluate(backups, now: now)
        #expect(berlin.map(\.reasons) == [["daily 2026-10-26"], ["daily 2026-10-25"]])
        let utc = RetentionPolicy(keep: .init(daily: 5), minAge: .init(seconds: 0)).evaluate(backups, now: now)
        #expect(utc.map(\.reasons) == [["daily 2026-10-25"], ["daily 2026-10-25, the oldest backup (fewer than 5 daily kept)"]],
                "one day in UTC; the older is kept only as the oldest backup while days are left (restic 0.16+)")
        // The start of daylight saving time skips 02:00 local: hourly keys jump from 01 to 03.
        let spring = [Self.backup("2026-03-29T00:30:00Z"), Self.backup("2026-03-29T01:30:00Z")]
        let hourly = RetentionPolicy(keep: .init(hourly: 5), minAge: .init(seconds: 0), timeZone: "Europe/Berlin").evaluate(spring, now: now)
        #expect(hourly.map(\.reasons) == [["hourly 2026-03-29T03"], ["hourly 2026-03-29T01"]])
    }

    @Test("ISO week 53 spans the new year; years split at midnight")
    func weekFiftyThree() {
        let backups = [Self.backup("2026-12-27T12:00:00Z"), Self.backup("2026-12-31T12:00:00Z"),
                       Self.backup("2027-01-02T12:00:00Z"), Self.backup("2027-01-05T12:00:00Z")]
        let decisions = RetentionPolicy(keep: .init(weekly: 3, yearly: 1), minAge: .init(seconds: 0))
            .evaluate(backups, now: Self.date("2027-02-01T00:00:00Z"))
        #expect(decisions.map(\.reasons) == [
            ["weekly 2027-W01", "yearly 2027"],
            ["weekly 2026-W53"],  // 2 January 2027 is still in ISO week 53 of 2026
            ["no rule keeps it", "weekly 2026-W53 is kept by a newer backup", "yearly 2026 is older than the newest 1 kept (2027)"],
            ["weekly 2026-W52"],
        ])
        let newYear = [Self.backup("2026-12-31T23:30:00Z"), Self.backup("2027-01-01T00:30:00Z")]
        let yearly = RetentionPolicy(keep: .init(yearly: 2), minAge: .init(seconds: 0)).evaluate(newYear, now: Self.date("2027-02-01T00:00:00Z"))
        #expect(yearly.map(\.reasons) == [["yearly 2027"], ["yearly 2026"]])
    }

    @Test("within counts back from the newest backup: when backups stop, the window stops with them (restic)")
    func withinFromTheNewest() {
        // Daily backups that stopped sixty days ago: a 30-day window still keeps their last month.
        let backups = Self.daily(from: "2026-06-01T00:00:00Z", days: 100)  // to 2026-09-08
        let now = Self.date("2026-11-07T00:00:00Z")
        let decisions = RetentionPolicy(keep: .init(within: CalendarDuration(days: 30)), minAge: .init(seconds: 0)).evaluate(backups, now: now)
        #expect(Self.kept(decisions).count == 30)
        #expect(Self.kept(decisions).first == "20260908" && Self.kept(decisions).last == "20260810")
        // A backup from the future of this clock does not move the window: restic leaves such
        // snapshots out when it finds the newest.
        let withFuture = backups + [Self.backup("2026-12-24T00:00:00Z", suffix: "ffff")]
        let again = RetentionPolicy(keep: .init(within: CalendarDuration(days: 30)), minAge: .init(seconds: 0)).evaluate(withFuture, now: now)
        #expect(Self.kept(again).count == 31)
        // Calendar months: six months back from 31 August is "31 February", which Go's AddDate
        // (and so restic) normalises to 3 March.
        let monthEnds = [Self.backup("2026-08-31T12:00:00Z"), Self.backup("2026-03-03T12:00:01Z"), Self.backup("2026-03-03T12:00:00Z"),
                         Self.backup("2026-03-01T12:00:00Z")]
        let months = RetentionPolicy(keep: .init(within: CalendarDuration(months: 6)), minAge: .init(seconds: 0)).evaluate(monthEnds, now: now)
        #expect(months.map(\.keep) == [true, true, false, false])
    }

    /// restic's own decisions (restic 0.18, recorded by hack/restic-oracle.py, which
    /// hack/test.sh re-runs against restic itself) for the same histories and rules.
    @Test("every rule keeps exactly what restic's forget keeps, over the oracle's histories")
    func agreesWithRestic() throws {
        struct Fixture: Decodable {
            struct Case: Decodable {
                let name: String
                let timeZone: String
                let rules: [String: Rule]
                let snapshots: [String]
                let kept: [String]
            }
            /// A count, restic's `unlimited`, or a window.
            enum Rule: Decodable {
                case count(Int)
                case text(String)
                init(from decoder: any Decoder) throws {
                    let container = try decoder.singleValueContainer()
                    if let count = try? container.decode(Int.self) { self = .count(count) } else { self = .text(try container.decode(String.self)) }
                }
                var count: Int? {
                    switch self {
                    case .count(let value): value
                    case .text(let text): text == "unlimited" ? -1 : nil
                    }
                }
            }
            let restic: String
            let now: String
            let cases: [Case]
        }
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/restic-retention.json")
        let fixture = try JSONDecoder().decode(Fixture.self, from: Data(contentsOf: path))
        #expect(fixture.cases.count >= 15)
        for item in fixture.cases {
            var keep = RetentionPolicy.Keep()
            if case .text(let window) = item.rules["within"] { keep.within = try CalendarDuration(parsing: window, field: "within") }
            keep.last = item.rules["last"]?.count
            keep.hourly = item.rules["hourly"]?.count
            keep.daily = item.rules["daily"]?.count
            keep.weekly = item.rules["weekly"]?.count
            keep.monthly = item.rules["monthly"]?.count
            keep.yearly = item.rules["yearly"]?.count
            let policy = RetentionPolicy(keep: keep, minAge: .init(seconds: 0), timeZone: item.timeZone)
            try policy.validate()
            let backups = item.snapshots.enumerated().map { index, time in Self.backup(time, suffix: String(format: "%04x", index)) }
            let kept = policy.evaluate(backups, now: Self.date(fixture.now)).filter(\.keep).map { Self.formatter.string(from: $0.id.secondsSince1970.map { Date(timeIntervalSince1970: Double($0)) }!) }
            #expect(kept.sorted() == item.kept.sorted(), "\(item.name): restic \(fixture.restic) keeps \(item.kept.count), we keep \(kept.count)")
        }
    }

    @Test("tiers: ages in calendar units, counted from now; the oldest reached tier wins")
    func tierAges() throws {
        var calendar = Calendar(identifier: .iso8601)
        calendar.timeZone = TimeZone(identifier: "Etc/UTC")!
        let tiers = [try StorageTier(parsing: "30d:STANDARD_IA"), try StorageTier(parsing: "6mo:GLACIER_IR")]
        let now = Self.date("2026-11-30T12:00:00Z")
        #expect(StorageTier.target(for: Self.date("2026-11-20T12:00:00Z"), now: now, in: tiers, calendar: calendar) == nil)
        #expect(StorageTier.target(for: Self.date("2026-10-31T12:00:00Z"), now: now, in: tiers, calendar: calendar)?.storageClass == "STANDARD_IA")
        #expect(StorageTier.target(for: Self.date("2026-05-30T12:00:00Z"), now: now, in: tiers, calendar: calendar)?.storageClass == "GLACIER_IR")
        #expect(StorageTier.target(for: Self.date("2026-05-31T12:00:00Z"), now: now, in: tiers, calendar: calendar)?.storageClass == "STANDARD_IA")
        #expect(throws: BackstopAPIError.self) { try StorageTier(parsing: "6m:STANDARD_IA") }
        #expect(throws: BackstopAPIError.self) { try StorageTier(parsing: "0d:STANDARD_IA") }
        #expect(throws: BackstopAPIError.self) { try StorageTier(parsing: "30d:GLACIER") }
    }

    @Test("edge cases: no backups, one backup, equal times, a clock behind the backups")
    func edgeCases() {
        let policy = RetentionPolicy(keep: .init(daily: 1))
        let now = Self.date("2026-11-21T12:00:00Z")
        #expect(policy.evaluate([], now: now).isEmpty)
        #expect(policy.evaluate([Self.backup("2026-01-01T00:00:00Z")], now: now).map(\.keep) == [true])
        let twins = [Self.backup("2026-11-20T02:00:00Z", suffix: "aaaa"), Self.backup("2026-11-20T02:00:00Z", suffix: "ffff")]
        let decisions = policy.evaluate(twins, now: now)
        #expect(decisions.map { $0.id.rawValue.suffix(4) } == ["ffff", "aaaa"], "ties break by id, newest id first")
        #expect(decisions.map(\.keep) == [true, false])
        // The worker's clock is behind the backups' times: they are young, never deleted.
        let future = [Self.backup("2026-11-22T02:00:00Z"), Self.backup("2026-11-22T01:00:00Z")]
        #expect(policy.evaluate(future, now: now).allSatisfy { $0.keep && $0.reasons.contains("younger than minAge 1h") })
    }

    @Test("holds and the newest verified backup are kept whatever the rules say")
    func protections() {
        let backups = [Self.backup("2026-11-21T02:00:00Z"), Self.backup("2026-11-20T02:00:00Z", verified: true),
                       Self.backup("2026-11-19T02:00:00Z", verified: true), Self.backup("2026-01-01T02:00:00Z", held: true)]
        let decisions = RetentionPolicy(keep: .init(last: 1)).evaluate(backups, now: Self.date("2026-11-22T00:00:00Z"))
        #expect(decisions.map(\.summary) == [
            "kept: last 1 of 1",
            "kept: newest verified backup",
            "deleted: no rule keeps it, not among the newest 1",
            "kept: on hold",
        ])
    }

    /// Properties over random histories (seeded, so a failure repeats).
    @Test("properties: protections hold, evaluation is idempotent, more rules never delete more")
    func properties() {
        var random = SeededRandom(seed: 2026)
        let now = Self.date("2026-11-21T12:00:00Z")
        for _ in 0..<300 {
            let backups = (0..<Int.random(in: 0...60, using: &random)).map { index in
                let time = now.addingTimeInterval(-Double.random(in: -7_200...(400 * 86_400), using: &random))
                return RetentionPolicy.Candidate(id: try! BackupID(Self.idText(time, index)), time: time,
                                                 verified: Bool.random(using: &random), held: Int.random(in: 0..<20, using: &random) == 0)
            }
            let keep = RetentionPolicy.Keep(
                within: Bool.random(using: &random) ? CalendarDuration(days: Int.random(in: 0...60, using: &random)) : nil,
                last: Bool.random(using: &random) ? Int.random(in: 0...5, using: &random) : nil,
                hourly: Bool.random(using: &random) ? Int.random(in: 0...24, using: &random) : nil,
                daily: Bool.random(using: &random) ? Int.random(in: 0...14, using: &random) : nil,
                weekly: Bool.random(using: &random) ? Int.random(in: 0...8, using: &random) : nil,
                monthly: Bool.random(using: &random) ? Int.random(in: 0...12, using: &random) : 1,
                yearly: Bool.random(using: &random) ? Int.random(in: 0...3, using: &random) : nil)
            let policy = RetentionPolicy(keep: keep, timeZone: ["Etc/UTC", "Europe/Berlin", "America/New_York", "Asia/Kolkata"].randomElement(using: &random)!)
            let decisions = policy.evaluate(backups, now: now)

            #expect(Set(decisions.map(\.id)) == Set(backups.map(\.id)), "one decision per backup given, none other")
            if let newestVerified = backups.filter(\.verified).max(by: { ($0.time, $0.id) < ($1.time, $1.id) }) {
                #expect(decisions.first { $0.id == newestVerified.id }?.keep == true)
            }
            #expect(decisions.filter { !$0.keep }.allSatisfy { id in !backups.contains { $0.id == id.id && $0.held } })
            let keptIDs = Set(decisions.filter(\.keep).map(\.id))
            let again = policy.evaluate(backups.filter { keptIDs.contains($0.id) }, now: now)
            #expect(again.allSatisfy { $0.keep }, "evaluating the kept set again deletes nothing")
            var wider = policy
            wider.keep.daily = (keep.daily ?? 0) + 1
            let widerKept = Set(wider.evaluate(backups, now: now).filter(\.keep).map(\.id))
            #expect(widerKept.isSuperset(of: keptIDs), "adding to a keep rule never deletes more")
        }
    }

    static func idText(_ time: Date, _ index: Int) -> String {
        let text = formatter.string(from: time).replacingOccurrences(of: "-", with: "").replacingOccurrences(of: ":", with: "")
        return text + "-" + String(format: "%04x", index)
    }
}
