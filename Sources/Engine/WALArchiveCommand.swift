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
        /// Prefetch: after a segment, a fetch also restores up to this many following ones,
        /// checked, into `spoolDirectory`; PostgreSQL's call for such a segment moves it into
        /// place without reaching the storage.
        public var prefetch: Int
        public var spoolDirectory: String?

        public init(compression: CompressionAlgorithm = .zstd, level: Int? = nil, encryption: EncryptionSource,
                    pushAhead: Int = 0, prefetch: Int = 0, spoolDirectory: String? = nil) {
            self.compression = compression
            self.level = level
            self.encryption = encryption
            self.pushAhead = pushAhead
            self.prefetch = prefetch
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
                return try StagePipeline.transform(plaintext, through: stages, expectedSize: plaintext.count + plaintext.count / 64 + (64 << 10))
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
    /// With prefetch, a segment already restored into the spool is moved into place instead,
    /// and the following segments are fetched into the spool.
    public func fetch(_ file: String, to path: String) async throws(EngineError) -> FetchOutcome {
        let name = try Self.fileName(file)
        let spool = options.prefetch > 0 ? options.spoolDirectory.map(PrefetchSpool.init(directory:)) : nil
        if let spool, let taken = try? await runBlocking(name: "wal-spool", { try spool.take(name.rawValue, to: path) }) {
            context.logger.info("restored \(name) from the prefetched copy")
            await prefetch(after: name, segmentHeader: taken.header, into: spool)
            return .restored(bytes: taken.size)
        }
        guard let plaintext = try await decodeChecked(name) else {
            try await checkArchiveReachable(asked: name)
            return .notArchived
        }
        do {
            try await runBlocking(name: "wal-write") { try Self.write(plaintext, as: name, to: path) }
        } catch {
            throw EngineError.wrapping(error, context: "restoring \(name)")
        }
        context.logger.info("restored \(name) from the archive")
        if let spool { await prefetch(after: name, segmentHeader: Array(plaintext.prefix(64)), into: spool) }
        return .restored(bytes: Int64(plaintext.count))
    }

    /// "Not archived" ends recovery, and PostgreSQL may promote there: before saying it of a
    /// segment, make sure the archive is there at all. The timeline's folder holds at least
    /// the base backup's segments or the timeline's history file, so an empty one means an
    /// unmounted volume, a wrong location or a deleted bucket, not the end of the archive.
    /// History files are exempt: PostgreSQL probes for timelines that do not exist.
    private func checkArchiveReachable(asked name: WALFileName) async throws(EngineError) {
        guard !name.rawValue.hasSuffix(".history") else { return }
        let folder = context.location.walPrefix + name.timeline + "/"
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: folder) }
        catch { throw EngineError.wrapping(error, context: "checking that the archive is reachable") }
        guard !objects.isEmpty else {
            throw EngineError(.storage, "\(context.storage.displayName)/\(folder) holds no WAL of timeline \(name.timeline): the archive is not where restore_command looks (an unmounted volume, another location or environment, a deleted bucket); recovery stops here instead of ending as if \(name) were past the archive's end")
        }
    }

    /// The archived file's plaintext, every check passed; nil when it is not archived.
    private func decodeChecked(_ name: WALFileName) async throws(EngineError) -> [UInt8]? {
        guard let record = try await record(of: name) else { return nil }
        let key = try options.encryption.key(for: record.encryption, of: "archived \(name)")
        let stored: [UInt8]
        do { stored = try await context.storage.get(context.location.walObjectKey(name)) }
        catch { throw EngineError.wrapping(error, context: "fetching \(name), whose record exists") }
        guard Int64(stored.count) == record.storedSize, SHA256Hasher.hash(stored).hexString == record.storedSHA256 else {
            throw EngineError(.integrity, "archived \(name) does not match its record (\(stored.count) bytes stored, \(record.storedSize) recorded, or another SHA-256): it was changed or damaged in storage; recovery cannot use it")
        }
        do {
            return try await runBlocking(name: "wal-decode") { () throws -> [UInt8] in
                var stages: [any StreamStage] = []
                if let key { stages.append(ChunkDecryptor(key: key, backupID: BackupIDBytes(name.rawValue))) }
                stages.append(try Compression.decompressor(record.compression.algorithm))
                let plaintext = try StagePipeline.transform(stored, through: stages, expectedSize: Int(record.plaintextSize))
                guard Int64(plaintext.count) == record.plaintextSize, SHA256Hasher.hash(plaintext).hexString == record.plaintextSHA256 else {
                    throw EngineError(.integrity, "archived \(name) decodes to other bytes than were archived; recovery cannot use it")
                }
                return plaintext
            }
        } catch {
            throw EngineError.wrapping(error, context: "restoring \(name)")
        }
    }

    /// Beside the target, then renamed: PostgreSQL never sees half a segment.
    static func write(_ bytes: [UInt8], as name: WALFileName, to path: String) throws {
        let temporary = path + ".backstop-partial"
        guard FileManager.default.createFile(atPath: temporary, contents: Data(bytes)) else {
            throw EngineError(.storage, "cannot write \(temporary) (restore_command runs as the server's user, in the data directory)")
        }
        guard rename(temporary, path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw EngineError(.storage, "cannot move \(name) into \(path): \(reason)")
        }
    }

    /// Fetches the segments after `name` that are archived and not in the spool yet, in
    /// parallel, into the spool; drops spooled segments up to `name` (replay has passed them).
    /// The segment size comes from the segment's own long page header. Failures are only
    /// logged: PostgreSQL's own call fetches the file.
    private func prefetch(after name: WALFileName, segmentHeader: [UInt8], into spool: PrefetchSpool) async {
        let count = options.prefetch
        let next: [WALFileName]
        do {
            next = try await runBlocking(name: "wal-spool") { spool.following(name, header: segmentHeader, count: count) }
        } catch { return }
        await withTaskGroup(of: Void.self) { group in
            for segment in next {
                group.addTask {
                    do {
                        guard let plaintext = try await decodeChecked(segment) else { return }
                        try await runBlocking(name: "wal-spool") { try spool.put(plaintext, as: segment) }
                    } catch {
                        context.logger.info("prefetch of \(segment) failed (PostgreSQL's call fetches it): \(EngineError.wrapping(error).message)")
                    }
                }
            }
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

/// Prefetch's spool: segments restored and checked ahead of PostgreSQL's calls, under their
/// own names, written whole then renamed, so a file there is always complete.
struct PrefetchSpool: Sendable {
    let directory: String

    /// Moves the spooled `name` to `path` (copying across file systems): its size and first
    /// bytes (the page header prefetch reads the segment size from); nil when not spooled.
    func take(_ name: String, to path: String) throws -> (size: Int64, header: [UInt8])? {
        let spooled = directory + "/" + name
        var info = stat()
        guard stat(spooled, &info) == 0 else { return nil }
        if rename(spooled, path) != 0 {
            guard errno == EXDEV, let data = FileManager.default.contents(atPath: spooled) else { return nil }
            try WALArchiveCommand.write([UInt8](data), as: try WALFileName(name), to: path)
            unlink(spooled)
        }
        let header = FileHandle(forReadingAtPath: path).flatMap { handle in
            defer { try? handle.close() }
            return try? handle.read(upToCount: 64)
        }
        return (Int64(info.st_size), header.map { [UInt8]($0) } ?? [])
    }

    func put(_ bytes: [UInt8], as name: WALFileName) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try WALArchiveCommand.write(bytes, as: name, to: directory + "/" + name.rawValue)
    }

    /// The `count` segment names after `name` on its timeline not spooled yet; spooled
    /// segments at or before `name` are removed.
    func following(_ name: WALFileName, header: [UInt8], count: Int) -> [WALFileName] {
        let raw = name.rawValue
        guard raw.utf8.count == 24, let timeline = UInt32(raw.prefix(8), radix: 16),
              let high = UInt64(raw.dropFirst(8).prefix(8), radix: 16), let low = UInt64(raw.suffix(8), radix: 16) else { return [] }
        let spooled = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        for old in spooled where old.utf8.count == 24 && old.prefix(8) == raw.prefix(8) && old <= raw { unlink(directory + "/" + old) }
        // xlp_seg_size: bytes 32..<36 of a segment's first (long) page header, little-endian.
        guard header.count >= 36 else { return [] }
        let size = UInt64(header[32]) | UInt64(header[33]) << 8 | UInt64(header[34]) << 16 | UInt64(header[35]) << 24
        guard size >= 1 << 20, size <= 1 << 30, size & (size - 1) == 0 else { return [] }
        let segment = high * (0x1_0000_0000 / size) + low
        let wanted = (1...max(1, count)).compactMap { try? WALFileName(WALSegment.name(timeline: timeline, segment: segment + UInt64($0), segmentSize: size)) }
        return wanted.filter { !spooled.contains($0.rawValue) }
    }
}
