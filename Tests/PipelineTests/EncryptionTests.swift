import BackstopAPI
import Foundation
import Pipeline
import Testing

@Suite("AES-256-GCM-chunked-v1")
struct EncryptionTests {
    static let goldenKey = try! EncryptionKey(keyFileContents: Array(0..<32), source: "test")
    static let goldenStream = Array(UInt8(0xA0)...UInt8(0xAF))
    static let goldenID = BackupIDBytes("20261121T020000Z-3f9a")

    /// From docs/format.md, produced by hack/format-vectors.py (an independent implementation).
    static let vectors: [(plaintext: String, hex: String)] = [
        ("", "424b535450454e430100000010a0a1a2a3a4a5a6a7a8a9aaabacadaeaf07d488da34251b33db94568dbff089e0153230323631313231543032303030305a2d33663961a0a1a2a3a4a5a6a7a8a9aaabacadaeaf00000000000000000100000000c333a50318ba660345f5d706f9ab8f5f"),
        ("backstop", "424b535450454e430100000010a0a1a2a3a4a5a6a7a8a9aaabacadaeaf07d488da34251b33db94568dbff089e0153230323631313231543032303030305a2d33663961a0a1a2a3a4a5a6a7a8a9aaabacadaeaf000000000000000001000000084deed47b9afa1c2f81787df747e12c7266bd610ff0551a07"),
        ("0123456789abcdef0123456789abcdef", "424b535450454e430100000010a0a1a2a3a4a5a6a7a8a9aaabacadaeaf07d488da34251b33db94568dbff089e0153230323631313231543032303030305a2d33663961a0a1a2a3a4a5a6a7a8a9aaabacadaeaf000000000000000000000000101fbe8523ddbb45680e68d99f9e48ddd6a361eeff29753dec2a6c5ffb7541c25fa0a1a2a3a4a5a6a7a8a9aaabacadaeaf00000000000000010000000010ccdf8e84f2f83b936652963bf3a76b9ba250c487f5845e5df2d0f89a82aa52b1a0a1a2a3a4a5a6a7a8a9aaabacadaeaf00000000000000020100000000945f19e7089efd00c9adaaa41a1407bc"),
        ("PostgreSQL backups you can prove.", "424b535450454e430100000010a0a1a2a3a4a5a6a7a8a9aaabacadaeaf07d488da34251b33db94568dbff089e0153230323631313231543032303030305a2d33663961a0a1a2a3a4a5a6a7a8a9aaabacadaeaf000000000000000000000000107fe0c4648efc160c671d989f9c4fd3c56bc471f10f0f6065217fd375a4a9d4e2a0a1a2a3a4a5a6a7a8a9aaabacadaeaf000000000000000100000000108c9d9ccea9b82dc73f05d729e2ac7898f4a907fc05eb01fb98259f96500215c0a0a1a2a3a4a5a6a7a8a9aaabacadaeaf00000000000000020100000001cc523a3ebab0552309c89b26cd0879b2c8"),
    ]

    @Test("golden vectors encrypt byte for byte", arguments: 0..<4)
    func goldenEncrypt(_ index: Int) throws {
        let vector = Self.vectors[index]
        let encryptor = try ChunkEncryptor(key: Self.goldenKey, backupID: Self.goldenID, chunkSize: 16,
                                           streamID: Self.goldenStream)
        #expect(try run([encryptor], Array(vector.plaintext.utf8)).hexString == vector.hex)
    }

    @Test("golden vectors decrypt", arguments: 0..<4)
    func goldenDecrypt(_ index: Int) throws {
        let vector = Self.vectors[index]
        let decryptor = ChunkDecryptor(key: Self.goldenKey, backupID: Self.goldenID)
        #expect(try run([decryptor], try #require([UInt8](hex: vector.hex))) == Array(vector.plaintext.utf8))
    }

    @Test func fingerprintMatchesTheDocument() {
        #expect(Self.goldenKey.fingerprint == "hmac-sha256:611be2e1391100b0")
        #expect("\(Self.goldenKey)" == "<redacted>")
    }

    @Test("round trip across chunk boundaries", arguments: [0, 1, 15, 16, 17, 1000, 70_000])
    func roundTrip(_ size: Int) throws {
        let plaintext = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
        let sealed = try encrypt(plaintext, chunkSize: 1024)
        #expect(try decrypt(sealed) == plaintext)
    }

    @Test func wrongKeyIsNamed() throws {
        let sealed = try encrypt(Array(repeating: 1, count: 5000), chunkSize: 1024)
        let other = try EncryptionKey(keyFileContents: Array(repeating: 9, count: 32), source: "other")
        #expect(kind { _ = try run([ChunkDecryptor(key: other, backupID: Self.goldenID)], sealed) } == .wrongKey)
    }

