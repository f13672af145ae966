public import BackstopAPI
internal import BlockingCalls
internal import Foundation
internal import KubeObjects
internal import Logging
internal import Pipeline
public import Postgres
internal import Storage
#if canImport(Glibc)
internal import Glibc
#endif

/// `backstop backup`: dumps a database in one exported snapshot and streams the dump through
/// compression, encryption and hashing into storage; writes the manifest last (the commit
/// point), then verifies the backup. A failed or interrupted backup leaves no manifest and
/// removes what it wrote.
///
/// `--physical` streams pg_basebackup's tar of the whole cluster instead (no WAL in it: the
/// archive holds the WAL, `wal-push`), and commits only once every WAL segment the base
/// backup needs is in the environment's archive.
public struct BackupCommand: Sendable {
    public struct Options: Sendable {
        public var database: ConnectionSettings
        public var compression: CompressionAlgorithm
        public var level: Int
        public var encryption: EncryptionSource
        /// A physical base backup of the cluster rather than a dump of one database.
        public var physical: Bool
        /// How long a physical backup waits for its last WAL segment to reach the archive.
        public var walArchiveTimeout: Duration
        /// Secrets and ConfigMaps of the namespace stored beside the dump (always encrypted).
        public var objects: NamespaceObjectsSource?

        public init(database: ConnectionSettings, compression: CompressionAlgorithm, level: Int?,
                    encryption: EncryptionSource, physical: Bool = false, walArchiveTimeout: Duration = .seconds(300),
                    objects: NamespaceObjectsSource? = nil) throws(EngineError) {
            let level = level ?? compression.defaultLevel
            guard compression.levels.contains(level) else {
                throw EngineError(.invalidOption, "--level \(level) is outside \(compression.rawValue)'s range \(compression.levels.lowerBound)-\(compression.levels.upperBound); pick a level in it")
            }
            self.database = database
            self.compression = compression
            self.level = level
            self.encryption = encryption
            self.physical = physical
            self.walArchiveTimeout = walArchiveTimeout
            self.objects = objects
        }
    }

    public struct Result: Sendable {
        public let manifest: BackupManifest
        public let verification: VerificationRecord
    }

    let context: WorkerContext
    let options: Options

    public init(context: WorkerContext, options: Options) {
        self.context = context
        self.options = options
    }

    /// Bytes, hashes and blocks of one dump, as they passed through the pipeline.
    private struct StreamedDump: Sendable {
        let plaintext: BackupManifest.PlaintextInfo
        let object: BackupManifest.StoredObject
        /// What the tar stream of a physical backup held.
        let baseBackup: BaseBackupContents?
    }

    /// What the backup reads: one database through pg_dump, or the cluster through pg_basebackup.
    private enum Source {
        case dump
        case baseBackup(program: String, walSegmentSize: UInt64)
    }

    public func run() async throws(EngineError) -> Result {
        let started = context.now()
        // `pg_dump --version` runs while the connection is opened.
        let binDirectory = context.postgresBinDirectory
        let locating = Task { () throws(PostgresError) -> PostgresTools in
            try await PostgresTools.locate(binDirectory: binDirectory)
        }
        do {
            return try await PostgresConnection.with(options.database) { connection in
                try await run(tools: try await locating.value, connection: connection, started: started)
            }
        } catch {
            throw EngineError.wrapping(error)
        }
    }

    private func run(tools: PostgresTools, connection: PostgresConnection, started: Double) async throws(EngineError) -> Result {
        let logger = context.logger

        let version: PostgresConnection.ServerVersion
        let databaseSize: Int64
        let source: Source
        do {
            version = try await connection.serverVersion()
            try tools.checkCanDump(serverVersionNumber: version.number, serverVersion: version.text)
            if options.physical {
                let cluster = try await connection.clusterSettings()
                try checkCanArchive(cluster, serverVersionNumber: version.number)
                databaseSize = cluster.clusterSize
                source = .baseBackup(program: try tools.program("pg_basebackup"), walSegmentSize: cluster.walSegmentSize)
            } else {
                databaseSize = try await connection.databaseSize()
                source = .dump
            }
        } catch { throw EngineError.wrapping(error) }
        let key = try options.encryption.keyForNewBackup()
        var namespaceObjects: [JSONValue]?
        if let source = options.objects {
            guard key != nil else {
                throw EngineError(.invalidOption, "Secrets and ConfigMaps (--secrets, --config-maps) are only stored encrypted; pass --encryption-key-file or --passphrase-file (spec.encryption in a BackupPolicy)")
            }
            // Read before the dump starts: a missing permission fails the run in a second.
            namespaceObjects = try await NamespaceObjectsArchive.read(source)
        }
        if key == nil {
            logger.warning("this backup is not encrypted: whoever can read \(context.storage.displayName) can read the data; pass --encryption-key-file or --passphrase-file (spec.encryption in a BackupPolicy)")
        }
        // One backup of an environment at a time: two would both chain to the same predecessor.
        return try await EnvironmentLease(context: context, purpose: .backup).holding { lease throws(EngineError) in
            try await backUp(tools: tools, connection: connection, source: source, started: started, version: version,
                             databaseSize: databaseSize, key: key, namespaceObjects: namespaceObjects, lease: lease)
        }
    }

