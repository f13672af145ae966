public import BackstopAPI
internal import BlockingCalls
internal import Foundation
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
public struct BackupCommand: Sendable {
    public struct Options: Sendable {
        public var database: ConnectionSettings
        public var compression: CompressionAlgorithm
        public var level: Int
        public var encryption: EncryptionSource

        public init(database: ConnectionSettings, compression: CompressionAlgorithm, level: Int?,
                    encryption: EncryptionSource) throws(EngineError) {
            let level = level ?? compression.defaultLevel
            guard compression.levels.contains(level) else {
                throw EngineError(.invalidOption, "--level \(level) is outside \(compression.rawValue)'s range \(compression.levels.lowerBound)-\(compression.levels.upperBound); pick a level in it")
            }
            self.database = database
            self.compression = compression
            self.level = level
            self.encryption = encryption
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
        do {
            version = try await connection.serverVersion()
            try tools.checkCanDump(serverVersionNumber: version.number, serverVersion: version.text)
            databaseSize = try await connection.databaseSize()
        } catch { throw EngineError.wrapping(error) }
        let key = try options.encryption.keyForNewBackup()
        if key == nil {
            logger.warning("this backup is not encrypted: whoever can read \(context.storage.displayName) can read the data; pass --encryption-key-file or --passphrase-file (spec.encryption in a BackupPolicy)")
        }
        // One backup of an environment at a time: two would both chain to the same predecessor.
        return try await EnvironmentLease(context: context, purpose: .backup).holding { lease throws(EngineError) in
            try await backUp(tools: tools, connection: connection, started: started, version: version, databaseSize: databaseSize,
                             key: key, lease: lease)
        }
    }

    private func backUp(tools: PostgresTools, connection: PostgresConnection, started: Double, version: PostgresConnection.ServerVersion,
                        databaseSize: Int64, key: EncryptionKey?, lease: EnvironmentLease) async throws(EngineError) -> Result {
        let logger = context.logger
        let catalog = BackupCatalog(context: context)
        let committed = try await catalog.committedIDs()
        let previous = try await catalog.newestManifestHash(among: committed)
        let newest = committed.last
        var random = SystemRandomNumberGenerator()
        let id = BackupID.make(secondsSince1970: Int64(started), after: newest, using: &random)
        await lease.describe(backupID: id)
        let objectName = "data.dump" + options.compression.fileExtension + (key == nil ? "" : ".enc")
        logger.info("backup \(id) of \(options.database) (PostgreSQL \(version.text), about \(formatBytes(databaseSize))) to \(context.storage.displayName)/\(context.location.backupPrefix(id))")

        do throws(EngineError) {
            let snapshot: String
            do { snapshot = try await connection.exportSnapshot() }
            catch { throw EngineError.wrapping(error) }
            var arguments = ["--format=custom", "--compress=0", "--snapshot=\(snapshot)", "--no-password"]
            if !options.database.connectionString.isEmpty {
                arguments.append("--dbname=\(options.database.connectionString)")
            }
            let dump: ChildProcess
            do {
                dump = try ChildProcess(executable: tools.pgDump, arguments: arguments,
                                        environment: options.database.childEnvironment, standardOutput: .pipe)
            } catch { throw EngineError.wrapping(error) }

            let progress = TransferProgress()
            let reporter = Task {
                await TransferProgress.report(progress, label: "backup \(id)", expectedBytes: databaseSize,
                                              interval: context.progressInterval, logger: logger)
            }
            defer { reporter.cancel() }

            let streamed: StreamedDump
            do {
                streamed = try await withTaskCancellationHandler {
                    try await stream(dump: dump, objectKey: context.location.objectKey(id, name: objectName),
                                     objectName: objectName, key: key, backupID: id, progress: progress)
                } onCancel: {
                    progress.cancel()
                    dump.terminate()
                }
            } catch {
                throw EngineError.wrapping(error)
            }
            reporter.cancel()
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
                    dump: .init(format: "custom"),
                    compression: .init(algorithm: options.compression, level: options.level),
                    encryption: key.map {
                        .init(algorithm: ChunkedEncryption.algorithmName, chunkSize: ChunkedEncryption.defaultChunkSize,
                              keyFingerprint: $0.fingerprint, kdf: $0.derivation)
                    },
                    objects: [streamed.object], plaintext: streamed.plaintext,
                    tables: tables.map { .init(schema: $0.schema, name: $0.name, rows: $0.rows) },
                    previousManifestSHA256: previous?.sha256)
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
                tables = try await connection.tableRowCounts()
                try await connection.endTransaction()
            } catch {
                _ = await readBack
                throw EngineError.wrapping(error, context: "counting rows in the dump's snapshot")
            }
            let verification = await readBack
            if let failure = verification.failure {
                throw EngineError(failure.kind, "backup \(id) failed its read-back and was not committed: \(failure.message)", underlying: failure)
            }
            if Task.isCancelled { throw EngineError(.interrupted, "interrupted (SIGTERM or SIGINT) before the manifest was written") }

