internal import COpenSSL

/// `AES-256-GCM-chunked-v1`: the encrypted stream format, specified in docs/format.md.
/// Any change here must come with a new version name and keep the old reader.
public enum ChunkedEncryption {
    public static let algorithmName = "AES-256-GCM-chunked-v1"
    public static let defaultChunkSize = 1024 * 1024
    static let magic = Array("BKSTPENC".utf8)
    static let version: UInt8 = 1
    static let streamIDSize = 16
    static let keyCheckSize = 16
    static let tagSize = 16
    /// stream id, index (u64), flags (u8), plaintext length (u32).
    static let chunkHeaderSize = streamIDSize + 8 + 1 + 4
    static let finalFlag: UInt8 = 1

    static func keyCheck(_ key: EncryptionKey, streamID: [UInt8]) -> [UInt8] {
        Array(hmacSHA256(key: key.bytes, message: Array("backstop/v1/key-check".utf8) + streamID).prefix(keyCheckSize))
    }

    static func streamKey(_ key: EncryptionKey, streamID: [UInt8]) -> [UInt8] {
        hmacSHA256(key: key.bytes, message: Array("backstop/v1/chunk-key".utf8) + streamID)
    }

    static func nonce(index: UInt64) -> [UInt8] {
        [0, 0, 0, 0] + index.bigEndianBytes
    }

    static func additionalData(chunkHeader: UnsafeRawBufferPointer, backupID: [UInt8]) -> [UInt8] {
        Array("backstop/v1/chunk".utf8) + Array(chunkHeader) + [UInt8(backupID.count)] + backupID
    }
}

/// Encrypts a stream into `AES-256-GCM-chunked-v1`.
public final class ChunkEncryptor: StreamStage {
    private let cipher: GCMCipher
    private let backupID: [UInt8]
    private let streamID: [UInt8]
    private let chunkSize: Int
    private var header: [UInt8]?
    private var plaintext: [UInt8]
    private var frame: [UInt8]
    private var index: UInt64 = 0

    /// `streamID` is random unless a test fixes it for golden vectors.
    public init(key: EncryptionKey, backupID: BackupIDBytes, chunkSize: Int = ChunkedEncryption.defaultChunkSize,
                streamID: [UInt8]? = nil) throws(PipelineError) {
        precondition(chunkSize > 0 && chunkSize <= Int(UInt32.max), "chunk size out of range")
        let chosenStreamID: [UInt8]
        if let streamID {
            chosenStreamID = streamID
        } else {
            chosenStreamID = try randomBytes(ChunkedEncryption.streamIDSize)
        }
        self.streamID = chosenStreamID
        self.backupID = backupID.bytes
        self.chunkSize = chunkSize
        cipher = try GCMCipher(key: ChunkedEncryption.streamKey(key, streamID: chosenStreamID), encrypting: true)
        plaintext = []
        plaintext.reserveCapacity(chunkSize)
        frame = [UInt8](repeating: 0, count: ChunkedEncryption.chunkHeaderSize + chunkSize + ChunkedEncryption.tagSize)
        header = ChunkedEncryption.magic + [ChunkedEncryption.version] + UInt32(chunkSize).bigEndianBytes + chosenStreamID
            + ChunkedEncryption.keyCheck(key, streamID: chosenStreamID) + [UInt8(self.backupID.count)] + self.backupID
    }

    public func process(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try emitHeaderOnce(output)
        var rest = input[...]
        while !rest.isEmpty {
            let take = min(rest.count, chunkSize - plaintext.count)
            plaintext.append(contentsOf: UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
            rest = rest.dropFirst(take)
            if plaintext.count == chunkSize {
                try emitChunk(final: false, output)
            }
        }
    }

    public func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try emitHeaderOnce(output)
        // Always a final chunk, possibly empty: its flag is what proves the stream complete.
        try emitChunk(final: true, output)
    }

    private func emitHeaderOnce(_ output: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let header else { return }
        self.header = nil
        try header.withUnsafeBytes { try output($0) }
    }

    private func emitChunk(final: Bool, _ output: (UnsafeRawBufferPointer) throws -> Void) throws {
        let length = plaintext.count
        let chunkHeader = streamID + index.bigEndianBytes + [final ? ChunkedEncryption.finalFlag : 0]
            + UInt32(length).bigEndianBytes
        let total = try frame.withUnsafeMutableBytes { space in
            chunkHeader.withUnsafeBytes { space.copyMemory(from: $0) }
            let aad = chunkHeader.withUnsafeBytes {
                ChunkedEncryption.additionalData(chunkHeader: $0, backupID: backupID)
            }
            let body = UnsafeMutableRawBufferPointer(rebasing: space[chunkHeader.count...])
            try plaintext.withUnsafeBytes { source in
                try cipher.seal(source, nonce: ChunkedEncryption.nonce(index: index), additionalData: aad, into: body)
            }
            return chunkHeader.count + length + ChunkedEncryption.tagSize
        }
        try frame.withUnsafeBytes { try output(UnsafeRawBufferPointer(rebasing: $0[0..<total])) }
        plaintext.removeAll(keepingCapacity: true)
        index += 1
    }
}

