import ArgumentParser
import BlockingCalls
import BackstopAPI
import Engine
import Foundation
import Postgres

struct RestoreCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into a new database, checking every block on the way.",
        discussion: """
            Example:
              PGPASSWORD=secret backstop restore latest --storage file:///var/backups \\
                --target postgres://backup@localhost:5432/orders_restored
            The database is created; on any failure it is dropped again. Roles are not part of a
            database dump: create them first, or pass --no-owner.
            """)

    @Argument(help: "A backup id from `backstop list`, or latest.")
    var backup: String = "latest"

    @OptionGroup var location: LocationOptions
    @OptionGroup var encryption: EncryptionOptions
    @OptionGroup var report: ReportOptions

    @Option(name: .customLong(WorkerOption.target.flag),
            help: "libpq URL of the database to restore into (env \(WorkerOption.target.environmentVariable)).")
    var target: String?

    @Option(name: .customLong(WorkerOption.passwordFile.flag),
            help: "File holding the target database password (env \(WorkerOption.passwordFile.environmentVariable)).")
    var passwordFile: String?

    @Flag(help: "Replace the contents of an existing, non-empty database (needs --yes).")
    var clean = false

    @Flag(help: "Confirm --clean.")
    var yes = false

    @Flag(help: "Do not restore object ownership; objects belong to the restoring user.")
    var noOwner = false

    func run() async throws {
        let context = try location.context(logger: Backstop.makeLogger())
        let environment = ProcessInfo.processInfo.environment
        guard let targetURL = WorkerOption.target.resolve(flag: target, environment: environment) else {
            throw ValidationError("missing --target (or \(WorkerOption.target.environmentVariable)): the database to restore into, e.g. --target postgres://user@host:5432/orders_restored")
        }
        let settings: ConnectionSettings
        do {
            settings = try ConnectionSettings(
                targetURL, passwordFile: WorkerOption.passwordFile.resolve(flag: passwordFile, environment: environment))
        } catch { throw ValidationError(error.message) }
        let options = RestoreCommand.Options(target: settings, encryption: try encryption.source(),
                                             clean: clean, confirmed: yes, noOwner: noOwner)
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
            throw run.failed(EngineError(.restoreFailed, "restored \(result.backupID) into \(result.database), but row counts differ: \(result.rowCountDifferences.joined(separator: "; "))"))
        }
        run.succeeded { report in
            report.backupID = result.backupID
            report.message = "restored into \(result.database); row counts of \(result.tablesCompared) tables match the backup"
        }
    }
}
