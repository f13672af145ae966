public import BackstopAPI
internal import BlockingCalls
internal import Foundation
internal import Logging
internal import Postgres
internal import Storage
#if canImport(Glibc)
internal import Glibc
#endif

/// `backstop restore --physical`: point-in-time recovery. Picks the newest base backup that
/// ends before the target, unpacks it (every block checked) into an empty data directory,
/// writes `recovery.signal` and the recovery settings (WAL through `backstop wal-fetch`), and
/// optionally starts PostgreSQL and waits for recovery to end. The point reached is read from
/// the server's log: a recovery that stops short of the target (the archive ends first)
/// fails, and PostgreSQL (13 and newer) shuts down instead of promoting.
public struct PhysicalRestoreCommand: Sendable {
    public struct Options: Sendable {
        public var target: RecoveryTarget
        public var dataDirectory: String
        public var encryption: EncryptionSource
        /// The complete `restore_command`, with `%f` and `%p`: the worker itself with the same
        /// storage and environment options (the CLI builds it).
        public var restoreCommand: String
        /// Start PostgreSQL on the restored directory and wait for recovery to end.
        public var start: Bool
        /// The user the files belong to and the server runs as, when run as root (pg_ctl
        /// refuses root); `nil` keeps the files as written (run as the server's user).
        public var owner: Owner?
        /// Overrides the backed-up `port`, so a copy can start beside its source.
        public var port: Int?
        /// How long recovery may take once started.
        public var recoveryTimeout: Duration
        /// Whether the recovered server archives as its source did (into the same
        /// environment, on a new timeline: right for a server that takes the source's place)
        /// or not at all (a copy to look at, which must not write into the source's archive).
        public var keepsArchiving: Bool
        /// `recovery_target_timeline`: `latest` (PostgreSQL's default: follow every later
        /// timeline in the archive), `current` (the base backup's), or a number.
        public var timeline: String

        public init(target: RecoveryTarget, dataDirectory: String, encryption: EncryptionSource, restoreCommand: String,
                    start: Bool = false, owner: Owner? = nil, port: Int? = nil, recoveryTimeout: Duration = .seconds(3600),
                    keepsArchiving: Bool = true, timeline: String = "latest") {
            self.target = target
            self.dataDirectory = dataDirectory
            self.encryption = encryption
            self.restoreCommand = restoreCommand
            self.start = start
            self.owner = owner
            self.port = port
            self.recoveryTimeout = recoveryTimeout
            self.keepsArchiving = keepsArchiving
            self.timeline = timeline
        }
    }

    /// A user (by name, for `runuser`) and its ids.
    public struct Owner: Sendable, Equatable {
        public let name: String
        public let uid: UInt32
        public let gid: UInt32

        /// A user name or a numeric uid, looked up in the passwd database.
        public static func lookUp(_ user: String) throws(EngineError) -> Owner {
            let entry = UInt32(user).map { getpwuid($0) } ?? getpwnam(user)
            guard let entry else {
                throw EngineError(.invalidOption, "no user \(user) on this machine: name the user PostgreSQL runs as (postgres; 999 in the official image)")
            }
            return Owner(name: String(cString: entry.pointee.pw_name), uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid)
        }
    }

    public struct Result: Sendable {
        public let backupID: BackupID
        public let dataDirectory: String
        public let restoredBytes: Int64
        /// The server's own line about where recovery stopped, when it was started.
        public let recoveredTo: String?
        /// The timeline the promoted server runs on, when it was started.
        public let timeline: UInt32?
    }

    let context: WorkerContext
    let options: Options

    public init(context: WorkerContext, options: Options) {
        self.context = context
        self.options = options
    }

