import ArgumentParser
import BlockingCalls
import BackstopAPI
import Engine
import Foundation
import Postgres

struct BackupCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Dump a database into storage, write its manifest, verify it.",
        discussion: """
            Example:
              PGPASSWORD=secret backstop backup --storage file:///var/backups \\
                --database postgres://backup@localhost:5432/orders --environment production
            Prints progress on stderr and, last, one JSON report line on stdout.
            """)

    @OptionGroup var location: LocationOptions
    @OptionGroup var database: DatabaseOptions
    @OptionGroup var encryption: EncryptionOptions
    @OptionGroup var report: ReportOptions
    @OptionGroup(title: "Retention (applied after a verified backup when any --keep-* is set)")
    var retention: RetentionOptions

    @Option(name: .customLong(WorkerOption.compression.flag),
            help: "zstd, gzip or none (env \(WorkerOption.compression.environmentVariable); default zstd).")
    var compression: String?

    @Option(name: .customLong(WorkerOption.level.flag),
            help: "Compression level (env \(WorkerOption.level.environmentVariable); default zstd 1, gzip 6; zstd 3-19 trade speed for size).")
    var level: Int?

    func run() async throws {
        let logger = Backstop.makeLogger()
        let context = try location.context(logger: logger)
        let environment = ProcessInfo.processInfo.environment
        let algorithmName = WorkerOption.compression.resolve(flag: compression, environment: environment) ?? "zstd"
        guard let algorithm = CompressionAlgorithm(rawValue: algorithmName) else {
            throw ValidationError("--compression \(algorithmName) is unknown; use zstd, gzip or none")
        }
        var resolvedLevel = level
        if resolvedLevel == nil, let text = WorkerOption.level.resolve(flag: nil, environment: environment) {
            guard let parsed = Int(text) else {
                throw ValidationError("\(WorkerOption.level.environmentVariable)=\(text) is not a number")
            }
            resolvedLevel = parsed
        }
        let options: BackupCommand.Options
        do {
            let settings = try ConnectionSettings(
                WorkerOption.database.resolve(flag: database.database, environment: environment) ?? "",
                passwordFile: WorkerOption.passwordFile.resolve(flag: database.passwordFile, environment: environment))
            options = try BackupCommand.Options(database: settings, compression: algorithm, level: resolvedLevel,
                                                encryption: try encryption.source())
        } catch let error as PostgresError {
            throw ValidationError(error.message)
        } catch let error as EngineError {
            throw ValidationError(error.message)
        }

        let pruning = try retention.policy().map { PruneCommand.Options(retention: $0, dryRun: false, orphanGrace: try retention.grace(),
                                           tiers: try retention.storageTiers()) }
        let run = CommandRun(command: "backup", reportPath: report.reportPath)
        do {
            let result = try await runInterruptibly { try await BackupCommand(context: context, options: options).run() }
            // Retention runs only after a verified backup: a failing backup never shrinks the set.
            var pruned = ""
            if let pruning {
                let outcome = try await runInterruptibly { try await PruneCommand(context: context, options: pruning).run() }
                printDecisions(outcome)
                pruned = "; pruned \(outcome.decisions.filter { !$0.keep }.count) of \(outcome.decisions.count)"
            }
            run.succeeded { report in
                report.backupID = result.manifest.id
                report.storedBytes = result.manifest.storedBytes
                report.dumpBytes = result.manifest.plaintext.size
                report.verified = result.verification.succeeded
                report.message = "\(result.manifest.tables.count) tables; verified: \(result.verification.checks.joined(separator: ", "))" + pruned
            }
        } catch {
            throw run.failed(error)
        }
    }
}
