import ArgumentParser
import BackstopAPI
import BlockingCalls
import Engine
import Foundation
import Storage

struct PruneCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "prune",
        abstract: "Delete the backups no retention rule keeps, explaining each decision.",
        discussion: """
            Example:
              backstop prune --storage file:///var/backups --environment production \\
                --keep-within 7d --keep-daily 14 --keep-weekly 8 --keep-monthly 12 \\
                --dry-run
            The rules are restic's: a backup is kept when any rule selects it, or when
            it is younger than --min-age, on hold (`backstop hold`), or the newest
            verified backup. 0 is no rule, and no rule at all is refused. Windows
            count back from the newest backup: 6mo is six months, a bare m is refused.
            A backup whose manifest cannot be read is reported and left alone.
            Leftovers of killed runs are removed once older than --orphan-grace.
            Only this environment is touched.
            """)

    @OptionGroup(title: "Prune") var storage: StorageOption
    @OptionGroup(title: "Prune") var scope: ScopeOptions
    @OptionGroup(title: "Prune") var mode: DryRunOption
    @OptionGroup(title: "Prune") var output: OutputOption
    @OptionGroup(title: "Prune") var report: ReportOptions
    @OptionGroup(title: "Retention") var retention: RetentionOptions
    @OptionGroup(title: "S3") var s3: S3AccessOptions
    @OptionGroup(title: "S3 objects written (prune records, tier moves)") var s3Write: S3WriteOptions

    func run() async throws {
        let options = try retention.pruneOptions(dryRun: mode.dryRun)
        let format = try output.format()
        let context = try WorkerSetup.context(storage: storage, s3: s3, write: s3Write, scope: scope)
        let run = CommandRun(command: "prune", reportPath: report.reportPath, reportOnStandardOutput: format == .text)
        let result: PruneCommand.Result
        do {
            result = try await runInterruptibly { try await PruneCommand(context: context, options: options).run() }
        } catch {
            throw run.failed(error)
        }
        if format == .text {
            decisionLines(result).forEach { print($0) }
        } else {
            struct Row: Encodable { let id: String; let keep: Bool; let reasons: [String] }
            struct Damaged: Encodable { let id: String; let problem: String }
            struct Move: Encodable { let id: String; let storageClass: String }
            struct Document: Encodable {
                let dryRun: Bool
                let decisions: [Row]
                let damaged: [Damaged]
                let tierMoves: [Move]
                let leftovers: [String]
                let unfinishedUploads: [String]
            }
            try format.print(Document(
                dryRun: result.dryRun, decisions: result.decisions.map { Row(id: $0.id.rawValue, keep: $0.keep, reasons: $0.reasons) },
                damaged: result.damaged.map { Damaged(id: $0.id.rawValue, problem: $0.problem) },
                tierMoves: result.tierMoves.map { Move(id: $0.id.rawValue, storageClass: $0.storageClass) },
                leftovers: result.orphans, unfinishedUploads: result.unfinishedUploads.map(\.key)))
        }
        run.succeeded { report in report.message = pruneSummary(result) }
    }
}

struct HoldCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hold",
        abstract: "Keep a backup whatever retention says, until released.",
        discussion: """
            Example:
              backstop hold 20261121T020000Z-3f9a --reason "incident 4711" \\
                --storage s3://acme-backups/k8s --environment production
            A held backup keeps its first hold: holding it again for another reason
            is refused (release it first). `backstop list` shows holds and reasons.
            """)

    @Argument(help: "A backup id from `backstop list`, or latest.")
    var backup: String

    @OptionGroup(title: "Hold") var reason: ReasonOption
    @OptionGroup(title: "Hold") var storage: StorageOption
    @OptionGroup(title: "Hold") var scope: ScopeOptions
    @OptionGroup(title: "S3") var s3: S3AccessOptions
    @OptionGroup(title: "S3 objects written (the hold)") var s3Write: S3WriteOptions

    func run() async throws {
        let context = try WorkerSetup.context(storage: storage, s3: s3, write: s3Write, scope: scope)
        do {
            switch try await BackupCatalog(context: context).hold(backup, reason: reason.reason) {
            case .held(let hold):
                print("\(hold.backupID) is on hold" + (hold.reason.map { ": \($0)" } ?? ""))
            case .alreadyHeld(let hold):
                print("\(hold.backupID) was already on hold since \(hold.heldAt)" + (hold.reason.map { ": \($0)" } ?? "") + "; unchanged")
            }
        } catch {
            throw CommandLineError(error)
        }
    }
}

struct ReleaseCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "release",
        abstract: "Release a hold; retention decides again.",
        discussion: """
            Example:
              backstop release 20261121T020000Z-3f9a \\
                --storage s3://acme-backups/k8s --environment production
            """)

    @Argument(help: "The held backup's id, or latest.")
    var backup: String

    @OptionGroup(title: "Release") var storage: StorageOption
    @OptionGroup(title: "Release") var scope: ScopeOptions
    @OptionGroup(title: "S3") var s3: S3AccessOptions

    func run() async throws {
        let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope)
        do {
            let id = try await BackupCatalog(context: context).release(backup)
            print("\(id) released")
        } catch {
            throw CommandLineError(error)
        }
    }
}

/// `--dry-run`.
struct DryRunOption: ParsableArguments {
    @Flag(name: .customLong("dry-run"), help: "Show the decisions; delete nothing.")
    var dryRun = false
}

/// `--reason`.
struct ReasonOption: ParsableArguments {
    @Option(help: "Why, shown by list.")
    var reason: String?
}
