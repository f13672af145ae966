import ArgumentParser
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
        let started = Date().timeIntervalSince1970
        let reference = backup
        do {
            let result = try await runInterruptibly { try await RestoreCommand(context: context, options: options).run(reference) }
            let now = Date().timeIntervalSince1970
            let matched = result.rowCountDifferences.isEmpty
            emit(WorkerReport(
                command: "restore", outcome: matched ? .succeeded : .failed, backupID: result.backupID,
                startedAt: UTCTimestamp(secondsSince1970: Int64(started)), completedAt: UTCTimestamp(secondsSince1970: Int64(now)),
                durationSeconds: now - started,
                message: matched
                    ? "restored into \(result.database); row counts of \(result.tablesCompared) tables match the backup"
                    : "restored into \(result.database), but row counts differ: \(result.rowCountDifferences.joined(separator: "; "))"),
                reportPath: report.reportPath)
            if !matched { throw ExitCode.failure }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            let now = Date().timeIntervalSince1970
            emit(WorkerReport(
                command: "restore", outcome: .failed, startedAt: UTCTimestamp(secondsSince1970: Int64(started)),
                completedAt: UTCTimestamp(secondsSince1970: Int64(now)), durationSeconds: now - started,
                message: (error as? EngineError)?.message ?? "\(error)"), reportPath: report.reportPath)
            throw fail(error)
        }
    }
}