    public func run(_ reference: String) async throws(EngineError) -> Result {
        let catalog = BackupCatalog(context: context)
        let entry = try await chooseBaseBackup(reference, catalog: catalog)
        let manifest = entry.manifest
        context.logger.info("recovering base backup \(manifest.id) (WAL from \(manifest.physical?.firstWALSegment ?? "?")) into \(options.dataDirectory), to \(options.target)")
        let key = try options.encryption.key(for: manifest)
        let tools: PostgresTools
        do { tools = try await PostgresTools.locate(binDirectory: context.postgresBinDirectory) }
        catch { throw EngineError.wrapping(error) }
        if options.start {
            // Before anything is written: a missing server package is found now, not after the copy.
            do { _ = try tools.program("pg_ctl"); _ = try tools.program("pg_controldata") }
            catch { throw EngineError.wrapping(error) }
        }
        let createdDirectory = try prepareDataDirectory()
        let restoredBytes: Int64
        do throws(EngineError) {
            restoredBytes = try await BackupReadLease(context: context).holding(manifest.id) { () throws(EngineError) -> Int64 in
                let stream = PlaintextStream(storage: context.storage, location: context.location, manifest: manifest, key: key)
                try await stream.checkSizes()
                let digest = try await stream.run(into: nil, consumerMayStopEarly: false, baseBackup: .extract(into: options.dataDirectory, durable: true),
                                                  progress: TransferProgress())
                try stream.check(digest)
                try (digest.baseBackup ?? BaseBackupContents()).checkComplete("base backup \(manifest.id)")
                return digest.size
            }
            // Writes, a walk of the whole tree and fsyncs: off the cooperative pool.
            do {
                try await runBlocking(name: "restore-settings") { [self] in
                    try writeRecoverySettings(backupID: manifest.id)
                    if let owner = options.owner { try changeOwner(to: owner) }
                    try syncDataDirectory()
                }
            } catch { throw EngineError.wrapping(error) }
        } catch {
            _ = try? await runBlocking(name: "restore-cleanup") { [self] in removeRestoredFiles(createdDirectory: createdDirectory) }
            throw error
        }
        context.logger.info("base backup \(manifest.id) unpacked and checked: \(formatBytes(restoredBytes)); recovery.signal and the recovery settings written to postgresql.auto.conf")
        guard options.start else {
            return Result(backupID: manifest.id, dataDirectory: options.dataDirectory, restoredBytes: restoredBytes, recoveredTo: nil, timeline: nil)
        }
        let recovery = try await startAndRecover(tools: tools)
        return Result(backupID: manifest.id, dataDirectory: options.dataDirectory, restoredBytes: restoredBytes,
                      recoveredTo: recovery.recoveredTo, timeline: recovery.timeline)
    }

    // MARK: Choosing the base backup

    /// `reference` names a backup, or `latest` picks the newest one the target lies after.
    func chooseBaseBackup(_ reference: String, catalog: BackupCatalog) async throws(EngineError) -> BackupCatalog.Entry {
        let physical = try await catalog.entries().filter(\.manifest.isPhysical)
        if reference != "latest" {
            let id = try await catalog.resolve(reference)
            guard let entry = physical.first(where: { $0.manifest.id == id }) else {
                throw EngineError(.invalidOption, "\(id) is a logical backup (a database dump): restore it without --physical, or pick a base backup from `backstop list`")
            }
            guard fits(entry.manifest) else {
                throw EngineError(.invalidOption, "base backup \(id) ends at \(Self.describe(entry.manifest.physical!.stopTime)) (LSN \(entry.manifest.physical!.stopLSN)), after \(options.target): recovery cannot go back in time; pick an older base backup, or leave the id out")
            }
            return entry
        }
        guard !physical.isEmpty else {
            throw EngineError(.notFound, "\(context.storage.displayName)/\(context.location.environmentPrefix) holds no physical base backup; take one with `backstop backup --physical`")
        }
        guard let chosen = physical.last(where: { fits($0.manifest) }) else {
            let oldest = physical[0].manifest
            throw EngineError(.invalidOption, "no base backup ends before \(options.target): the oldest, \(oldest.id), ends at \(Self.describe(oldest.physical!.stopTime)) (LSN \(oldest.physical!.stopLSN)); a point before it cannot be recovered")
        }
        return chosen
    }

