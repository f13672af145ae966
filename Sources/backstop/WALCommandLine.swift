import ArgumentParser
import BackstopAPI
import BlockingCalls
import Engine
import Foundation
import Logging
import Postgres
import Storage

/// `backstop wal-push %p`: PostgreSQL's `archive_command`.
struct WALPushCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal-push",
        abstract: "Archive a WAL file (archive_command = 'backstop wal-push %p').",
        discussion: """
            Example (postgresql.conf, with the location in the server's environment):
              archive_mode = on
              archive_command = 'backstop wal-push %p'
            The file is compressed, encrypted and hashed into
            <environment>/wal/<timeline>/<file>, and its record (plaintext size and
            SHA-256) is written last. Pushing a file that is archived with the same
            contents succeeds; a different file under the same name is refused (exit 1)
            and never overwritten. Exits 0 only when the file is safely stored.
            With --push-ahead N --spool-dir DIR, a push also archives up to N other
            segments PostgreSQL has ready (archive_status/*.ready), in parallel, and
            notes each in DIR: PostgreSQL's call for one of them returns at once.
            """)

    @Argument(help: "The file to archive: %p, relative to the data directory.")
    var path: String

    @OptionGroup(title: "WAL") var storage: StorageOption
    @OptionGroup(title: "WAL") var scope: ScopeOptions
    @OptionGroup(title: "WAL") var encryption: EncryptionOptions
    @OptionGroup(title: "WAL") var compression: CompressionOptions

    @Option(name: .customLong(WorkerOption.pushAhead.flag),
            help: "Also archive up to N other segments PostgreSQL has ready, in parallel, so its next calls return at once (env \(WorkerOption.pushAhead.environmentVariable); needs --spool-dir).")
    var pushAhead: String?

    @Option(name: .customLong(WorkerOption.spoolDir.flag),
            help: "A folder of the server's (outside the data directory) where push-ahead notes what it archived (env \(WorkerOption.spoolDir.environmentVariable)).")
    var spoolDir: String?

    @OptionGroup(title: "S3") var s3: S3AccessOptions
    @OptionGroup(title: "S3 objects written") var s3Write: S3WriteOptions

    func run() async throws {
        let context = try WorkerSetup.context(storage: storage, s3: s3, write: s3Write, scope: scope)
        let (algorithm, level) = try compression.resolved()
        let (ahead, spool) = try spooling(.pushAhead, pushAhead, spoolDir, purpose: "notes the segments it archived ahead")
        let options = WALArchiveCommand.Options(compression: algorithm, level: level, encryption: try encryption.source(),
                                                pushAhead: ahead, spoolDirectory: spool)
        let path = self.path
        do {
            _ = try await runInterruptibly { try await WALArchiveCommand(context: context, options: options).push(path) }
        } catch {
            throw CommandLineError(error)
        }
    }
}

/// `backstop wal-fetch %f %p`: PostgreSQL's `restore_command`. Its exit codes are PostgreSQL's,
/// not the other commands' (see `exitCode`).
struct WALFetchCommandLine: AsyncParsableCommand {
    /// Any failure but "not in the archive". PostgreSQL reads 1–125 as "no such file", ends
    /// recovery there and promotes; above 125 it stops recovery instead, which is what a
    /// damaged segment, a wrong key or an unreachable storage must do.
    static let failureExitCode: Int32 = 255

    static let configuration = CommandConfiguration(
        commandName: "wal-fetch",
        abstract: "Restore an archived WAL file (restore_command = 'backstop wal-fetch %f %p').",
        discussion: """
            Example (postgresql.conf of a server in recovery):
              restore_command = 'backstop wal-fetch %f %p'
            Exit codes, as PostgreSQL reads them: 0 the file is in place (checked
            against its record: sizes, SHA-256 of the stored and the restored bytes);
            1 the file is not in the archive (the end of the archive: recovery ends
            there); 255 any other failure, usage errors included (a damaged file, a
            wrong key, unreachable storage): recovery stops instead of ending early.
            With --prefetch N --spool-dir DIR, a fetch also restores up to N following
            segments, checked, into DIR, and the calls for them move them into place.
            """)

    @Argument(help: "The file PostgreSQL asks for: %f.")
    var file: String

    @Argument(help: "Where to put it: %p, relative to the data directory.")
    var path: String

    @OptionGroup(title: "WAL") var storage: StorageOption
    @OptionGroup(title: "WAL") var scope: ScopeOptions
    @OptionGroup(title: "WAL") var encryption: EncryptionOptions

    @Option(name: .customLong(WorkerOption.prefetch.flag),
            help: "Also restore up to N following segments, checked, into --spool-dir, so the next calls need no storage (env \(WorkerOption.prefetch.environmentVariable)).")
    var prefetch: String?

