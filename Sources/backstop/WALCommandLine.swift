import ArgumentParser
import BackstopAPI
import BlockingCalls
import Engine
import Foundation

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
            """)

    @Argument(help: "The file to archive: %p, relative to the data directory.")
    var path: String

    @OptionGroup(title: "WAL") var storage: StorageOption
    @OptionGroup(title: "WAL") var scope: ScopeOptions
    @OptionGroup(title: "WAL") var encryption: EncryptionOptions
    @OptionGroup(title: "WAL") var compression: CompressionOptions
    @OptionGroup(title: "S3") var s3: S3AccessOptions
    @OptionGroup(title: "S3 objects written") var s3Write: S3WriteOptions

    func run() async throws {
        let context = try WorkerSetup.context(storage: storage, s3: s3, write: s3Write, scope: scope)
        let (algorithm, level) = try compression.resolved()
        let options = WALArchiveCommand.Options(compression: algorithm, level: level, encryption: try encryption.source())
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
            """)

    @Argument(help: "The file PostgreSQL asks for: %f.")
    var file: String

    @Argument(help: "Where to put it: %p, relative to the data directory.")
    var path: String

    @OptionGroup(title: "WAL") var storage: StorageOption
    @OptionGroup(title: "WAL") var scope: ScopeOptions
    @OptionGroup(title: "WAL") var encryption: EncryptionOptions
    @OptionGroup(title: "S3") var s3: S3AccessOptions

    func run() async throws {
        let outcome: WALArchiveCommand.FetchOutcome
        do {
            let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope)
            let options = WALArchiveCommand.Options(encryption: try encryption.source())
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