    /// A base backup without WAL is only as good as the archive beside it: refuse what could
    /// not be recovered.
    private func checkCanArchive(_ cluster: PostgresConnection.ClusterSettings, serverVersionNumber: Int) throws(EngineError) {
        guard serverVersionNumber >= 130_000 else {
            throw EngineError(.invalidOption, "--physical needs PostgreSQL 13 or newer (pg_basebackup's backup_manifest); this server runs \(serverVersionNumber / 10_000); use a logical backup")
        }
        guard cluster.archiveMode != "off" else {
            throw EngineError(.invalidOption, "archive_mode is off on this server: a base backup without its WAL cannot be recovered; set archive_mode = on and archive_command = 'backstop wal-push %p' (with this backup's storage and environment), restart, then back up")
        }
        guard cluster.extraTablespaces.isEmpty else {
            throw EngineError(.invalidOption, "the cluster has tablespaces besides pg_default and pg_global (\(cluster.extraTablespaces.joined(separator: ", "))): a streamed base backup carries the main data directory only; move them (ALTER TABLE … SET TABLESPACE pg_default) or use logical backups")
        }
        if !cluster.archiveCommand.contains("wal-push") {
            context.logger.warning("archive_command is '\(cluster.archiveCommand)', not backstop wal-push: the backup commits only if the WAL it needs appears in \(context.storage.displayName)/\(context.location.walPrefix)")
        }
    }

