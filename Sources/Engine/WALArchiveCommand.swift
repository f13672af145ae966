public import BackstopAPI
internal import BlockingCalls
internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif
internal import Logging
internal import Pipeline
internal import Storage

/// `backstop wal-push` and `wal-fetch`: PostgreSQL's `archive_command` and `restore_command`.
/// A file is compressed, encrypted and hashed into `<environment>/wal/<timeline>/<file>`, then
/// its record `<file>.json` (plaintext size and SHA-256) is created if absent: the record is
/// the commit point, and an archived file is never overwritten. A segment is at most a few
/// tens of MiB, so it is transformed in memory, off the cooperative pool.
public struct WALArchiveCommand: Sendable {
    public struct Options: Sendable {
        public var compression: CompressionAlgorithm
        public var level: Int?
        public var encryption: EncryptionSource
        /// Push-ahead: after its own file, a push also archives up to this many other segments
        /// PostgreSQL has marked ready (`archive_status/*.ready`), in parallel, and notes each
        /// in `spoolDirectory`; PostgreSQL's call for such a segment then returns at once.
        public var pushAhead: Int
        public var spoolDirectory: String?

        public init(compression: CompressionAlgorithm = .zstd, level: Int? = nil, encryption: EncryptionSource,
                    pushAhead: Int = 0, spoolDirectory: String? = nil) {
            self.compression = compression
            self.level = level
            self.encryption = encryption
            self.pushAhead = pushAhead
            self.spoolDirectory = spoolDirectory
        }
    }

    public enum PushOutcome: Sendable, Equatable {
        case archived(WALRecord)
        /// The same file (by its plaintext) was archived before: PostgreSQL may push again
        /// after a crash between our success and its bookkeeping.
        case alreadyArchived
    }

    public enum FetchOutcome: Sendable, Equatable {
        case restored(bytes: Int64)
        /// Not in the archive: PostgreSQL's sign that recovery has reached the archive's end.
        case notArchived
    }

    let context: WorkerContext
    let options: Options

    public init(context: WorkerContext, options: Options) {
        self.context = context
        self.options = options
    }

    // MARK: Push

    /// Archives the file at `path` (`%p`, relative to the data directory PostgreSQL runs the
    /// command in), then, with push-ahead, the next segments PostgreSQL has ready.
    public func push(_ path: String) async throws(EngineError) -> PushOutcome {
        let name = try Self.fileName((path as NSString).lastPathComponent)
        guard options.pushAhead > 0, let spool = options.spoolDirectory else { return try await pushOne(path, name: name) }
        let ahead = PushAheadSpool(directory: spool)
        if (try? await runBlocking(name: "wal-spool", { ahead.takeMark(for: path) })) == true {
            context.logger.info("\(name) was archived ahead of PostgreSQL's call")
            return .alreadyArchived
        }
        let outcome = try await pushOne(path, name: name)
        await pushAhead(after: path, spool: ahead)
        return outcome
    }

    /// Archives the ready segments after `path` that are not pushed yet, in parallel, marking
    /// each that commits. A failure here is only logged: PostgreSQL pushes that one itself.
    private func pushAhead(after path: String, spool: PushAheadSpool) async {
        let limit = options.pushAhead
        guard let ready = try? await runBlocking(name: "wal-ready", { spool.readySegments(beside: path, limit: limit) }) else { return }
        await withTaskGroup(of: Void.self) { group in
            for other in ready {
                group.addTask {
                    do {
                        _ = try await pushOne(other, name: try Self.fileName((other as NSString).lastPathComponent))
                        _ = try? await runBlocking(name: "wal-spool") { spool.mark(other) }
                    } catch {
                        context.logger.info("push-ahead of \((other as NSString).lastPathComponent) failed (PostgreSQL will push it): \(EngineError.wrapping(error).message)")
                    }
                }
            }
        }
    }

