import ArgumentParser
import BackstopAPI
import BlockingCalls
import Engine
import Foundation
import Logging

struct BackupCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Dump a database into storage, write its manifest, verify it.",
        discussion: """
            Example:
              PGPASSWORD=secret backstop backup \\
                --storage file:///var/backups --environment production \\
                --database postgres://backup@localhost:5432/orders \\
                --encryption-key-file /secrets/backup-key/key --keep-daily 7
            With --secrets / --config-maps (label selectors), the namespace's
            matching Secrets and ConfigMaps are stored too, encrypted, beside the dump
            (restore-objects puts them back); the API is reached through kubeconfig
            or the pod's ServiceAccount.
            With --physical, the whole cluster is copied by pg_basebackup (tar, no WAL)
            and committed once the WAL it needs is in the environment's archive
            (archive_command = 'backstop wal-push %p'); restore --physical recovers it
            to a point in time.
            Progress goes to stderr; one JSON report line goes to stdout, last. With
            --keep-* the backup is followed by a prune; a prune that fails is reported
            (in the report's "prune") but does not fail a backup that committed.
            """)

    // Sections in the order a user needs them; options with one title share a section.
    @OptionGroup(title: "Backup") var storage: StorageOption
    @OptionGroup(title: "Backup") var database: DatabaseOptions
    @OptionGroup(title: "Backup") var scope: ScopeOptions
    @OptionGroup(title: "Backup") var encryption: EncryptionOptions
    @OptionGroup(title: "Backup") var compression: CompressionOptions
    @OptionGroup(title: "Backup") var report: ReportOptions
    @OptionGroup(title: "Backup") var tools: ToolOptions

    @Flag(name: .customLong(WorkerOption.physical.flag),
          help: "A physical base backup of the whole cluster (pg_basebackup), for point-in-time recovery with the WAL archive (wal-push); needs archive_mode = on and a role with REPLICATION (env \(WorkerOption.physical.environmentVariable)=true).")
    var physical = false

    @OptionGroup(title: "Secrets and ConfigMaps of the namespace (read through the Kubernetes API)")
    var objects: NamespaceObjectsOptions

    @OptionGroup(title: "Retention (a prune after the backup, when any --keep-* is given)")
    var retention: RetentionOptions

    @OptionGroup(title: "S3") var s3: S3AccessOptions
    @OptionGroup(title: "S3 objects written") var s3Write: S3WriteOptions

    func run() async throws {
        let context = try WorkerSetup.context(storage: storage, s3: s3, write: s3Write, scope: scope, tools: tools)
        let options = try backupOptions(namespace: context.location.namespace)
        let pruning = retention.anyGiven ? try retention.pruneOptions(dryRun: false) : nil
        let run = CommandRun(command: "backup", reportPath: report.reportPath)
        let logger = context.logger
        let outcome: (result: BackupCommand.Result, prune: WorkerReport.Prune?)
        do {
            outcome = try await runInterruptibly {
                let result = try await BackupCommand(context: context, options: options).run()
                guard let pruning else { return (result, nil) }
                // The backup stands whatever happens now: a failed prune is reported beside it,
                // never as the backup's failure (a failed Job would run the whole backup again).
                do {
                    let pruned = try await PruneCommand(context: context, options: pruning).run()
                    for line in decisionLines(pruned) { logger.info("prune: \(line)") }
                    return (result, WorkerReport.Prune(outcome: .succeeded, deleted: pruned.decisions.filter { !$0.keep }.count,
                                                       kept: pruned.decisions.filter(\.keep).count + pruned.damaged.count,
                                                       message: pruneSummary(pruned)))
                } catch {
                    let message = CommandLineError(error).message
                    logger.warning("backup \(result.manifest.id) committed and verified, but the prune after it failed: \(message)")
                    return (result, WorkerReport.Prune(outcome: .failed, deleted: 0, kept: 0, message: message))
                }
            }
        } catch {
            throw run.failed(error)
        }
        let result = outcome.result
        run.succeeded { report in
            report.backupID = result.manifest.id
            report.storedBytes = result.manifest.storedBytes
            report.dumpBytes = result.manifest.plaintext.size
            report.verified = result.verification.succeeded
            let contents = result.manifest.physical.map { "base backup, WAL \($0.firstWALSegment)…\($0.lastWALSegment) archived" }
                ?? "\(result.manifest.tables.count) tables"
            report.message = "\(contents); verified: \(result.verification.checks.joined(separator: ", "))"
            report.prune = outcome.prune
            report.serverMajorVersion = result.manifest.database.serverMajorVersion
        }
    }

    private func backupOptions(namespace: String) throws(CommandLineError) -> BackupCommand.Options {
        let (algorithm, resolvedLevel) = try compression.resolved()
        let settings = try database.settings()
        let source = try encryption.source()
        let objects = try objects.source(namespace: namespace)
        do {
            return try BackupCommand.Options(database: settings, compression: algorithm, level: resolvedLevel, encryption: source,
                                             physical: try WorkerOption.physical.resolvedSwitch(physical), objects: objects)
        }
        catch { throw CommandLineError(error) }
    }
}

/// `--compression` and `--level`.
struct CompressionOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.compression.flag),
            help: "zstd, gzip or none (env \(WorkerOption.compression.environmentVariable); default zstd).")
    var compression: String?

    @Option(name: .customLong(WorkerOption.level.flag),
            help: "Compression level (env \(WorkerOption.level.environmentVariable); default zstd 1, gzip 6; zstd 3-19 trade speed for size).")
    var level: String?

    /// The algorithm and the level asked for (nil: the algorithm's default), checked.
    func resolved() throws(CommandLineError) -> (CompressionAlgorithm, Int?) {
        let algorithmGiven = WorkerOption.compression.resolved(compression)
        guard let algorithm = CompressionAlgorithm(rawValue: algorithmGiven?.value ?? "zstd") else {
            throw .usage("\(algorithmGiven?.shown ?? "--compression"): unknown compression; use zstd, gzip or none")
        }
        guard let given = WorkerOption.level.resolved(level) else { return (algorithm, nil) }
        guard let parsed = Int(given.value), algorithm.levels.contains(parsed) else {
            throw .usage("\(given.shown): \(algorithm.rawValue) takes levels \(algorithm.levels.lowerBound)-\(algorithm.levels.upperBound); pick one, or leave it out for the default")
        }
        return (algorithm, parsed)
    }
}
