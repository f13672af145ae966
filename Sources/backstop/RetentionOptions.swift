import ArgumentParser
import BackstopAPI
import Engine
import Foundation
import Storage

/// `--keep-*`, `--min-age`, `--time-zone`, `--orphan-grace`, `--tier`: the retention rules,
/// from flags or their `BACKSTOP_*` variables (the CronJob sets those from the policy). Counts
/// and windows read as in restic: 0 is no rule, `unlimited` keeps every one, `6mo` is six
/// months (and a bare `m`, which restic reads as months, is refused).
struct RetentionOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.keepWithin.flag),
            help: "Keep every backup taken within this window before the newest one: 30d, 2w, 6mo, 1y, 36h (a bare m is refused: write mo or min) (env \(WorkerOption.keepWithin.environmentVariable)).")
    var within: String?
    // Counts take the next argument whatever it looks like, so `--keep-daily -1` gets its own
    // message (restic's "unlimited") rather than "missing value".
    @Option(name: .customLong(WorkerOption.keepLast.flag), parsing: .unconditional, help: "Keep the newest N backups; unlimited keeps all (env \(WorkerOption.keepLast.environmentVariable)).")
    var last: String?
    @Option(name: .customLong(WorkerOption.keepHourly.flag), parsing: .unconditional, help: "Keep the newest backup of each of the newest N hours (env \(WorkerOption.keepHourly.environmentVariable)).")
    var hourly: String?
    @Option(name: .customLong(WorkerOption.keepDaily.flag), parsing: .unconditional, help: "… of each of the newest N days (env \(WorkerOption.keepDaily.environmentVariable)).")
    var daily: String?
    @Option(name: .customLong(WorkerOption.keepWeekly.flag), parsing: .unconditional, help: "… of each of the newest N ISO weeks (env \(WorkerOption.keepWeekly.environmentVariable)).")
    var weekly: String?
    @Option(name: .customLong(WorkerOption.keepMonthly.flag), parsing: .unconditional, help: "… of each of the newest N months (env \(WorkerOption.keepMonthly.environmentVariable)).")
    var monthly: String?
    @Option(name: .customLong(WorkerOption.keepYearly.flag), parsing: .unconditional, help: "… of each of the newest N years (env \(WorkerOption.keepYearly.environmentVariable)).")
    var yearly: String?
    @Option(name: .customLong(WorkerOption.minAge.flag), help: "Never delete backups younger than this: 30m, 1h, 7d (env \(WorkerOption.minAge.environmentVariable); default 1h).")
    var minAge: String?
    @Option(name: .customLong(WorkerOption.timeZone.flag), help: "Time zone of the hour/day/week/month/year buckets (env \(WorkerOption.timeZone.environmentVariable); default Etc/UTC).")
    var timeZone: String?
    @Option(name: .customLong(WorkerOption.orphanGrace.flag), help: "Remove leftovers of killed runs once idle for longer than this (env \(WorkerOption.orphanGrace.environmentVariable); default 24h).")
    var orphanGrace: String?
    @Option(name: .customLong(WorkerOption.tier.flag),
            help: "Move kept S3 backups to a storage class at an age, e.g. 30d:STANDARD_IA or 6mo:GLACIER_IR; repeatable (env \(WorkerOption.tier.environmentVariable), comma-separated).")
    var tiers: [String] = []

    /// Whether any keep rule was given at all (even a zero one).
    var anyGiven: Bool {
        [(WorkerOption.keepWithin, within), (.keepLast, last), (.keepHourly, hourly), (.keepDaily, daily), (.keepWeekly, weekly),
         (.keepMonthly, monthly), (.keepYearly, yearly)].contains { $0.0.resolved($0.1) != nil }
    }

    /// The rules; a prune without a rule in force would delete everything and is refused.
    func policy() throws(CommandLineError) -> RetentionPolicy {
        var zeros: [String] = []
        func count(_ option: WorkerOption, _ flag: String?) throws(CommandLineError) -> Int? {
            guard let given = option.resolved(flag) else { return nil }
            if given.value == "unlimited" { return -1 }
            guard let value = Int(given.value) else { throw .usage("\(given.shown) is not a count; give a number, e.g. 7, or unlimited") }
            guard value >= 0 else { throw .usage("\(given.shown) is negative; use 1 or more, or unlimited to keep every one (as restic)") }
            if value == 0 { zeros.append(given.shown) }
            return value
        }
        var window: CalendarDuration?
        if let given = WorkerOption.keepWithin.resolved(within) {
            do { window = try CalendarDuration(parsing: given.value, field: given.name) }
            catch { throw .usage(error.description) }
            if window?.isZero == true { zeros.append(given.shown) }
        }
        let keep = RetentionPolicy.Keep(
            within: window, last: try count(.keepLast, last), hourly: try count(.keepHourly, hourly), daily: try count(.keepDaily, daily),
            weekly: try count(.keepWeekly, weekly), monthly: try count(.keepMonthly, monthly), yearly: try count(.keepYearly, yearly))
        guard !keep.isEmpty else {
            let because = zeros.isEmpty ? "" : " (\(zeros.joined(separator: ", ")): 0 is no rule, as in restic)"
            throw .usage("no keep rule is in force\(because); set at least one of --keep-within, --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly above 0, e.g. --keep-daily 7 (a prune without rules would delete every backup)")
        }
        var minimumAge = RetentionPolicy.defaultMinAge
        if let given = WorkerOption.minAge.resolved(minAge) {
            do { minimumAge = try FixedDuration(parsing: given.value, field: given.name) }
            catch { throw .usage(error.description) }
        }
        let zone = WorkerOption.timeZone.resolved(timeZone)
        let policy = RetentionPolicy(keep: keep, minAge: minimumAge, timeZone: zone?.value ?? "Etc/UTC")
        do { try policy.validate() } catch {
            throw .usage(error.field == "retention.timeZone" ? "\(zone?.shown ?? "--time-zone"): \(error.problem); \(error.fix)" : error.description)
        }
        return policy
    }

    func storageTiers() throws(CommandLineError) -> [StorageTier] {
        let given: [(text: String, option: String)]
        if tiers.isEmpty, let variable = WorkerOption.tier.resolved(nil) {
            given = variable.value.split(separator: ",").map { (String($0).trimmingCharacters(in: .whitespaces), variable.name) }
        } else {
            given = tiers.map { ($0, "--" + WorkerOption.tier.flag) }
        }
        do { return try given.map { tier throws(BackstopAPIError) in try StorageTier(parsing: tier.text, option: tier.option) } }
        catch { throw .usage(error.description) }
    }

    func grace() throws(CommandLineError) -> FixedDuration {
        guard let given = WorkerOption.orphanGrace.resolved(orphanGrace) else { return FixedDuration(seconds: 86_400) }
        do { return try FixedDuration(parsing: given.value, field: given.name) }
        catch { throw .usage(error.description) }
    }

    func pruneOptions(dryRun: Bool) throws(CommandLineError) -> PruneCommand.Options {
        PruneCommand.Options(retention: try policy(), dryRun: dryRun, orphanGrace: try grace(), tiers: try storageTiers())
    }
}