    private func pushOne(_ path: String, name: WALFileName) async throws(EngineError) -> PushOutcome {
        let plaintext: [UInt8]
        do {
            plaintext = try await runBlocking(name: "wal-read") { () throws -> [UInt8] in try Self.readFile(path) }
        } catch {
            throw EngineError.wrapping(error)
        }
        let plaintextSHA256 = SHA256Hasher.hash(plaintext).hexString
        if let existing = try await record(of: name) {
            return try same(existing, plaintextSHA256: plaintextSHA256, size: plaintext.count, name: name)
        }

        let key = try options.encryption.keyForNewBackup()
        let level = options.level ?? options.compression.defaultLevel
        let compression = options.compression
        let stored: [UInt8]
        do {
            stored = try await runBlocking(name: "wal-encode") { () throws -> [UInt8] in
                var stages: [any StreamStage] = [try Compression.compressor(compression, level: level)]
                if let key { stages.append(try ChunkEncryptor(key: key, backupID: BackupIDBytes(name.rawValue))) }
                // Room for incompressible WAL and the encryption's per-chunk overhead: the
                // output never grows (a copy of 16 MiB) while it is written.
                return try Self.transform(plaintext, through: stages, expectedSize: plaintext.count + plaintext.count / 64 + (64 << 10))
            }
        } catch {
            throw EngineError.wrapping(error, context: "encoding \(name)")
        }
        let entry = WALRecord(
            fileName: name.rawValue, plaintextSize: Int64(plaintext.count), plaintextSHA256: plaintextSHA256,
            storedSize: Int64(stored.count), storedSHA256: SHA256Hasher.hash(stored).hexString,
            compression: .init(algorithm: compression, level: level),
            encryption: key.map { .init(algorithm: ChunkedEncryption.algorithmName, chunkSize: ChunkedEncryption.defaultChunkSize,
                                        keyFingerprint: $0.fingerprint, kdf: $0.derivation) },
            archivedAt: context.timestamp, toolVersion: WorkerContext.toolVersion)
        let recordBytes: [UInt8]
        do { recordBytes = [UInt8](try BackupCatalog.encoder.encode(entry)) }
        catch { throw EngineError(.storage, "cannot encode the record of \(name): \(error)") }
        do {
            // The file first, its record last: a push cut short leaves no record, and the
            // next push writes the file again.
            try await context.storage.put(context.location.walObjectKey(name), bytes: stored)
            if try await context.storage.putIfAbsent(context.location.walRecordKey(name), bytes: recordBytes) {
                context.logger.info("archived \(name): \(plaintext.count) bytes, \(stored.count) stored")
                return .archived(entry)
            }
        } catch {
            throw EngineError.wrapping(error, context: "archiving \(name)")
        }
        // Another push of the same name committed first (two servers, or a retried call).
        guard let winner = try await record(of: name) else {
            throw EngineError(.storage, "the record of \(name) changed while it was written; PostgreSQL will push it again")
        }
        return try same(winner, plaintextSHA256: plaintextSHA256, size: plaintext.count, name: name)
    }

    private func same(_ record: WALRecord, plaintextSHA256: String, size: Int, name: WALFileName) throws(EngineError) -> PushOutcome {
        guard record.plaintextSHA256 == plaintextSHA256, record.plaintextSize == Int64(size) else {
            throw EngineError(.conflict, "a different \(name) is already archived in \(context.storage.displayName)/\(context.location.environmentPrefix) (archived \(record.archivedAt), \(record.plaintextSize) bytes, SHA-256 \(record.plaintextSHA256.prefix(12))…); it is never overwritten: check that no other server archives into this environment, or give this one its own --environment")
        }
        context.logger.info("\(name) is archived already, with the same contents")
        return .alreadyArchived
    }

    // MARK: Fetch

    /// Restores the archived `file` (`%f`) to `path` (`%p`): checked against its record
    /// (stored and plaintext SHA-256, size), written beside `path` and renamed into place.
    public func fetch(_ file: String, to path: String) async throws(EngineError) -> FetchOutcome {
        let name = try Self.fileName(file)
        guard let record = try await record(of: name) else { return .notArchived }
        let key = try options.encryption.key(for: record.encryption, of: "archived \(name)")
        let stored: [UInt8]
        do { stored = try await context.storage.get(context.location.walObjectKey(name)) }
        catch { throw EngineError.wrapping(error, context: "fetching \(name), whose record exists") }
        guard Int64(stored.count) == record.storedSize, SHA256Hasher.hash(stored).hexString == record.storedSHA256 else {
            throw EngineError(.integrity, "archived \(name) does not match its record (\(stored.count) bytes stored, \(record.storedSize) recorded, or another SHA-256): it was changed or damaged in storage; recovery cannot use it")
        }
        do {
            let bytes = try await runBlocking(name: "wal-decode") { () throws -> Int64 in
                var stages: [any StreamStage] = []
                if let key { stages.append(ChunkDecryptor(key: key, backupID: BackupIDBytes(name.rawValue))) }
                stages.append(try Compression.decompressor(record.compression.algorithm))
                let plaintext = try Self.transform(stored, through: stages, expectedSize: Int(record.plaintextSize))
                guard Int64(plaintext.count) == record.plaintextSize, SHA256Hasher.hash(plaintext).hexString == record.plaintextSHA256 else {
                    throw EngineError(.integrity, "archived \(name) decodes to other bytes than were archived; recovery cannot use it")
                }
                // Beside the target, then renamed: PostgreSQL never sees half a segment.
                let temporary = path + ".backstop-partial"
                guard FileManager.default.createFile(atPath: temporary, contents: Data(plaintext)) else {
                    throw EngineError(.storage, "cannot write \(temporary) (restore_command runs as the server's user, in the data directory)")
                }
                guard rename(temporary, path) == 0 else {
                    let reason = String(cString: strerror(errno))
                    unlink(temporary)
                    throw EngineError(.storage, "cannot move \(name) into \(path): \(reason)")
                }
                return Int64(plaintext.count)
            }
            context.logger.info("restored \(name) from the archive")
            return .restored(bytes: bytes)
        } catch {
            throw EngineError.wrapping(error, context: "restoring \(name)")
        }
    }