    @Option(name: .customLong(WorkerOption.spoolDir.flag),
            help: "A folder of the server's (outside the data directory) for prefetched segments (env \(WorkerOption.spoolDir.environmentVariable)).")
    var spoolDir: String?

    @OptionGroup(title: "S3") var s3: S3AccessOptions

    func run() async throws {
        let outcome: WALArchiveCommand.FetchOutcome
        do {
            let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope)
            let (ahead, spool) = try spooling(.prefetch, prefetch, spoolDir, purpose: "keeps the segments it fetched ahead")
            let options = WALArchiveCommand.Options(encryption: try encryption.source(), prefetch: ahead, spoolDirectory: spool)
            let (file, path) = (self.file, self.path)
            outcome = try await runInterruptibly { try await WALArchiveCommand(context: context, options: options).fetch(file, to: path) }
        } catch {
            Backstop.printError(CommandLineError(error).message)
            throw ExitCode(Self.failureExitCode)
        }
        if case .notArchived = outcome {
            // Not an error: PostgreSQL asks for files past the archive's end on every recovery.
            throw ExitCode(1)
        }
    }
}

/// `backstop wal-status`: the newest archived WAL file and, with a database, whether
/// archive_command is failing. The controller runs it every few minutes for environments with
/// walArchiving and reads its report (condition ContinuousArchiving, the WAL metrics).
struct WALStatusCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "wal-status",
        abstract: "Report the WAL archive's newest file and the server's archiver (pg_stat_archiver).",
        discussion: """
            Example:
              backstop wal-status --storage s3://acme-backups/k8s --environment production \\
                --database postgres://backup@db:5432/postgres
            Exits 0 when the archive could be read, whatever it says; the report line
            (stdout, and --report-path) carries walArchiving: lastArchivedAt,
            lastArchivedFile, failedCount, failing.
            """)

    @OptionGroup(title: "WAL") var storage: StorageOption
    @OptionGroup(title: "WAL") var scope: ScopeOptions
    @OptionGroup(title: "WAL") var database: DatabaseOptions
    @OptionGroup(title: "WAL") var report: ReportOptions
    @OptionGroup(title: "S3") var s3: S3AccessOptions

    func run() async throws {
        let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope)
        let settings = WorkerOption.database.resolved(database.database) == nil ? nil : try database.settings()
        let run = CommandRun(command: "wal-status", reportPath: report.reportPath)
        let outcome: (status: WALArchiveStatus, serverProblem: String?)
        do { outcome = try await runInterruptibly { try await WALArchiveStatus.read(context, database: settings) } }
        catch { throw run.failed(error) }
        let (status, problem) = outcome
        let logger = context.logger
        if let newest = status.newest {
            logger.info("newest archived WAL: \(newest.fileName), archived \(newest.archivedAt)")
        } else {
            logger.warning("the WAL archive in \(context.storage.displayName)/\(context.location.walPrefix) is empty")
        }
        if let archiver = status.archiver, archiver.failing {
            logger.warning("archive_command is failing: last failed \(archiver.lastFailedWAL ?? "?"), \(archiver.failedCount) failures")
        }
        if let problem { logger.warning("cannot ask the server about its archiver: \(problem)") }
        run.succeeded { report in
            report.walArchiving = WorkerReport.WALArchiving(
                lastArchivedAt: status.newest?.archivedAt, lastArchivedFile: status.newest?.fileName,
                failedCount: status.archiver?.failedCount, failing: status.archiver?.failing,
                lastFailedFile: status.archiver?.lastFailedWAL, serverProblem: problem)
            report.message = status.newest.map { "last archived \($0.fileName) at \($0.archivedAt)" } ?? "the archive is empty"
        }
    }
}

/// `--push-ahead` or `--prefetch` (0–8 segments: each one in flight holds its stored and its
/// plain bytes, 32 MiB for a default segment) and the `--spool-dir` they need.
func spooling(_ option: WorkerOption, _ flag: String?, _ spoolDir: String?, purpose: String) throws(CommandLineError) -> (Int, String?) {
    var count = 0
    if let given = option.resolved(flag) {
        guard let parsed = Int(given.value), (0...8).contains(parsed) else {
            throw .usage("\(given.shown): give a number of segments from 0 to 8")
        }
        count = parsed
    }
    let spool = WorkerOption.spoolDir.resolved(spoolDir)?.value
    if count > 0, spool == nil {
        throw .usage("--\(option.flag) needs --spool-dir (or \(WorkerOption.spoolDir.environmentVariable)): a folder where it \(purpose)")
    }
    return (count, spool)
}
