internal import BackstopAPI
internal import Pipeline
internal import Storage

extension BackupManifest.StoredObject {
    /// The manifest's entry for an object whose stored bytes passed through `hashed` (a
    /// block-hashing stage) as they were written: what `CheckedObjectReader` checks them against.
    init(name: String, size: Int64, hashed: BlockHashingStage) {
        self.init(name: name, size: size, sha256: hashed.sha256, blockSize: hashed.blockSize ?? BlockHashingStage.defaultBlockSize,
                  blockSHA256: hashed.blockHashes)
    }
}

/// Streams a stored object into a pipeline one block at a time, checking each block's
/// SHA-256 against the manifest before any of its bytes go further: damaged data never
/// reaches the decryptor, the decompressor or pg_restore. Blocks; run it on a dedicated thread.
struct CheckedObjectReader {
    let storage: any ObjectStorage
    let key: String
    let object: BackupManifest.StoredObject

    func stream(into pipeline: StagePipeline, progress: TransferProgress) throws(EngineError) {
        let reader: any ObjectReader
        do { reader = try storage.makeReader(key, range: nil) }
        catch { throw EngineError.wrapping(error, context: "cannot open \(object.name)") }
        defer { reader.close() }
        let whole = SHA256Hasher()
        let blockHasher = SHA256Hasher()
        var block = [UInt8](repeating: 0, count: object.blockSize)
        var offset: Int64 = 0
        for (index, expected) in object.blockSHA256.enumerated() {
            if progress.isCancelled { throw EngineError(.interrupted, "interrupted (SIGTERM or SIGINT)") }
            let length = Int(min(Int64(object.blockSize), object.size - offset))
            let got = try fill(&block, count: length, reader: reader)
            guard got == length else {
                throw EngineError(.integrity, "\(object.name) is truncated: block \(index) at offset \(offset) has \(got) of \(length) bytes (object should be \(object.size) bytes); restore from another backup")
            }
            do {
                try block.withUnsafeBytes { buffer in
                    let bytes = UnsafeRawBufferPointer(rebasing: buffer[0..<length])
                    blockHasher.update(bytes)
                    let actual = blockHasher.finalize().hexString
                    guard actual == expected else {
                        throw EngineError(.integrity, "\(object.name): block \(index) (offset \(offset), \(length) bytes) does not match its SHA-256 in the manifest (expected \(expected.prefix(12))…, got \(actual.prefix(12))…): the stored data is damaged; restore from another backup")
                    }
                    whole.update(bytes)
                    do { try pipeline.process(bytes) }
                    catch { throw EngineError.wrapping(error, context: "\(object.name) block \(index)") }
                }
            } catch {
                throw EngineError.wrapping(error)
            }
            progress.add(length)
            offset += Int64(length)
        }
        var extra = [UInt8](repeating: 0, count: 1)
        if try fill(&extra, count: 1, reader: reader) != 0 {
            throw EngineError(.integrity, "\(object.name) is longer than the \(object.size) bytes in the manifest: data was appended; restore from another backup")
        }
        guard whole.finalize().hexString == object.sha256 else {
            throw EngineError(.integrity, "\(object.name): the whole-object SHA-256 does not match the manifest although every block does: the manifest is inconsistent")
        }
        do { try pipeline.finish() }
        catch { throw EngineError.wrapping(error, context: object.name) }
    }

    private func fill(_ buffer: inout [UInt8], count: Int, reader: any ObjectReader) throws(EngineError) -> Int {
        var filled = 0
        while filled < count {
            let got: Int
            do {
                got = try buffer.withUnsafeMutableBytes { (space) throws(StorageError) -> Int in
                    try reader.read(into: UnsafeMutableRawBufferPointer(rebasing: space[filled..<count]))
                }
            } catch {
                throw EngineError.wrapping(error, context: "cannot read \(object.name)")
            }
            if got == 0 { break }
            filled += got
        }
        return filled
    }
}