    private func backUp(tools: PostgresTools, connection: PostgresConnection, source: Source, started: Double, version: PostgresConnection.ServerVersion,
                        databaseSize: Int64, key: EncryptionKey?, namespaceObjects: [JSONValue]?, lease: EnvironmentLease) async throws(EngineError) -> Result {
        let logger = context.logger
        let catalog = BackupCatalog(context: context)
        let committed = try await catalog.committedIDs()
        let previous = try await catalog.newestManifestHash(among: committed)
        let newest = committed.last
        var random = SystemRandomNumberGenerator()
        let id = BackupID.make(secondsSince1970: Int64(started), after: newest, using: &random)
        await lease.describe(backupID: id)
        let physical: Bool
        if case .baseBackup = source { physical = true } else { physical = false }
        let objectName = (physical ? "base.tar" : "data.dump") + options.compression.fileExtension + (key == nil ? "" : ".enc")
        logger.info("\(physical ? "physical base backup" : "backup") \(id) of \(options.database) (PostgreSQL \(version.text), about \(formatBytes(databaseSize))) to \(context.storage.displayName)/\(context.location.backupPrefix(id))")

        do throws(EngineError) {
            var objectsInfo: BackupManifest.NamespaceObjectsInfo?
            if let namespaceObjects, let key {
                objectsInfo = try await NamespaceObjectsArchive.store(namespaceObjects, id: id, context: context, compression: options.compression,
                                                                      level: options.level, key: key)
                let names = namespaceObjects.map { "\($0["kind"]?.string ?? "")/\($0[path: "metadata.name"]?.string ?? "")" }
                let namespace = options.objects?.namespace ?? ""
                if names.isEmpty {
                    logger.warning("no Secret or ConfigMap in namespace \(namespace) matches the selectors; check their labels against objects.secrets.selector and objects.configMaps.selector")
                } else {
                    logger.info("stored \(names.count) object(s) of namespace \(namespace), encrypted: \(names.joined(separator: ", "))")
                }
            }
            let executable: String
            var arguments: [String]
            switch source {
            case .dump:
                let snapshot: String
                do { snapshot = try await connection.exportSnapshot() }
                catch { throw EngineError.wrapping(error) }
                executable = tools.pgDump
                arguments = ["--format=custom", "--compress=0", "--snapshot=\(snapshot)", "--no-password"]
            case .baseBackup(let program, _):
                // Tar to stdout, no WAL (the archive has it); pg_basebackup then waits until the
                // server archived the last segment, and appends backup_manifest to the tar.
                executable = program
                arguments = ["--pgdata=-", "--format=tar", "--wal-method=none", "--checkpoint=fast",
                             "--label=backstop \(id)", "--no-password"]
            }
            if !options.database.connectionString.isEmpty {
                arguments.append("--dbname=\(options.database.connectionString)")
            }
            let dump: ChildProcess
            do {
                dump = try ChildProcess(executable: executable, arguments: arguments,
                                        environment: options.database.childEnvironment, standardOutput: .pipe)
            } catch { throw EngineError.wrapping(error) }
            let toolName = (executable as NSString).lastPathComponent

            let progress = TransferProgress()
            let reporter = Task {
                await TransferProgress.report(progress, label: "backup \(id)", expectedBytes: databaseSize,
                                              interval: context.progressInterval, logger: logger)
            }
            defer { reporter.cancel() }

            // pg_basebackup waits, without a limit, for the server to archive the backup's last
            // segment: a failing archive_command must show, and end the wait.
            let archiveWatch = physical ? Task { await watchArchiver(connection, stopping: dump) } : nil
            defer { archiveWatch?.cancel() }
            let streamed: StreamedDump
            do {
                streamed = try await withTaskCancellationHandler {
                    try await stream(dump: dump, toolName: toolName, objectKey: context.location.objectKey(id, name: objectName),
                                     objectName: objectName, key: key, backupID: id, readsBaseBackup: physical, progress: progress)
                } onCancel: {
                    progress.cancel()
                    dump.terminate()
                }
            } catch {
                archiveWatch?.cancel()
                if let stalled = await archiveWatch?.value { throw stalled }
                throw EngineError.wrapping(error)
            }
            reporter.cancel()
            let physicalInfo: BackupManifest.PhysicalInfo?
            if case .baseBackup(_, let segmentSize) = source {
                let info = try physicalDetails(streamed.baseBackup, segmentSize: segmentSize, id: id)
                try await waitForArchive(info, id: id)
                physicalInfo = info
            } else {
                physicalInfo = nil
            }
            let completed = context.now()
            func manifest(tables: [PostgresConnection.TableCount]) -> BackupManifest {
                BackupManifest(
                    id: id, namespace: context.location.namespace, policy: context.location.policy,
                    environment: context.location.environment, toolVersion: WorkerContext.toolVersion,
                    database: .init(name: options.database.databaseName ?? "", serverVersion: version.text,
                                    serverVersionNumber: version.number, pgDumpVersion: tools.version),
                    startedAt: UTCTimestamp(secondsSince1970: Int64(started)),
                    completedAt: UTCTimestamp(secondsSince1970: Int64(completed)),
                    durationSeconds: max(0, completed - started),
                    dump: .init(format: physical ? BackupManifest.baseBackupFormat : "custom"),
                    compression: .init(algorithm: options.compression, level: options.level),
                    encryption: key.map {
                        .init(algorithm: ChunkedEncryption.algorithmName, chunkSize: ChunkedEncryption.defaultChunkSize,
                              keyFingerprint: $0.fingerprint, kdf: $0.derivation)
                    },
                    objects: [streamed.object], plaintext: streamed.plaintext,
                    tables: tables.map { .init(schema: $0.schema, name: $0.name, rows: $0.rows) },
                    previousManifestSHA256: previous?.sha256, physical: physicalInfo, namespaceObjects: objectsInfo)
            }

            // Once pg_dump is done, the stored object is read back (our CPU and pg_restore) while
            // the rows are counted in the still-open snapshot (the server's CPU): neither slows
            // the dump, and a backup that does not read back is never committed. The decoded
            // dump is not hashed again: the stream above hashed exactly the bytes it compressed,
            // and the decompressor's checksum proves the stored object decodes to them.
            async let readBack = VerifyCommand(context: context, encryption: options.encryption)
                .check(manifest(tables: []), key: key, tools: tools, hashPlaintext: false)
            let tables: [PostgresConnection.TableCount]
            do {
                // A base backup holds the whole cluster at no single snapshot: no row counts.
                tables = physical ? [] : try await connection.tableRowCounts()
                if !physical { try await connection.endTransaction() }
            } catch {
                _ = await readBack
                throw EngineError.wrapping(error, context: "counting rows in the dump's snapshot")
            }
            let verification = await readBack
            if let failure = verification.failure {
                throw EngineError(failure.kind, "backup \(id) failed its read-back and was not committed: \(failure.message)", underlying: failure)
            }
            if Task.isCancelled { throw EngineError(.interrupted, "interrupted (SIGTERM or SIGINT) before the manifest was written") }

            if tables.isEmpty && !physical {
                logger.warning("\(options.database.databaseName ?? "the database") has no tables: the backup holds its schema only; check that --database (spec.database.name in a BackupPolicy) names the right database")
            }
            let committed = manifest(tables: tables)
            try await lease.confirm()
            do {
                try committed.validate()
                try await context.storage.put(context.location.manifestKey(id), bytes: [UInt8](committed.encoded()))
            } catch { throw EngineError.wrapping(error, context: "cannot write the manifest of \(id)") }
            if let physicalInfo {
                logger.info("backup \(id) committed: \(formatBytes(streamed.plaintext.size)) of base backup, \(formatBytes(streamed.object.size)) stored, WAL \(physicalInfo.startLSN)–\(physicalInfo.stopLSN) on timeline \(physicalInfo.timeline) archived, \(String(format: "%.1f", committed.durationSeconds))s")
            } else {
                logger.info("backup \(id) committed: \(formatBytes(streamed.plaintext.size)) dumped, \(formatBytes(streamed.object.size)) stored, \(tables.count) tables, \(String(format: "%.1f", committed.durationSeconds))s")
            }
            try await catalog.record(verification.record)
            logger.info("\(VerifyCommand.summary(of: verification.record))")
            return Result(manifest: committed, verification: verification.record)
        } catch {
            // Anything before the commit removes every object of this id; once the manifest is
            // stored the backup stands, even if writing verified.json then fails.
            if (try? await context.storage.head(context.location.manifestKey(id))) == nil {
                await removeLeftovers(of: id)
            }
            throw error
        }
    }