    // MARK: Records

    private func record(of name: WALFileName) async throws(EngineError) -> WALRecord? {
        let bytes: [UInt8]
        do { bytes = try await context.storage.get(context.location.walRecordKey(name)) }
        catch where error.kind == .notFound { return nil }
        catch { throw EngineError.wrapping(error, context: "reading the record of \(name)") }
        do { return try JSONDecoder().decode(WALRecord.self, from: Data(bytes)) }
        catch { throw EngineError(.integrity, "the record of archived \(name) cannot be read (\(EngineError.describeDecoding(error, document: "\(name).json"))); the archive is damaged there") }
    }

    /// The whole file in one allocation, read straight into it (a segment is 16 MiB: through
    /// `Data` it would be allocated, faulted in and copied twice).
    static func readFile(_ path: String) throws -> [UInt8] {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw EngineError(.notFound, "cannot read \(path): \(String(cString: strerror(errno))) (archive_command runs as the server's user)")
        }
        defer { close(descriptor) }
        var info = stat()
        guard fstat(descriptor, &info) == 0 else { throw EngineError(.storage, "cannot read \(path): \(String(cString: strerror(errno)))") }
        let size = Int(info.st_size)
        var failure: String?
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
            count = 0
            while count < size {
                let got = read(descriptor, buffer.baseAddress! + count, size - count)
                if got < 0, errno == EINTR { continue }
                guard got > 0 else {
                    failure = got == 0 ? "the file ended after \(count) of \(size) bytes" : String(cString: strerror(errno))
                    return
                }
                count += got
            }
        }
        if let failure { throw EngineError(.storage, "cannot read \(path): \(failure)") }
        return bytes
    }

    /// `bytes` through `stages`, fed in the 1 MiB pieces the stages are built for (as a
    /// backup streams them).
    static func transform(_ bytes: [UInt8], through stages: [any StreamStage], expectedSize: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(expectedSize)
        let pipeline = StagePipeline(stages) { out.append(contentsOf: $0) }
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let end = min(offset + (1 << 20), buffer.count)
                try pipeline.process(UnsafeRawBufferPointer(rebasing: buffer[offset..<end]))
                offset = end
            }
        }
        try pipeline.finish()
        return out
    }

    static func fileName(_ text: String) throws(EngineError) -> WALFileName {
        do { return try WALFileName(text) } catch { throw EngineError(.invalidOption, error.description, underlying: error) }
    }
}

/// Push-ahead's local state: one small file per segment archived ahead of PostgreSQL's call,
/// naming the segment file's identity (device, inode, size, modification time) when it was
/// archived. A call finds its mark only for the very file that was archived; a mark whose
/// segment is no longer waiting (archive_status has no `.ready`) is stale and removed.
struct PushAheadSpool: Sendable {
    let directory: String

    private func markPath(_ segment: String) -> String { directory + "/" + (segment as NSString).lastPathComponent + ".pushed" }

    private static func identity(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return "\(info.st_dev) \(info.st_ino) \(info.st_size) \(info.st_mtim.tv_sec).\(info.st_mtim.tv_nsec)"
    }

    /// True, and the mark gone, when `path` is the file a push-ahead archived.
    func takeMark(for path: String) -> Bool {
        let mark = markPath(path)
        guard let recorded = try? String(contentsOfFile: mark, encoding: .utf8) else { return false }
        unlink(mark)
        return recorded == Self.identity(path)
    }

    func mark(_ path: String) {
        guard let identity = Self.identity(path) else { return }
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = markPath(path) + ".partial"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(identity.utf8)) else { return }
        rename(temporary, markPath(path))
    }

    /// Up to `limit` segments PostgreSQL has marked ready, oldest first, other than `path`'s
    /// and not archived ahead already; marks of segments no longer waiting are removed.
    func readySegments(beside path: String, limit: Int) -> [String] {
        let folder = (path as NSString).deletingLastPathComponent
        let own = (path as NSString).lastPathComponent
        let status = (folder.isEmpty ? "." : folder) + "/archive_status"
        let waiting = Set(((try? FileManager.default.contentsOfDirectory(atPath: status)) ?? [])
            .filter { $0.hasSuffix(".ready") }.map { String($0.dropLast(".ready".count)) })
        let marked = Set(((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".pushed") }.map { String($0.dropLast(".pushed".count)) })
        for stale in marked.subtracting(waiting) { unlink(directory + "/" + stale + ".pushed") }
        return waiting.subtracting(marked).subtracting([own])
            .filter { (try? WALFileName($0)) != nil && !$0.hasSuffix(".history") }
            .sorted().prefix(limit).map { (folder.isEmpty ? "" : folder + "/") + $0 }
    }
}