    /// Whether recovery from `manifest` can reach the target: the base backup must be
    /// consistent (its end replayed) before the target.
    private func fits(_ manifest: BackupManifest) -> Bool {
        guard let physical = manifest.physical else { return false }
        switch options.target {
        case .endOfArchive, .immediate, .name: return true
        // The worker's clock, read after the stream ended: never before the server's end.
        case .time(let time): return physical.stopTime <= time.secondsSince1970
        case .lsn(let lsn): return physical.stopLSN <= lsn
        }
    }

    private static func describe(_ time: Double) -> String {
        UTCTimestamp(secondsSince1970: Int64(time.rounded(.up))).description
    }

    // MARK: The data directory

    /// Creates the data directory (0700), or accepts an existing empty one. Returns whether it
    /// was created here (then a failure removes it).
    private func prepareDataDirectory() throws(EngineError) -> Bool {
        let path = options.dataDirectory
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else { throw EngineError(.invalidOption, "--data-dir \(path) is a file; name an empty or new folder") }
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? []
            // lost+found: a fresh volume's root is "empty" with it.
            guard entries.allSatisfy({ $0 == "lost+found" }) else {
                throw EngineError(.invalidOption, "--data-dir \(path) is not empty (\(entries.count) entries): a restore never writes over files; name an empty or new folder")
            }
            guard chmod(path, 0o700) == 0 else {
                throw EngineError(.invalidOption, "cannot make --data-dir \(path) private (0700, which PostgreSQL requires): \(String(cString: strerror(errno)))")
            }
            return false
        }
        guard mkdir(path, 0o700) == 0 else {
            throw EngineError(.invalidOption, "cannot create --data-dir \(path): \(String(cString: strerror(errno)))")
        }
        return true
    }

    private func removeRestoredFiles(createdDirectory: Bool) {
        let path = options.dataDirectory
        if createdDirectory {
            try? FileManager.default.removeItem(atPath: path)
        } else {
            for entry in (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? [] where entry != "lost+found" {
                try? FileManager.default.removeItem(atPath: path + "/" + entry)
            }
        }
    }

    /// `recovery.signal` and the recovery settings, appended to `postgresql.auto.conf`
    /// (read after postgresql.conf, so they win).
    private func writeRecoverySettings(backupID: BackupID) throws(EngineError) {
        var settings: [(name: String, value: String)] = [("restore_command", options.restoreCommand)]
        settings += options.target.settings
        settings.append(("recovery_target_timeline", options.timeline))
        if let port = options.port { settings.append(("port", String(port))) }
        if !options.keepsArchiving { settings.append(("archive_mode", "off")) }
        var text = "\n# backstop restore --physical \(backupID), to \(options.target), at \(context.timestamp)\n"
        for (name, value) in settings {
            text += "\(name) = '\(value.replacingOccurrences(of: "'", with: "''"))'\n"
        }
        let directory = options.dataDirectory
        let autoConf = directory + "/postgresql.auto.conf"
        do {
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: autoConf))
            defer { try? handle.close() }
            try handle.seekToEnd()
            try handle.write(contentsOf: Data(text.utf8))
            guard FileManager.default.createFile(atPath: directory + "/recovery.signal", contents: nil, attributes: [.posixPermissions: 0o600]) else {
                throw EngineError(.restoreFailed, "cannot create \(directory)/recovery.signal")
            }
        } catch {
            throw EngineError.wrapping(error, context: "writing the recovery settings into \(autoConf)")
        }
    }

    /// The folders' entries reach the disk too (the files were synced as they were written,
    /// the recovery settings are synced here), before the restore reports success.
    private func syncDataDirectory() throws(EngineError) {
        let root = options.dataDirectory
        var paths = [root, root + "/postgresql.auto.conf", root + "/recovery.signal"]
        if let walker = FileManager.default.enumerator(atPath: root) {
            while let relative = walker.nextObject() as? String {
                if (walker.fileAttributes?[.type] as? FileAttributeType) == .typeDirectory { paths.append(root + "/" + relative) }
            }
        }
        for path in paths {
            let descriptor = open(path, O_RDONLY | O_CLOEXEC)
            guard descriptor >= 0, fsync(descriptor) == 0 else {
                let reason = String(cString: strerror(errno))
                if descriptor >= 0 { close(descriptor) }
                throw EngineError(.restoreFailed, "cannot sync \(path) to disk: \(reason)")
            }
            close(descriptor)
        }
    }

    private func changeOwner(to owner: Owner) throws(EngineError) {
        let root = options.dataDirectory
        var paths = [root]
        if let walker = FileManager.default.enumerator(atPath: root) {
            while let relative = walker.nextObject() as? String { paths.append(root + "/" + relative) }
        }
        for path in paths where lchown(path, owner.uid, owner.gid) != 0 {
            throw EngineError(.restoreFailed, "cannot give \(path) to \(owner.name) (uid \(owner.uid)): \(String(cString: strerror(errno))); run as root, or as that user without --owner")
        }
    }

    // MARK: Recovery

    /// The server's log of the recovery: `backstop-recovery.log` in the data directory.
    var recoveryLog: String { options.dataDirectory + "/backstop-recovery.log" }

    private func startAndRecover(tools: PostgresTools) async throws(EngineError) -> (recoveredTo: String?, timeline: UInt32?) {
        let pgCtl: String, pgControlData: String
        do { (pgCtl, pgControlData) = (try tools.program("pg_ctl"), try tools.program("pg_controldata")) }
        catch { throw EngineError.wrapping(error) }
        // Messages in English whatever lc_messages the backup carries: the log is read below.
        var command = [pgCtl, "start", "-D", options.dataDirectory, "-l", recoveryLog, "-w", "-t", "600", "-o", "-c lc_messages=C"]
        if getuid() == 0 {
            guard let owner = options.owner else {
                throw EngineError(.invalidOption, "PostgreSQL does not run as root: pass --run-as postgres (the user the server runs as) with --start")
            }
            command = ["/usr/sbin/runuser", "-u", owner.name, "--"] + command
        }
        let starter: ChildProcess
        // pg_ctl sends the server's output to the log; its own stderr is kept for a failed start.
        do { starter = try ChildProcess(executable: command[0], arguments: Array(command.dropFirst()), standardOutput: .null) }
        catch { throw EngineError.wrapping(error) }
        let started = await starter.wait()
        context.logger.info("PostgreSQL started on \(options.dataDirectory) (log: \(recoveryLog)); waiting for recovery to reach \(options.target)")

        let deadline = ContinuousClock.now + options.recoveryTimeout
        while true {
            let logPath = recoveryLog
            let log = (try? await runBlocking(name: "recovery-log") { try String(contentsOfFile: logPath, encoding: .utf8) }) ?? ""
            // pg_ctl gives up waiting on a server still replaying a long archive: the server,
            // not pg_ctl, says whether recovery goes on.
            if !serverIsRunning() {
                throw failure(log: log, startOutput: started.standardError)
            }
            // pg_control alone cannot tell: the base backup's copy says "in production" until
            // recovery rewrites it. The log's end of recovery comes first, then the state.
            if log.contains("archive recovery complete"), try await clusterState(pgControlData) == "in production" {
                return try reached(log: log, timeline: try await timeline(pgControlData))
            }
            if ContinuousClock.now >= deadline {
                throw EngineError(.restoreFailed, "recovery has not ended after \(options.recoveryTimeout); the server is still running on \(options.dataDirectory): see \(recoveryLog)")
            }
            do { try await Task.sleep(for: .milliseconds(250)) }
            catch { throw EngineError(.interrupted, "interrupted while recovery ran; the server is still running on \(options.dataDirectory)") }
        }
    }

    /// Checks the log's word on where recovery stopped against what was asked.
    private func reached(log: String, timeline: UInt32?) throws(EngineError) -> (recoveredTo: String?, timeline: UInt32?) {
        let stopping = Self.lines(of: log, containing: "recovery stopping").last
        switch options.target {
        case .endOfArchive:
            break
        case .time, .lsn, .name, .immediate:
            // PostgreSQL before 13 promotes at the archive's end when the target was never
            // met; the server is then running somewhere else than asked: say so.
            guard stopping != nil else {
                throw EngineError(.restoreFailed, "recovery ended and the server was promoted without reaching \(options.target): the archive ends before it. The data directory \(options.dataDirectory) holds the state at the archive's end; see \(recoveryLog)")
            }
        }
        let message = stopping.map { Self.message(of: $0) } ?? "replayed to the end of the archive"
        context.logger.info("recovery ended and the server was promoted: \(message); now on timeline \(timeline.map(String.init) ?? "?")")
        return (message, timeline)
    }

    /// The reason recovery failed, from the server's log.
    private func failure(log: String, startOutput: String) -> EngineError {
        if !Self.lines(of: log, containing: "recovery ended before configured recovery target was reached").isEmpty {
            let last = Self.lines(of: log, containing: "last completed transaction was at log time").last.map { " (\(Self.message(of: $0)))" } ?? ""
            return EngineError(.restoreFailed, "the archive ends before \(options.target)\(last): PostgreSQL stopped without promoting. Pick an earlier target, or check that archiving reached it (backstop doctor, pg_stat_archiver); \(options.dataDirectory) is left for inspection")
        }
        let fatal = Self.lines(of: log, containing: "FATAL:") + Self.lines(of: log, containing: "PANIC:")
        let fetchErrors = Self.lines(of: log, containing: "backstop:").suffix(2)
        let detail = (fetchErrors + fatal.suffix(2)).map { Self.message(of: $0) }.joined(separator: "; ")
        return EngineError(.restoreFailed, "PostgreSQL stopped during recovery: \(detail.isEmpty ? startOutput.trimmingCharacters(in: .whitespacesAndNewlines) : detail); see \(recoveryLog)")
    }

    private func serverIsRunning() -> Bool {
        guard let text = try? String(contentsOfFile: options.dataDirectory + "/postmaster.pid", encoding: .utf8),
              let pid = Int32(text.split(separator: "\n").first ?? "") else { return false }
        return kill(pid, 0) == 0 || errno == EPERM
    }

    private func controlData(_ pgControlData: String) async throws(EngineError) -> String {
        let outcome: ChildProcess.Outcome
        do { outcome = try await ChildProcess(executable: pgControlData, arguments: [options.dataDirectory], environment: ["LC_ALL": "C"], standardOutput: .collect).wait() }
        catch { throw EngineError.wrapping(error) }
        return outcome.standardOutput
    }

    private func clusterState(_ pgControlData: String) async throws(EngineError) -> String? {
        Self.value(of: "Database cluster state", in: try await controlData(pgControlData))
    }

    private func timeline(_ pgControlData: String) async throws(EngineError) -> UInt32? {
        Self.value(of: "Latest checkpoint's TimeLineID", in: try await controlData(pgControlData)).flatMap(UInt32.init)
    }

    private static func value(of field: String, in output: String) -> String? {
        output.split(separator: "\n").first { $0.hasPrefix(field + ":") }
            .map { $0.dropFirst(field.count + 1).trimmingCharacters(in: .whitespaces) }
    }

    private static func lines(of log: String, containing text: String) -> [Substring] {
        log.split(separator: "\n").filter { $0.contains(text) }
    }

    /// A log line without its timestamp and process prefix (`… LOG:  `).
    private static func message(of line: Substring) -> String {
        for level in ["LOG:  ", "FATAL:  ", "PANIC:  ", "ERROR:  "] {
            if let range = line.range(of: level) { return String(line[range.upperBound...]) }
        }
        return String(line)
    }
}