    @Test func truncationIsNamed() throws {
        let sealed = try encrypt(Array(repeating: 1, count: 5000), chunkSize: 1024)
        // Cut exactly at a chunk boundary: every remaining chunk is intact, only the final one is missing.
        let frame = 29 + 1024 + 16
        let header = sealed.count - 4 * frame - (29 + 5000 - 4 * 1024 + 16)
        #expect(kind { _ = try decrypt(Array(sealed.prefix(header + 2 * frame))) } == .truncated)
        #expect(kind { _ = try decrypt(Array(sealed.prefix(header + 2 * frame + 100))) } == .truncated)
        #expect(kind { _ = try decrypt(Array(sealed.prefix(10))) } == .truncated)
    }

    @Test func flippedByteIsNamed() throws {
        var sealed = try encrypt(Array(repeating: 1, count: 5000), chunkSize: 1024)
        sealed[sealed.count / 2] ^= 0x01
        #expect(kind { _ = try decrypt(sealed) } == .authenticationFailed)
    }

    @Test func swappedChunksAreNamed() throws {
        let sealed = try encrypt((0..<5000).map { UInt8(truncatingIfNeeded: $0) }, chunkSize: 1024)
        let frame = 29 + 1024 + 16
        let header = sealed.count - 4 * frame - (29 + 5000 - 4 * 1024 + 16)
        var swapped = sealed
        swapped.replaceSubrange(header..<(header + frame), with: sealed[(header + frame)..<(header + 2 * frame)])
        swapped.replaceSubrange((header + frame)..<(header + 2 * frame), with: sealed[header..<(header + frame)])
        #expect(kind { _ = try decrypt(swapped) } == .chunkOutOfOrder)
    }

    @Test func chunkFromAnotherBackupIsNamed() throws {
        let plaintext = Array(repeating: UInt8(7), count: 3000)
        let first = try encrypt(plaintext, chunkSize: 1024)
        let second = try encrypt(plaintext, chunkSize: 1024)
        let frame = 29 + 1024 + 16
        let header = first.count - 2 * frame - (29 + 3000 - 2 * 1024 + 16)
        var spliced = first
        spliced.replaceSubrange((header + frame)..<(header + 2 * frame), with: second[(header + frame)..<(header + 2 * frame)])
        #expect(kind { _ = try decrypt(spliced) } == .chunkFromAnotherStream)
        // The whole object of another backup id is refused too.
        let foreign = try run([ChunkEncryptor(key: Self.goldenKey, backupID: BackupIDBytes("20261121T020000Z-0000"), chunkSize: 1024)], plaintext)
        #expect(kind { _ = try decrypt(foreign) } == .chunkFromAnotherStream)
    }

    @Test func trailingDataIsNamed() throws {
        let sealed = try encrypt(Array(repeating: 1, count: 100), chunkSize: 1024)
        #expect(kind { _ = try decrypt(sealed + [0]) } == .trailingData)
    }

    @Test func keyFilesAcceptRawAndBase64() throws {
        let raw = Array(UInt8(0)..<32)
        let base64 = Array((Data(raw).base64EncodedString() + "\n").utf8)
        #expect(try EncryptionKey(keyFileContents: base64, source: "k").fingerprint
            == EncryptionKey(keyFileContents: raw, source: "k").fingerprint)
        let error = #expect(throws: PipelineError.self) { try EncryptionKey(keyFileContents: Array("short".utf8), source: "/keys/k") }
        #expect(error?.message.contains("/keys/k") == true)
    }

    @Test func passphraseDerivationIsReproducible() throws {
        let first = try EncryptionKey(passphrase: Array("correct horse\n".utf8))
        let derivation = try #require(first.derivation)
        let again = try EncryptionKey(passphrase: Array("correct horse".utf8), derivation: derivation)
        let wrong = try EncryptionKey(passphrase: Array("wrong horse".utf8), derivation: derivation)
        #expect(first.fingerprint == again.fingerprint)
        #expect(first.fingerprint != wrong.fingerprint)
        #expect(derivation.name == "scrypt" && derivation.n == 1 << 15)
    }

    // MARK: helpers

    private func encrypt(_ plaintext: [UInt8], chunkSize: Int) throws -> [UInt8] {
        try run([ChunkEncryptor(key: Self.goldenKey, backupID: Self.goldenID, chunkSize: chunkSize)], plaintext)
    }

    private func decrypt(_ sealed: [UInt8]) throws -> [UInt8] {
        try run([ChunkDecryptor(key: Self.goldenKey, backupID: Self.goldenID)], sealed)
    }

    private func kind(_ body: () throws -> Void) -> PipelineError.Kind? {
        do {
            try body()
            return nil
        } catch let error as PipelineError {
            return error.kind
        } catch {
            return nil
        }
    }
}

/// Runs stages over `input` fed in uneven pieces, so chunking bugs show.
func run(_ stages: [any StreamStage], _ input: [UInt8]) throws -> [UInt8] {
    var output: [UInt8] = []
    let pipeline = StagePipeline(stages) { output.append(contentsOf: $0) }
    var offset = 0
    var piece = 1
    while offset < input.count {
        let end = min(input.count, offset + piece)
        try pipeline.process(Array(input[offset..<end]))
        offset = end
        piece = piece * 3 + 1
    }
    try pipeline.finish()
    return output
}
