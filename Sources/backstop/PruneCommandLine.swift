import ArgumentParser
import BlockingCalls
import BackstopAPI
import Engine
import Foundation

struct PruneCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete the backups no retention rule keeps, explaining each decision.",
        discussion: """
            Example:
              backstop prune --storage file:///var/backups --environment production \\
                --keep-within 7d --keep-daily 14 --keep-weekly 8 --keep-monthly 12 --dry-run
            A backup is kept when any rule selects it, or when it is younger than --min-age, on
            hold (`backstop hold`), or the newest verified backup. Only this environment is touched.
            """)

    @OptionGroup var location: LocationOptions
    @OptionGroup var retention: RetentionOptions
    @OptionGroup var report: ReportOptions

    @Flag(name: .customLong("dry-run"), help: "Show the decisions; delete nothing.")
    var dryRun = false

    @Option(name: .customLong(WorkerOption.output.flag), help: "text or json.")
    var output: String?

    func run() async throws {
        let context = try location.context(logger: Backstop.makeLogger())
        guard let policy = try retention.policy() else {
            throw ValidationError("no keep rule given: set at least one of --keep-within, --keep-last, --keep-hourly, --keep-daily, --keep-weekly, --keep-monthly, --keep-yearly (a prune without rules would delete everything)")
        }
        let format = WorkerOption.output.resolve(flag: output, environment: ProcessInfo.processInfo.environment) ?? "text"
        guard format == "text" || format == "json" else { throw ValidationError("--output \(format): use text or json") }
        let options = PruneCommand.Options(retention: policy, dryRun: dryRun, orphanGrace: try retention.grace(),
                                           tiers: try retention.storageTiers())
        let run = CommandRun(command: "prune", reportPath: report.reportPath, reportOnStandardOutput: format == "text")
        do {
            let result = try await runInterruptibly { try await PruneCommand(context: context, options: options).run() }
            if format == "json" {
                struct Row: Encodable { let id: String; let keep: Bool; let reasons: [String] }
                struct Document: Encodable { let dryRun: Bool; let decisions: [Row]; let leftovers: [String] }
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
                let document = Document(dryRun: result.dryRun, decisions: result.decisions.map { Row(id: $0.id.rawValue, keep: $0.keep, reasons: $0.reasons) },
                                        leftovers: result.orphans)
                print(String(decoding: try encoder.encode(document), as: UTF8.self))
            } else {
                printDecisions(result)
            }
            let deleted = result.decisions.filter { !$0.keep }.count
            run.succeeded { report in
                report.message = "\(result.dryRun ? "would delete" : "deleted") \(deleted) of \(result.decisions.count) backups; \(result.orphans.count) leftover folders"
            }
        } catch {
            throw run.failed(error)
        }
    }
}

struct HoldCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Keep a backup whatever retention says, until released.",
        discussion: """
            Example:
              backstop hold 20261121T020000Z-3f9a --reason "incident 4711" --storage s3://backups/k8s --environment production
            """)

    @Argument(help: "A backup id from `backstop list`, or latest.")
    var backup: String

    @Option(help: "Why, shown by list.")
    var reason: String?

    @OptionGroup var location: LocationOptions

    func run() async throws {
        let context = try location.context(logger: Backstop.makeLogger())
        do {
            let id = try await BackupCatalog(context: context).hold(backup, reason: reason)
            print("\(id) is on hold")
        } catch {
            throw fail(error)
        }
    }
}

struct ReleaseCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Release a hold; retention decides again.",
        discussion: """
            Example:
              backstop release 20261121T020000Z-3f9a --storage s3://backups/k8s --environment production
            """)

    @Argument(help: "The held backup's id.")
    var backup: String

    @OptionGroup var location: LocationOptions

    func run() async throws {
        let context = try location.context(logger: Backstop.makeLogger())
        do {
            let id = try await BackupCatalog(context: context).release(backup)
            print("\(id) released")
        } catch {
            throw fail(error)
        }
    }
}
