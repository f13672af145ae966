import ArgumentParser
import BackstopAPI
import Engine
import Foundation

/// `--keep-*`, `--min-age`, `--time-zone`, `--orphan-grace`: the retention rules, from flags
/// or their `BACKSTOP_*` variables (the CronJob sets those from the policy).
struct RetentionOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.keepWithin.flag), help: "Keep every backup younger than this, e.g. 30d (env \(WorkerOption.keepWithin.environmentVariable)).")
    var within: String?
    @Option(name: .customLong(WorkerOption.keepLast.flag), help: "Keep the newest N backups (env \(WorkerOption.keepLast.environmentVariable)).")
    var last: Int?
    @Option(name: .customLong(WorkerOption.keepHourly.flag), help: "Keep the newest backup of each of the newest N hours (env \(WorkerOption.keepHourly.environmentVariable)).")
    var hourly: Int?
    @Option(name: .customLong(WorkerOption.keepDaily.flag), help: "… of each of the newest N days (env \(WorkerOption.keepDaily.environmentVariable)).")
    var daily: Int?
    @Option(name: .customLong(WorkerOption.keepWeekly.flag), help: "… of each of the newest N ISO weeks (env \(WorkerOption.keepWeekly.environmentVariable)).")
    var weekly: Int?
    @Option(name: .customLong(WorkerOption.keepMonthly.flag), help: "… of each of the newest N months (env \(WorkerOption.keepMonthly.environmentVariable)).")
    var monthly: Int?
    @Option(name: .customLong(WorkerOption.keepYearly.flag), help: "… of each of the newest N years (env \(WorkerOption.keepYearly.environmentVariable)).")
    var yearly: Int?
    @Option(name: .customLong(WorkerOption.minAge.flag), help: "Never delete backups younger than this (env \(WorkerOption.minAge.environmentVariable); default 1h).")
    var minAge: String?
    @Option(name: .customLong(WorkerOption.timeZone.flag), help: "Time zone of the hour/day/week/month/year buckets (env \(WorkerOption.timeZone.environmentVariable); default Etc/UTC).")
    var timeZone: String?
    @Option(name: .customLong(WorkerOption.orphanGrace.flag), help: "Remove folders without a manifest once older than this (env \(WorkerOption.orphanGrace.environmentVariable); default 24h).")
    var orphanGrace: String?
    @Option(name: .customLong(WorkerOption.tier.flag),
            help: "Move kept S3 backups to a storage class at an age, e.g. 30d:STANDARD_IA; repeatable (env \(WorkerOption.tier.environmentVariable), comma-separated).")
    var tiers: [String] = []

    /// The rules; `nil` when no keep rule is given at all.
    func policy() throws -> RetentionPolicy? {
        let environment = ProcessInfo.processInfo.environment
        func number(_ option: WorkerOption, _ flag: Int?) throws -> Int? {
            guard let text = option.resolve(flag: flag.map(String.init), environment: environment) else { return nil }
            guard let value = Int(text) else { throw ValidationError("\(option.environmentVariable)=\(text) is not a number") }
            return value
        }
        func duration(_ option: WorkerOption, _ flag: String?) throws -> RetentionDuration? {
            guard let text = option.resolve(flag: flag, environment: environment) else { return nil }
            do { return try RetentionDuration(parsing: text, field: "--\(option.flag)") }
            catch { throw ValidationError(error.description) }
        }
        let keep = RetentionPolicy.Keep(
            within: try duration(.keepWithin, within), last: try number(.keepLast, last),
            hourly: try number(.keepHourly, hourly), daily: try number(.keepDaily, daily),
            weekly: try number(.keepWeekly, weekly), monthly: try number(.keepMonthly, monthly),
            yearly: try number(.keepYearly, yearly))
        if keep == RetentionPolicy.Keep() { return nil }
        let policy = RetentionPolicy(keep: keep, minAge: try duration(.minAge, minAge) ?? RetentionPolicy.defaultMinAge,
                                     timeZone: WorkerOption.timeZone.resolve(flag: timeZone, environment: environment) ?? "Etc/UTC")
        do { try policy.validate() } catch { throw ValidationError(error.description) }
        return policy
    }

    func storageTiers() throws -> [StorageTier] {
        let given = tiers.isEmpty
            ? (WorkerOption.tier.resolve(flag: nil, environment: ProcessInfo.processInfo.environment) ?? "").split(separator: ",").map(String.init)
            : tiers
        do { return try given.map { text throws(BackstopAPIError) in try StorageTier(parsing: text.trimmingCharacters(in: .whitespaces)) } }
        catch { throw ValidationError(error.description) }
    }

    func grace() throws -> RetentionDuration {
        let text = WorkerOption.orphanGrace.resolve(flag: orphanGrace, environment: ProcessInfo.processInfo.environment) ?? "24h"
        do { return try RetentionDuration(parsing: text, field: "--\(WorkerOption.orphanGrace.flag)") }
        catch { throw ValidationError(error.description) }
    }
}

/// The decision table of a prune: one line per backup, newest first.
func printDecisions(_ result: PruneCommand.Result) {
    for decision in result.decisions {
        let verdict = decision.keep ? "keep" : (result.dryRun ? "would delete" : "deleted")
        print("\(decision.id)  \(verdict.padding(toLength: 12, withPad: " ", startingAt: 0))  \(decision.reasons.joined(separator: ", "))")
    }
    for move in result.tierMoves {
        print("\(move.id)  \(result.dryRun ? "would move" : "moved") to \(move.storageClass)")
    }
    for orphan in result.orphans {
        print("\(orphan)  \(result.dryRun ? "would remove" : "removed") leftovers (no manifest)")
    }
}
