import ArgumentParser
import BackstopAPI
import BlockingCalls
import Engine
import Foundation
import Logging

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

            Point-in-time recovery of a physical base backup (backup --physical) with the
            WAL archive (wal-push):
              backstop restore --physical --data-dir /var/lib/postgresql/17/restored \
                --target-time 2026-12-01T10:15:00Z --start --run-as postgres ...
            picks the newest base backup that ends before the target, unpacks it into
            the empty --data-dir, writes recovery.signal and the recovery settings
            (restore_command = 'backstop wal-fetch %f %p' with these storage options,
            recovery_target_*, promote) into postgresql.auto.conf. With --start it
            starts PostgreSQL (pg_ctl, log in backstop-recovery.log), waits for
            recovery to end and checks where it stopped: an archive that ends before
            the target fails the restore, and the server is not promoted.
            """)

    @Argument(help: "A backup id from `backstop list`, or latest.")
    var backup: String = "latest"

    @OptionGroup(title: "Restore") var storage: StorageOption
    @OptionGroup(title: "Restore") var target: TargetOptions
    @OptionGroup(title: "Restore") var scope: ScopeOptions
    @OptionGroup(title: "Restore") var encryption: EncryptionOptions
    @OptionGroup(title: "Restore") var report: ReportOptions
    @OptionGroup(title: "Restore") var tools: ToolOptions
    @Flag(help: "After the database, create the Secrets and ConfigMaps the backup stored that the namespace lacks (as restore-objects --apply; existing ones are kept).")
    var withObjects = false

    @OptionGroup(title: "Point-in-time recovery (--physical)") var recovery: RecoveryOptions
    @OptionGroup(title: "S3") var s3: S3AccessOptions

    func run() async throws {
        if recovery.physical { return try await recoverPhysical() }
        try recovery.checkUnused()
        guard let given = WorkerOption.target.resolved(target.target) else {
            throw CommandLineError.usage("missing --target (or \(WorkerOption.target.environmentVariable)); give the database to restore into, e.g. --target postgres://user@host:5432/orders_restored")
        }
        let settings = try connectionSettings(given, passwordFile: target.passwordFile)
        let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope, tools: tools)
        let encryptionSource = try encryption.source()
        let options = RestoreCommand.Options(target: settings, encryption: encryptionSource,
                                             mode: try target.mode(), noOwner: target.noOwner)
        let objectsOptions = withObjects
            ? RestoreObjectsCommand.Options(encryption: encryptionSource, mode: .apply(overwrite: false), targetNamespace: nil,
                                            client: try kubernetesClient(purpose: "--with-objects writes"))
            : nil
        let run = CommandRun(command: "restore", reportPath: report.reportPath)
        let reference = backup
        let result: RestoreCommand.Result
        var objectsLine = ""
        do {
            result = try await runInterruptibly { try await RestoreCommand(context: context, options: options).run(reference) }
            if let objectsOptions {
                // The same backup the database came from, by id: `latest` may have moved on.
                let id = result.backupID.rawValue
                let restored = try await runInterruptibly { try await RestoreObjectsCommand(context: context, options: objectsOptions).run(id) }
                for item in restored.items { context.logger.info("objects: \(item.line)") }
                let failures = restored.failures
                guard failures.isEmpty else {
                    throw EngineError(.kubernetes, "restored \(result.backupID) into \(result.database), but \(failures.count) Secret(s) or ConfigMap(s) could not be created: \(failures.map { "\($0.kind)/\($0.name)" }.joined(separator: ", ")); see the log")
                }
                let created = restored.items.filter { $0.action == .create }.count
                objectsLine = "; \(created) Secret(s) and ConfigMap(s) created, \(restored.items.count - created) kept or skipped"
            }
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
                + "; row counts of \(result.tablesCompared) tables match the backup" + objectsLine
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

extension RestoreCommandLine {
    /// `--physical`: a base backup and the WAL archive into a data directory.
    private func recoverPhysical() async throws {
        let targetGiven = target.target
        let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope, tools: tools)
        let options = try recovery.options(target: targetGiven, encryption: encryption, restoreCommand: try restoreCommand(executable: recovery.walFetchPath))
        let run = CommandRun(command: "restore", reportPath: report.reportPath)
        let reference = backup
        let result: PhysicalRestoreCommand.Result
        do {
            result = try await runInterruptibly { try await PhysicalRestoreCommand(context: context, options: options).run(reference) }
        } catch {
            throw run.failed(error)
        }
        run.succeeded { report in
            report.backupID = result.backupID
            report.dumpBytes = result.restoredBytes
            if let recoveredTo = result.recoveredTo {
                report.message = "recovered base backup \(result.backupID) into \(result.dataDirectory): \(recoveredTo); promoted on timeline \(result.timeline.map(String.init) ?? "?")"
            } else {
                report.message = "base backup \(result.backupID) unpacked into \(result.dataDirectory) with recovery settings to \(options.target); start PostgreSQL on it to recover"
            }
        }
    }

    /// `restore_command`: this binary's `wal-fetch` with the same storage, scope, key and S3
    /// options, as absolute paths (PostgreSQL runs it in the data directory). Credentials are
    /// not written: the server reads them from its environment or --s3-credentials-dir.
    private func restoreCommand(executable given: String?) throws(CommandLineError) -> String {
        if let given, !given.hasPrefix("/") { throw .usage("--wal-fetch-path \(given) is relative: give the binary's absolute path in the server's container") }
        let executable = given ?? (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var words = [executable, "wal-fetch", "%f", "%p"]
        let passedOn: [(WorkerOption, String?)] = [
            (.storage, storage.storage), (.namespace, scope.namespace), (.policy, scope.policy), (.environment, scope.environment),
            (.encryptionKeyFile, encryption.encryptionKeyFile), (.passphraseFile, encryption.passphraseFile),
            (.s3Endpoint, s3.endpoint), (.s3Region, s3.region), (.s3CAFile, s3.caFile), (.s3CredentialsDir, s3.credentialsDirectory),
        ]
        let paths: Set<WorkerOption> = [.encryptionKeyFile, .passphraseFile, .s3CAFile, .s3CredentialsDir]
        for (option, flag) in passedOn {
            guard let value = option.resolved(flag)?.value else { continue }
            let absolute = paths.contains(option) && !value.hasPrefix("/") ? FileManager.default.currentDirectoryPath + "/" + value : value
            if option == .storage, value.hasPrefix("file://"), !value.hasPrefix("file:///") {
                throw .usage("--storage \(value) is relative: recovery runs wal-fetch in the data directory; give an absolute file:/// path")
            }
            words += ["--" + option.flag, absolute]
        }
        if try WorkerOption.s3PathStyle.resolvedSwitch(s3.pathStyle) { words.append("--" + WorkerOption.s3PathStyle.flag) }
        // The spool is the server's folder, written by restore_command as the server's user.
        let (ahead, spool) = try spooling(.prefetch, recovery.prefetch, recovery.spoolDir, purpose: "keeps the segments restore_command fetched ahead")
        if ahead > 0, let spool {
            guard spool.hasPrefix("/") else { throw .usage("--spool-dir \(spool) is relative: give an absolute path the server may write") }
            words += ["--" + WorkerOption.prefetch.flag, String(ahead), "--" + WorkerOption.spoolDir.flag, spool]
        }
        // PostgreSQL substitutes %f and %p (left unquoted) and reads %% as a percent sign, then
        // hands the command to sh: every other word is single-quoted for sh, its % doubled.
        return words.map { word in
            guard word != "%f", word != "%p" else { return word }
            return "'" + word.replacingOccurrences(of: "%", with: "%%").replacingOccurrences(of: "'", with: "'\\''") + "'"
        }.joined(separator: " ")
    }
}

/// `--physical` and its recovery target, data directory and server.
struct RecoveryOptions: ParsableArguments {
    @Flag(help: "Recover a physical base backup into --data-dir, replaying archived WAL to the target.")
    var physical = false

    @Option(help: ArgumentHelp("Stop at this time: RFC 3339 with Z or an offset.", valueName: "time"))
    var targetTime: String?

    @Option(help: ArgumentHelp("Stop at this WAL location, e.g. 0/3000028.", valueName: "lsn"))
    var targetLsn: String?

    @Option(help: ArgumentHelp("Stop at this restore point (pg_create_restore_point).", valueName: "name"))
    var targetName: String?

    @Option(help: ArgumentHelp("An empty or new folder for the recovered cluster.", valueName: "directory"))
    var dataDir: String?

    @Flag(help: "Start PostgreSQL on it, wait for recovery to end and check where it stopped.")
    var start = false

    @Option(help: ArgumentHelp("With --start as root: the user the server runs as (pg_ctl refuses root; default the data directory's owner); the files are given to it.", valueName: "user"))
    var runAs: String?

    @Option(help: ArgumentHelp("Give the restored files to this user (name or uid; 999 for the official postgres image).", valueName: "user"))
    var owner: String?

    @Option(help: ArgumentHelp("Run the recovered server on this port instead of the backed-up one.", valueName: "port"))
    var port: Int?

    @Option(help: ArgumentHelp("The worker binary as the server's container has it, for restore_command (default: this binary); /backstop/bin/backstop with the bundle of k8s/examples/postgres-archiving.yaml.", valueName: "path"))
    var walFetchPath: String?

    @Option(help: ArgumentHelp("restore_command prefetches up to N following segments into --spool-dir (wal-fetch --prefetch).", valueName: "n"))
    var prefetch: String?

    @Option(help: ArgumentHelp("With --prefetch: a folder the server may write, outside the data directory.", valueName: "directory"))
    var spoolDir: String?

    @Option(help: ArgumentHelp("latest: follow every later timeline in the archive (PostgreSQL's default); current: stay on the base backup's; or a timeline number.", valueName: "latest|current|N"))
    var targetTimeline: String = "latest"

    @Option(help: ArgumentHelp("preserve: the recovered server archives as its source did, on a new timeline (it takes the source's place); off: it does not archive (a copy to look at).", valueName: "preserve|off"))
    var archiveMode: String = "preserve"

    /// Refuses recovery options without --physical: they would be silently ignored.
    func checkUnused() throws(CommandLineError) {
        let values: [(flag: String, value: String?)] = [
            ("--target-time", targetTime), ("--target-lsn", targetLsn), ("--target-name", targetName), ("--data-dir", dataDir),
            ("--run-as", runAs), ("--owner", owner), ("--port", port.map(String.init)),
            ("--archive-mode", archiveMode == "preserve" ? nil : archiveMode),
            ("--target-timeline", targetTimeline == "latest" ? nil : targetTimeline), ("--wal-fetch-path", walFetchPath), ("--start", start ? "" : nil),
            ("--prefetch", prefetch), ("--spool-dir", spoolDir),
        ]
        let given = values.filter { $0.value != nil }.map(\.flag)
        if let first = given.first { throw .usage("\(first) goes with --physical (point-in-time recovery of a base backup)") }
    }

    func options(target: String?, encryption: EncryptionOptions, restoreCommand: String) throws(CommandLineError) -> PhysicalRestoreCommand.Options {
        guard let dataDir, !dataDir.isEmpty else {
            throw .usage("--physical needs --data-dir: an empty or new folder for the recovered cluster")
        }
        if let target, target != "immediate" {
            throw .usage("--target \(target): with --physical, --target takes only immediate (stop once the base backup is consistent); use --target-time, --target-lsn or --target-name for a point")
        }
        let recoveryTarget: RecoveryTarget
        do {
            recoveryTarget = try RecoveryTarget.chosen(time: targetTime, lsn: targetLsn, name: targetName, immediate: target != nil, fields: .commandLine)
        } catch {
            throw .usage(error.description)
        }
        if let port, !(1...65535).contains(port) { throw .usage("--port \(port) is not a TCP port") }
        guard ["latest", "current"].contains(targetTimeline) || UInt32(targetTimeline).map({ $0 > 0 }) == true else {
            throw .usage("--target-timeline \(targetTimeline): use latest, current or a timeline number such as 2")
        }
        guard ["preserve", "off"].contains(archiveMode) else {
            throw .usage("--archive-mode \(archiveMode): use preserve (the recovered server archives like its source) or off (a copy that does not archive)")
        }
        var user = runAs ?? owner
        if let runAs, let owner, runAs != owner {
            throw .usage("--run-as \(runAs) and --owner \(owner) differ: the server must own its files; give one")
        }
        let absolute = dataDir.hasPrefix("/") ? dataDir : FileManager.default.currentDirectoryPath + "/" + dataDir
        if start, getuid() == 0, user == nil {
            // pg_ctl refuses root: an existing (empty) data directory's owner is the server's user.
            var info = stat()
            guard stat(absolute, &info) == 0, info.st_uid != 0 else {
                throw .usage("--start as root needs --run-as USER (pg_ctl refuses root): the user PostgreSQL runs as, e.g. postgres")
            }
            user = String(info.st_uid)
        }
        let resolvedOwner: PhysicalRestoreCommand.Owner?
        do { resolvedOwner = try user.map { (name: String) throws(EngineError) in try PhysicalRestoreCommand.Owner.lookUp(name) } }
        catch { throw CommandLineError(error) }
        return PhysicalRestoreCommand.Options(target: recoveryTarget, dataDirectory: absolute,
                                              encryption: try encryption.source(), restoreCommand: restoreCommand,
                                              start: start, owner: resolvedOwner, port: port, keepsArchiving: archiveMode == "preserve", timeline: targetTimeline)
    }
}
