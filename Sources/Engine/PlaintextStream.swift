internal import BackstopAPI
internal import BlockingCalls
internal import Foundation
internal import Pipeline
internal import Storage
#if canImport(Glibc)
internal import Glibc
#endif

/// Reads a committed backup back to pg_dump's bytes: block-checked, decrypted, decompressed,
/// hashed. Shared by verify and restore, so both prove the same things.
struct PlaintextStream: Sendable {
    let storage: any ObjectStorage
    let location: BackupLocation
    let manifest: BackupManifest
    let key: EncryptionKey?

    struct Digest: Sendable {
        let size: Int64
        /// nil when the plaintext was not hashed (see `run`'s `hashPlaintext`).
        let sha256: String?
        /// What a physical base backup's tar held, when it was read as one.
        var baseBackup: BaseBackupContents? = nil
    }

    /// How the plaintext of a physical base backup is read: its tar checked to the end, and
    /// optionally written out as a data directory.
    enum BaseBackupReading: Sendable {
        case check
        /// `durable`: every file synced as it is written (a restore; not a scratch copy).
        case extract(into: String, durable: Bool)
    }

    /// The dump object (the only object of format 1).
    var dumpObject: BackupManifest.StoredObject { manifest.objects[0] }

    /// Streams the plaintext into `descriptor` (a child's stdin). When `consumerMayStopEarly`
    /// (pg_restore --list reads only the table of contents), a closed pipe is not an error and
    /// the rest is still read and checked to the end.
    ///
    /// Without `hashPlaintext` the decoded bytes are counted, not hashed: the decompressor's
    /// own content check (zstd's frame checksum, gzip's CRC-32) then proves them equal to what
    /// was compressed. The backup's read-back relies on that, as the bytes compressed are the
    /// ones it has just hashed itself; `verify` and `restore` hash, for a proof that needs no
    /// trust in the writer.
    func run(into descriptor: Int32?, consumerMayStopEarly: Bool, hashPlaintext: Bool = true,
             baseBackup reading: BaseBackupReading? = nil, progress: TransferProgress) async throws(EngineError) -> Digest {
        let storage = storage
        let key = key
        let manifest = manifest
        let objectKey = location.objectKey(manifest.id, name: dumpObject.name)
        let object = dumpObject
        do {
            return try await runBlocking(name: "restore-stream") { () throws -> Digest in
                // Two threads: this one reads, checks blocks and decrypts; the other decompresses,
                // hashes and feeds pg_restore.
                let digest = hashPlaintext ? BlockHashingStage(blockSize: nil) : nil
                var decoding: [any StreamStage] = [try Compression.decompressor(manifest.compression.algorithm)]
                if let digest { decoding.append(digest) }
                let tar: BaseBackupReader?
                switch reading {
                case nil: tar = nil
                case .check: tar = BaseBackupReader()
                case .extract(let directory, let durable): tar = BaseBackupReader(extractingInto: directory, durable: durable)
                }
                if let tar { decoding.append(tar) }
                let sink = DescriptorSink(descriptor: descriptor, consumerMayStopEarly: consumerMayStopEarly)
                let decoder = ThreadedPipeline(StagePipeline(decoding) { try sink.write($0) }, name: "decode")
                let decrypting: [any StreamStage] = key.map { [ChunkDecryptor(key: $0, backupID: BackupIDBytes(manifest.id.rawValue))] } ?? []
                do {
                    try CheckedObjectReader(storage: storage, key: objectKey, object: object)
                        .stream(into: StagePipeline(decrypting) { try decoder.process($0) }, progress: progress)
                    do { try decoder.finish() } catch { throw EngineError.wrapping(error, context: object.name) }
                } catch {
                    decoder.cancel()
                    throw error
                }
                return Digest(size: sink.byteCount, sha256: digest?.sha256, baseBackup: tar?.contents)
            }
        } catch {
            throw EngineError.wrapping(error)
        }
    }

    /// Checks the plaintext against the manifest.
    func check(_ digest: Digest) throws(EngineError) {
        guard digest.size == manifest.plaintext.size, digest.sha256 == nil || digest.sha256 == manifest.plaintext.sha256 else {
            throw EngineError(.integrity, "the decoded dump of \(manifest.id) is \(digest.size) bytes with SHA-256 \((digest.sha256 ?? "(not hashed)").prefix(12))…, the manifest says \(manifest.plaintext.size) bytes with \(manifest.plaintext.sha256.prefix(12))…; restore from another backup")
        }
    }

    /// Every object has the size the manifest says; checked before anything is read or touched.
    func checkSizes() async throws(EngineError) {
        guard manifest.objects.count == 1 else {
            throw EngineError(.integrity, "backup \(manifest.id) lists \(manifest.objects.count) objects; format 1 has exactly one dump object")
        }
        for object in manifest.objects {
            let key = location.objectKey(manifest.id, name: object.name)
            let info: ObjectInfo
            do { info = try await storage.head(key) }
            catch { throw EngineError(.integrity, "backup \(manifest.id) is missing \(object.name) (\(error.description)); restore from another backup", underlying: error) }
            guard info.size == object.size else {
                throw EngineError(.integrity, "\(object.name) of \(manifest.id) is \(info.size) bytes, the manifest says \(object.size): the stored data is damaged; restore from another backup")
            }
        }
    }
}

/// Writes plaintext into a child's stdin (with no descriptor, discards it), counting it.
final class DescriptorSink {
    private let descriptor: Int32?
    private let consumerMayStopEarly: Bool
    private var consumerClosed = false
    private(set) var byteCount: Int64 = 0

    init(descriptor: Int32?, consumerMayStopEarly: Bool) {
        self.descriptor = descriptor
        self.consumerMayStopEarly = consumerMayStopEarly
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        byteCount += Int64(bytes.count)
        guard let descriptor, !consumerClosed else { return }
        guard let failure = writeAll(descriptor, bytes) else { return }
        if failure == EPIPE {
            consumerClosed = true
            if consumerMayStopEarly { return }
            throw EngineError(.restoreFailed, "pg_restore stopped reading its input")
        }
        throw EngineError(.restoreFailed, "cannot write to pg_restore: \(String(cString: strerror(failure)))")
    }
}