    /// While a base backup runs, reads pg_stat_archiver every few seconds: new archive_command
    /// failures are logged, and archiving that fails for longer than `walArchiveTimeout` stops
    /// pg_basebackup (which would otherwise wait for ever) with the reason returned.
    private func watchArchiver(_ connection: PostgresConnection, stopping dump: ChildProcess) async -> EngineError? {
        var reportedFailures: Int64?
        var failingSince: ContinuousClock.Instant?
        while !Task.isCancelled {
            do { try await Task.sleep(for: .seconds(3)) } catch { return nil }
            guard let state = try? await connection.archiverState() else { continue }
            if let reported = reportedFailures, state.failedCount > reported {
                context.logger.warning("archive_command failed for \(state.lastFailedWAL ?? "a WAL file") (\(state.failedCount - reported) more failure(s)): the base backup cannot end before it succeeds; see the server's log")
            }
            reportedFailures = state.failedCount
            guard state.failing else {
                failingSince = nil
                continue
            }
            let since = failingSince ?? .now
            failingSince = since
            if ContinuousClock.now - since >= options.walArchiveTimeout {
                dump.terminate()
                return EngineError(.dumpFailed, "archive_command has been failing for \(options.walArchiveTimeout) (last failed: \(state.lastFailedWAL ?? "?")), and a base backup ends only once its WAL is archived: fix archiving (the server's log says why; archive_command = 'backstop wal-push %p' with this backup's storage and environment), then back up again; nothing was committed")
            }
        }
        return nil
    }

    /// The manifest's physical details, from the tar stream's backup_label and backup_manifest.
    private func physicalDetails(_ contents: BaseBackupContents?, segmentSize: UInt64, id: BackupID) throws(EngineError) -> BackupManifest.PhysicalInfo {
        guard let contents else { throw EngineError(.dumpFailed, "the base backup's stream was not read") }
        try contents.checkComplete("pg_basebackup's output for \(id)")
        guard let range = contents.walRange, let label = contents.backupLabel else {
            throw EngineError(.dumpFailed, "pg_basebackup's output for \(id) is incomplete")
        }
        return BackupManifest.PhysicalInfo(timeline: range.timeline, startLSN: range.start, stopLSN: range.end,
                                           walSegmentSize: segmentSize, backupLabel: label, stopTime: context.now())
    }