/// Decrypts `AES-256-GCM-chunked-v1`, emitting a chunk's plaintext only after its tag checked,
/// and naming the first problem precisely: wrong key, a chunk from another backup, chunks out
/// of order, flipped bytes, truncation, or bytes after the end.
public final class ChunkDecryptor: StreamStage {
    private let key: EncryptionKey
    private let backupID: [UInt8]
    private var cipher: GCMCipher?
    private var streamID: [UInt8] = []
    private var chunkSize = 0
    private var pending: [UInt8] = []
    private var plaintext: [UInt8] = []
    private var index: UInt64 = 0
    private var sawFinal = false
    /// Stream offset of the first byte of `pending`, for messages.
    private var offset: Int64 = 0

    public init(key: EncryptionKey, backupID: BackupIDBytes) {
        self.key = key
        self.backupID = backupID.bytes
    }

    public func process(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard !input.isEmpty else { return }
        pending.append(contentsOf: input)
        if cipher == nil { try readHeader() }
        while cipher != nil, try decryptChunkIfComplete(output) {}
    }

    public func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if cipher == nil {
            throw PipelineError(.truncated, "the encrypted stream ends inside its header (\(pending.count) bytes): the backup is truncated")
        }
        if !sawFinal {
            throw PipelineError(.truncated, "the encrypted stream ends after \(index) chunks without its final chunk, at offset \(offset + Int64(pending.count)): the backup is truncated")
        }
    }

    private func readHeader() throws {
        let fixed = ChunkedEncryption.magic.count + 1 + 4 + ChunkedEncryption.streamIDSize + ChunkedEncryption.keyCheckSize + 1
        guard pending.count >= fixed else { return }
        guard Array(pending[0..<8]) == ChunkedEncryption.magic else {
            throw PipelineError(.invalidHeader, "the object does not start with an encryption header: it is not encrypted, or damaged; check --encryption-key-file matches how the backup was made")
        }
        guard pending[8] == ChunkedEncryption.version else {
            throw PipelineError(.invalidHeader, "encryption format version \(pending[8]) is unknown to this backstop; use a release that reads it")
        }
        let idLength = Int(pending[fixed - 1])
        guard pending.count >= fixed + idLength else { return }
        chunkSize = Int(UInt32(bigEndianBytes: pending[9..<13]))
        streamID = Array(pending[13..<29])
        let check = Array(pending[29..<45])
        let storedBackupID = Array(pending[fixed..<(fixed + idLength)])
        guard check == ChunkedEncryption.keyCheck(key, streamID: streamID) else {
            throw PipelineError(.wrongKey, "the encryption key (fingerprint \(key.fingerprint)) is not the one this backup was encrypted with; pass the key or passphrase used at backup time")
        }
        guard storedBackupID == backupID else {
            throw PipelineError(.chunkFromAnotherStream, "the encrypted object belongs to backup \(String(decoding: storedBackupID, as: UTF8.self)), not \(String(decoding: backupID, as: UTF8.self)): objects were swapped between backups")
        }
        guard chunkSize > 0 else {
            throw PipelineError(.invalidHeader, "the encryption header names a chunk size of 0: the header is damaged")
        }
        cipher = try GCMCipher(key: ChunkedEncryption.streamKey(key, streamID: streamID), encrypting: false)
        pending.removeFirst(fixed + idLength)
        offset = Int64(fixed + idLength)
        plaintext = [UInt8](repeating: 0, count: chunkSize)
    }

    /// Decrypts the first buffered chunk if all of it is there; returns whether it did. The only
    /// place that sees bytes after the final chunk: `process` calls it until it returns false.
    private func decryptChunkIfComplete(_ output: (UnsafeRawBufferPointer) throws -> Void) throws -> Bool {
        let headerSize = ChunkedEncryption.chunkHeaderSize
        if sawFinal && !pending.isEmpty {
            throw PipelineError(.trailingData, "\(pending.count) bytes follow the final encrypted chunk at offset \(offset): the object was appended to; restore from another backup")
        }
        guard pending.count >= headerSize, let cipher else { return false }
        let chunkStreamID = Array(pending[0..<16])
        let chunkIndex = UInt64(bigEndianBytes: pending[16..<24])
        let flags = pending[24]
        let length = Int(UInt32(bigEndianBytes: pending[25..<29]))
        guard chunkStreamID == streamID else {
            throw PipelineError(.chunkFromAnotherStream, "encrypted chunk \(index) at offset \(offset) comes from another backup's stream: data was spliced between backups")
        }
        guard chunkIndex == index else {
            throw PipelineError(.chunkOutOfOrder, "encrypted chunk at offset \(offset) is chunk \(chunkIndex) where chunk \(index) belongs: chunks were reordered")
        }
        let isFinal = flags & ChunkedEncryption.finalFlag != 0
        guard flags & ~ChunkedEncryption.finalFlag == 0, length <= chunkSize, isFinal || length == chunkSize else {
            throw PipelineError(.authenticationFailed, "encrypted chunk \(index) at offset \(offset) has a damaged header (flags \(flags), length \(length)): restore from another backup")
        }
        let frameSize = headerSize + length + ChunkedEncryption.tagSize
        guard pending.count >= frameSize else { return false }
        let opened = try pending.withUnsafeBytes { frame in
            let aad = ChunkedEncryption.additionalData(
                chunkHeader: UnsafeRawBufferPointer(rebasing: frame[0..<headerSize]), backupID: backupID)
            return try plaintext.withUnsafeMutableBytes { target in
                try cipher.open(UnsafeRawBufferPointer(rebasing: frame[headerSize..<frameSize]),
                                nonce: ChunkedEncryption.nonce(index: index), additionalData: aad, into: target)
            }
        }
        guard opened else {
            throw PipelineError(.authenticationFailed, "encrypted chunk \(index) at offset \(offset) failed authentication: its bytes were changed; restore from another backup")
        }
        try plaintext.withUnsafeBytes { try output(UnsafeRawBufferPointer(rebasing: $0[0..<length])) }
        pending.removeFirst(frameSize)
        offset += Int64(frameSize)
        index += 1
        sawFinal = isFinal
        return true
    }
}

