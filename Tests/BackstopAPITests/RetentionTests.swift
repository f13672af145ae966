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

    @Test("a retention without keep rules is refused, naming the field")
    func noRuleIsInvalid() throws {
        #expect(throws: BackstopAPIError.self) { try RetentionPolicy(keep: .init()).validate() }
        do {
            try RetentionPolicy(keep: .init()).validate()
        } catch {
            #expect(error.field == "retention.keep")
        }
        #expect(throws: BackstopAPIError.self) { try RetentionPolicy(keep: .init(daily: 7), timeZone: "Mars/Olympus").validate() }
        #expect(throws: BackstopAPIError.self) { try RetentionPolicy(keep: .init(daily: -1)).validate() }
        #expect(throws: BackstopAPIError.self) { try RetentionDuration(parsing: "90 days", field: "keep.within") }
        #expect(try RetentionDuration(parsing: "90d", field: "x").seconds == 90 * 86_400)
        #expect(try RetentionDuration(parsing: "36h", field: "x").description == "36h")
        #expect(try RetentionDuration(parsing: "14d", field: "x").description == "2w")
    }

    @Test("seed 004: within 90 days alone")
    func withinAlone() {
        let backups = Self.daily(from: "2026-07-01T00:00:00Z", days: 144)  // to 2026-11-21
        let policy = RetentionPolicy(keep: .init(within: RetentionDuration(seconds: 90 * 86_400)))
        let decisions = policy.evaluate(backups, now: Self.date("2026-11-21T03:00:00Z"))
        #expect(decisions.count == 144)
        #expect(Self.kept(decisions).count == 90)
        #expect(Self.kept(decisions).last == "20260824")
        let oldest = decisions.last!
        #expect(!oldest.keep && oldest.summary == "deleted: no rule keeps it, older than 90d")
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
        ])
        let newest = decisions[0]
        #expect(newest.reasons == ["daily 2026-11-21", "weekly 2026-W47", "monthly 2026-11"])
        let first = decisions.last!
        #expect(!first.keep)
        #expect(first.reasons.contains("daily 2026-01-01 is older than the newest 7 kept (2026-11-15)"))
        #expect(first.reasons.contains("monthly 2026-01 is kept by a newer backup"))
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
        #expect(utc.map(\.keep) == [true, false])
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
                within: Bool.random(using: &random) ? RetentionDuration(seconds: Int64.random(in: 0...(60 * 86_400), using: &random)) : nil,
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