            if tables.isEmpty {
                logger.warning("\(options.database.databaseName ?? "the database") has no tables: the backup holds its schema only; check that --database (spec.database.name in a BackupPolicy) names the right database")
            }
            let committed = manifest(tables: tables)
            try await lease.confirm()
            do {
                try committed.validate()
                try await context.storage.put(context.location.manifestKey(id), bytes: [UInt8](committed.encoded()))
            } catch { throw EngineError.wrapping(error, context: "cannot write the manifest of \(id)") }
            logger.info("backup \(id) committed: \(formatBytes(streamed.plaintext.size)) dumped, \(formatBytes(streamed.object.size)) stored, \(tables.count) tables, \(String(format: "%.1f", committed.durationSeconds))s")
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

    /// Reads pg_dump's stdout on a dedicated thread through the stages into storage. The
    /// object is finished only after pg_dump exited cleanly.
    private func stream(dump: ChildProcess, objectKey: String, objectName: String, key: EncryptionKey?,
                        backupID: BackupID, progress: TransferProgress) async throws(EngineError) -> StreamedDump {
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
                    var stages: [any StreamStage] = [plaintext, try Compression.compressor(compression, level: level)]
                    if let key { stages.append(try ChunkEncryptor(key: key, backupID: BackupIDBytes(backupID.rawValue))) }
                    stages.append(stored)
                    let pipeline = StagePipeline(stages) { try writer.write($0) }
                    var buffer = [UInt8](repeating: 0, count: 1 << 20)
                    while true {
                        let got = buffer.withUnsafeMutableBytes { read(input, $0.baseAddress, $0.count) }
                        if got < 0 {
                            if errno == EINTR { continue }
                            throw EngineError(.dumpFailed, "cannot read pg_dump's output: \(String(cString: strerror(errno)))")
                        }
                        if progress.isCancelled { throw EngineError(.interrupted, "interrupted (SIGTERM or SIGINT); no manifest written") }
                        if got == 0 { break }
                        progress.add(got)
                        try buffer.withUnsafeBytes { try pipeline.process(UnsafeRawBufferPointer(rebasing: $0[0..<got])) }
                    }
                    try pipeline.finish()
                    let outcome = dump.waitBlocking()
                    if progress.isCancelled { throw EngineError(.interrupted, "interrupted (SIGTERM or SIGINT); no manifest written") }
                    guard outcome.termination.succeeded else {
                        throw EngineError(.dumpFailed, "pg_dump failed (\(outcome.termination.description)): \(outcome.standardError.split(separator: "\n").suffix(3).joined(separator: " "))")
                    }
                    let info = try writer.finish()
                    return StreamedDump(
                        plaintext: .init(size: plaintext.byteCount, sha256: plaintext.sha256),
                        object: .init(name: objectName, size: info.size, sha256: stored.sha256,
                                      blockSize: stored.blockSize ?? BlockHashingStage.defaultBlockSize,
                                      blockSHA256: stored.blockHashes))
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