/// A backup id as the encryption format binds it (its ASCII bytes, at most 255).
public struct BackupIDBytes: Sendable {
    let bytes: [UInt8]
    public init(_ id: String) {
        bytes = Array(id.utf8.prefix(255))
    }
}

/// AES-256-GCM with a fixed key and a 12-byte nonce per message.
final class GCMCipher {
    private let context: OpaquePointer
    private let encrypting: Bool

    init(key: [UInt8], encrypting: Bool) throws(PipelineError) {
        guard let context = EVP_CIPHER_CTX_new() else {
            throw PipelineError(.crypto, "OpenSSL could not allocate a cipher context")
        }
        self.context = context
        self.encrypting = encrypting
        let status = encrypting
            ? EVP_EncryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nil)
            : EVP_DecryptInit_ex(context, EVP_aes_256_gcm(), nil, key, nil)
        // Once every property is set, a throwing init still runs deinit, which frees the context.
        guard status == 1 else {
            throw PipelineError(.crypto, "AES-256-GCM setup failed: \(openSSLMessage())")
        }
    }

    deinit { EVP_CIPHER_CTX_free(context) }

    /// Writes ciphertext then the 16-byte tag into `target`.
    func seal(_ plaintext: UnsafeRawBufferPointer, nonce: [UInt8], additionalData: [UInt8],
              into target: UnsafeMutableRawBufferPointer) throws(PipelineError) {
        var written: Int32 = 0
        let body = target.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard EVP_EncryptInit_ex(context, nil, nil, nil, nonce) == 1,
              EVP_EncryptUpdate(context, nil, &written, additionalData, Int32(additionalData.count)) == 1,
              plaintext.isEmpty || EVP_EncryptUpdate(
                  context, body, &written, plaintext.baseAddress!.assumingMemoryBound(to: UInt8.self),
                  Int32(plaintext.count)) == 1,
              EVP_EncryptFinal_ex(context, body + plaintext.count, &written) == 1,
              EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_GET_TAG, Int32(ChunkedEncryption.tagSize),
                                  body + plaintext.count) == 1
        else { throw PipelineError(.crypto, "AES-256-GCM encryption failed: \(openSSLMessage())") }
    }

    /// Decrypts `sealed` (ciphertext then tag) into `target`; false when authentication fails.
    func open(_ sealed: UnsafeRawBufferPointer, nonce: [UInt8], additionalData: [UInt8],
              into target: UnsafeMutableRawBufferPointer) throws(PipelineError) -> Bool {
        let length = sealed.count - ChunkedEncryption.tagSize
        var written: Int32 = 0
        let source = sealed.baseAddress!.assumingMemoryBound(to: UInt8.self)
        let body = target.baseAddress!.assumingMemoryBound(to: UInt8.self)
        guard EVP_DecryptInit_ex(context, nil, nil, nil, nonce) == 1,
              EVP_DecryptUpdate(context, nil, &written, additionalData, Int32(additionalData.count)) == 1,
              length == 0 || EVP_DecryptUpdate(context, body, &written, source, Int32(length)) == 1,
              EVP_CIPHER_CTX_ctrl(context, EVP_CTRL_GCM_SET_TAG, Int32(ChunkedEncryption.tagSize),
                                  UnsafeMutableRawPointer(mutating: source + length)) == 1
        else { throw PipelineError(.crypto, "AES-256-GCM decryption setup failed: \(openSSLMessage())") }
        var finalWritten: Int32 = 0
        return EVP_DecryptFinal_ex(context, body + length, &finalWritten) == 1
    }
}

extension FixedWidthInteger {
    var bigEndianBytes: [UInt8] {
        withUnsafeBytes(of: self.bigEndian) { Array($0) }
    }

    init<C: Collection>(bigEndianBytes bytes: C) where C.Element == UInt8 {
        self = bytes.reduce(0) { $0 << 8 | Self($1) }
    }
}
