import ArgumentParser
import BackstopAPI
import BlockingCalls
import Engine
import Foundation

struct RestoreCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into a new database, checking every block on the way.",
        discussion: """
            Example:
              PGPASSWORD=secret backstop restore latest \\
                --storage file:///var/backups --environment production \\
                --target postgres://backup@localhost:5432/orders_restored
            The database is created (from template0); on any failure it is dropped
            again. template0 and template1 are refused as targets. Roles are not part
            of a database dump: create them first, or pass --no-owner.

            To put a backup back in place of a database in use:
              backstop restore latest ... --target postgres://backup@db:5432/orders \
                --replace --confirm orders
            restores into a temporary database, checks its row counts, then swaps it in
            (sessions connected to the old database are ended at the swap) and drops the
            old one; a failed restore leaves orders as it was.
            """)

    @Argument(help: "A backup id from `backstop list`, or latest.")
    var backup: String = "latest"

    @OptionGroup(title: "Restore") var storage: StorageOption
    @OptionGroup(title: "Restore") var target: TargetOptions
    @OptionGroup(title: "Restore") var scope: ScopeOptions
    @OptionGroup(title: "Restore") var encryption: EncryptionOptions
    @OptionGroup(title: "Restore") var report: ReportOptions
    @OptionGroup(title: "Restore") var tools: ToolOptions
    @OptionGroup(title: "S3") var s3: S3AccessOptions

    func run() async throws {
        guard let given = WorkerOption.target.resolved(target.target) else {
            throw CommandLineError.usage("missing --target (or \(WorkerOption.target.environmentVariable)); give the database to restore into, e.g. --target postgres://user@host:5432/orders_restored")
        }
        let settings = try connectionSettings(given, passwordFile: target.passwordFile)
        let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope, tools: tools)
        let options = RestoreCommand.Options(target: settings, encryption: try encryption.source(),
                                             mode: try target.mode(), noOwner: target.noOwner)
        let run = CommandRun(command: "restore", reportPath: report.reportPath)
        let reference = backup
        let result: RestoreCommand.Result
        do {
            result = try await runInterruptibly { try await RestoreCommand(context: context, options: options).run(reference) }
        } catch {
            throw run.failed(error)
        }
        guard result.rowCountDifferences.isEmpty else {
            // The data is restored, but the user must look before trusting it.
            throw run.failed(EngineError(.restoreFailed, "restored \(result.backupID) into \(result.database), but row counts differ: \(result.rowCountDifferences.joined(separator: "; ")); compare the tables before using it"))
        }
        run.succeeded { report in
            report.backupID = result.backupID
            report.storedBytes = result.storedBytes
            report.dumpBytes = result.dumpBytes
            report.tablesChecked = result.tablesCompared
            report.message = (result.replacedDatabase ? "replaced \(result.database) with the restored copy" : "restored into \(result.database)")
                + "; row counts of \(result.tablesCompared) tables match the backup"
        }
    }
}

/// Where a restore goes and how.
struct TargetOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.target.flag),
            help: "libpq URL of the database to restore into (env \(WorkerOption.target.environmentVariable)).")
    var target: String?

    @Option(name: .customLong(WorkerOption.passwordFile.flag),
            help: "File holding the target database password (env \(WorkerOption.passwordFile.environmentVariable)).")
    var passwordFile: String?

    @Flag(help: "Replace the contents of an existing, non-empty database in place, in one transaction (needs --yes).")
    var clean = false

    @Flag(help: "Confirm --clean.")
    var yes = false

    @Flag(help: "Restore into a temporary database, check it, then swap it in for the target (needs --confirm with the target's name).")
    var replace = false

    @Option(help: "The target database's name, confirming --replace.")
    var confirm: String?

    @Flag(help: "Do not restore object ownership; objects belong to the restoring user.")
    var noOwner = false

    func mode() throws(CommandLineError) -> RestoreCommand.Mode {
        switch (clean, replace) {
        case (true, true): throw .usage("--clean and --replace are two ways to overwrite a database; choose one")
        case (true, false): return .clean(confirmed: yes)
        case (false, true): return .replace(confirm: confirm)
        case (false, false):
            if confirm != nil { throw .usage("--confirm goes with --replace") }
            return .newDatabase
        }
    }
}