/// The decision table of a prune, newest first, then what else it did.
func decisionLines(_ result: PruneCommand.Result) -> [String] {
    var lines: [String] = []
    for decision in result.decisions {
        let verdict = decision.keep ? "keep" : (result.dryRun ? "would delete" : "deleted")
        lines.append("\(decision.id)  \(verdict.padding(toLength: 12, withPad: " ", startingAt: 0))  \(decision.reasons.joined(separator: ", "))")
    }
    for damage in result.damaged {
        lines.append("\(damage.id)  \("left alone".padding(toLength: 12, withPad: " ", startingAt: 0))  damaged: \(damage.problem)")
    }
    for move in result.tierMoves {
        lines.append("\(move.id)  \(result.dryRun ? "would move" : "moved") to \(move.storageClass)")
    }
    for orphan in result.orphans {
        lines.append("\(orphan)  \(result.dryRun ? "would remove" : "removed") leftovers (no manifest)")
    }
    for upload in result.unfinishedUploads {
        lines.append("\(upload.key)  \(result.dryRun ? "would discard" : "discarded") an unfinished upload")
    }
    return lines
}

/// One line for a report: how many were deleted and kept, and what else happened.
func pruneSummary(_ result: PruneCommand.Result) -> String {
    let deleted = result.decisions.filter { !$0.keep }.count
    var parts = ["\(result.dryRun ? "would delete" : "deleted") \(deleted) of \(result.decisions.count + result.damaged.count) backups"]
    if !result.damaged.isEmpty { parts.append("\(result.damaged.count) damaged left alone (\(result.damaged.map(\.id.rawValue).joined(separator: ", ")))") }
    parts.append("\(result.orphans.count) leftover folders")
    if !result.unfinishedUploads.isEmpty { parts.append("\(result.unfinishedUploads.count) unfinished uploads") }
    if result.walFilesDeleted > 0 { parts.append("\(result.walFilesDeleted) archived WAL files older than every kept base backup") }
    return parts.joined(separator: "; ")
}