    /// Waits until every segment the base backup needs has its record in the archive: the
    /// server archives the last one as the backup ends, and a base backup whose WAL is missing
    /// cannot be recovered, so it must not be committed.
    private func waitForArchive(_ info: BackupManifest.PhysicalInfo, id: BackupID) async throws(EngineError) {
        let deadline = ContinuousClock.now + options.walArchiveTimeout
        var missing = info.walSegments
        while true {
            var stillMissing: [String] = []
            for segment in missing {
                do {
                    _ = try await context.storage.head(context.location.walRecordKey(try WALFileName(segment)))
                } catch let error as StorageError where error.kind == .notFound {
                    stillMissing.append(segment)
                } catch {
                    throw EngineError.wrapping(error, context: "checking that \(segment) is archived")
                }
            }
            missing = stillMissing
            if missing.isEmpty { return }
            if ContinuousClock.now >= deadline {
                throw EngineError(.dumpFailed, "base backup \(id) needs WAL \(info.firstWALSegment)…\(info.lastWALSegment), but \(missing.first!) is not in \(context.storage.displayName)/\(context.location.walPrefix) after \(options.walArchiveTimeout): set archive_command = 'backstop wal-push %p' with this backup's storage, namespace, policy and environment, and check pg_stat_archiver for failures; nothing was committed")
            }
            context.logger.info("waiting for the archive to hold \(missing.first!) (\(missing.count) segment(s) still missing)")
            do { try await Task.sleep(for: .seconds(1)) } catch { throw EngineError(.interrupted, "interrupted while waiting for WAL to be archived") }
        }
    }

    /// Reads the tool's stdout on a dedicated thread through the stages into storage. The
    /// object is finished only after the tool exited cleanly.
    private func stream(dump: ChildProcess, toolName: String, objectKey: String, objectName: String, key: EncryptionKey?,
                        backupID: BackupID, readsBaseBackup: Bool, progress: TransferProgress) async throws(EngineError) -> StreamedDump {
        let storage = context.storage
        let compression = options.compression
        let level = options.level
        guard let input = dump.standardOutput else {
            throw EngineError(.dumpFailed, "pg_dump was started without an output pipe")
        }
        do {
            return try await runBlocking(name: "backup-stream") { () throws -> StreamedDump in
                defer { close(input) }
                let writer = try storage.makeWriter(objectKey)
                do {
                    let plaintext = BlockHashingStage(blockSize: nil)
                    let stored = BlockHashingStage()
                    let baseBackup = readsBaseBackup ? BaseBackupReader() : nil
                    // A base backup's tar comes as fast as the server reads its files: zstd gets a
                    // thread per core, as pgBackRest's process-max does. A dump's pace is
                    // pg_dump's, which needs a core of its own.
                    let workers = readsBaseBackup ? ProcessInfo.processInfo.activeProcessorCount : 0
                    var stages: [any StreamStage] = [plaintext, try Compression.compressor(compression, level: level, workers: workers)]
                    if let baseBackup { stages.insert(baseBackup, at: 0) }
                    if let key { stages.append(try ChunkEncryptor(key: key, backupID: BackupIDBytes(backupID.rawValue))) }
                    stages.append(stored)
                    let pipeline = StagePipeline(stages) { try writer.write($0) }
                    var buffer = [UInt8](repeating: 0, count: 1 << 20)
                    while true {
                        let got = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                        if got < 0 {
                            if errno == EINTR { continue }
                            throw EngineError(.dumpFailed, "cannot read \(toolName)'s output: \(String(cString: strerror(errno)))")
                        }
                        if progress.isCancelled { throw EngineError(.interrupted, "interrupted (SIGTERM or SIGINT); no manifest written") }
                        if got == 0 { break }
                        progress.add(got)
                        try buffer.withUnsafeBytes { try pipeline.process(UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
                    }
                    // The tool's own failure explains a cut-short stream better than the stream.
                    var unfinished: (any Error)?
                    do { try pipeline.finish() } catch { unfinished = error }
                    let outcome = dump.waitBlocking()
                    if progress.isCancelled { throw EngineError(.interrupted, "interrupted (SIGTERM or SIGINT); no manifest written") }
                    guard outcome.termination.succeeded else {
                        throw EngineError(.dumpFailed, "\(toolName) failed (\(outcome.termination.description)): \(outcome.standardError.split(separator: "\n").suffix(3).joined(separator: " "))")
                    }
                    if let unfinished { throw unfinished }
                    let info = try writer.finish()
                    return StreamedDump(
                        plaintext: .init(size: plaintext.byteCount, sha256: plaintext.sha256),
                        object: .init(name: objectName, size: info.size, hashed: stored),
                        baseBackup: baseBackup?.contents)
                } catch {
                    writer.abort()
                    dump.kill(SIGKILL)
                    _ = dump.waitBlocking()
                    throw error
                }
            }
        } catch {
            throw EngineError.wrapping(error)
        }
    }

    private func removeLeftovers(of id: BackupID) async {
        guard let objects = try? await context.storage.list(prefix: context.location.backupPrefix(id)), !objects.isEmpty else { return }
        try? await context.storage.delete(objects.map(\.key))
    }
}
