import ArgumentParser
import BackstopAPI
import BlockingCalls
import Engine
import Foundation

struct DrillCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "drill",
        abstract: "Prove a backup restores: restore it into a scratch database, compare schema and row counts, drop it, record the time.",
        discussion: """
            Example:
              PGPASSWORD=secret backstop drill latest \\
                --storage file:///var/backups --environment production \\
                --scratch postgres://drill@scratch-db:5432/postgres
            The drill creates its own database (backstop_drill_<run>) on the scratch
            server and drops it afterwards; objects are restored without owners. The
            outcome and the restore time in seconds go to drills/<time>-<run>.json
            beside the backups, where `backstop doctor` reads them. Exits 1 when the
            backup does not restore, or its schema or row counts differ.
            """)

    @Argument(help: "A backup id from `backstop list`, or latest.")
    var backup: String = "latest"

    @OptionGroup(title: "Drill") var storage: StorageOption
    @OptionGroup(title: "Drill") var scratch: ScratchOptions
    @OptionGroup(title: "Drill") var scope: ScopeOptions
    @OptionGroup(title: "Drill") var encryption: EncryptionOptions
    @OptionGroup(title: "Drill") var report: ReportOptions
    @OptionGroup(title: "Drill") var tools: ToolOptions
    @OptionGroup(title: "S3") var s3: S3AccessOptions

    func run() async throws {
        guard let given = WorkerOption.scratch.resolved(scratch.scratch) else {
            throw CommandLineError.usage("missing --scratch (or \(WorkerOption.scratch.environmentVariable)); give a server the drill may create a database on, e.g. --scratch postgres://drill@scratch-db:5432/postgres")
        }
        let settings = try connectionSettings(given, passwordFile: scratch.passwordFile)
        let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope, tools: tools)
        let options = DrillCommand.Options(scratch: settings, encryption: try encryption.source())
        let run = CommandRun(command: "drill", reportPath: report.reportPath)
        let reference = backup
        do {
            let record = try await runInterruptibly { try await DrillCommand(context: context, options: options).run(reference) }
            run.succeeded { report in
                report.backupID = record.backupID
                report.restoreSeconds = record.restoreSeconds
                report.tablesChecked = record.tablesChecked
                report.verified = true
                report.message = record.message
            }
        } catch {
            throw run.failed(error, verified: false)
        }
    }
}

/// Where a drill restores.
struct ScratchOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.scratch.flag),
            help: "libpq URL of a server the drill may create and drop a database on (env \(WorkerOption.scratch.environmentVariable)).")
    var scratch: String?

    @Option(name: .customLong(WorkerOption.passwordFile.flag),
            help: "File holding the scratch server's password (env \(WorkerOption.passwordFile.environmentVariable)).")
    var passwordFile: String?
}
