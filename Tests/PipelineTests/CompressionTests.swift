import BackstopAPI
import Pipeline
import Testing

@Suite("Compression and hashing stages")
struct CompressionTests {
    /// Compressible text plus a pseudo-random tail, about 3 MiB.
    static let sample: [UInt8] = {
        var bytes = Array(String(repeating: "INSERT INTO orders VALUES (42, 'widget', 19.99);\n", count: 40_000).utf8)
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        for _ in 0..<1_000_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            bytes.append(UInt8(truncatingIfNeeded: state >> 33))
        }
        return bytes
    }()

    @Test("round trip", arguments: CompressionAlgorithm.allCases)
    func roundTrip(_ algorithm: CompressionAlgorithm) throws {
        let compressed = try run([Compression.compressor(algorithm, level: algorithm.defaultLevel)], Self.sample)
        if algorithm != .none { #expect(compressed.count < Self.sample.count) }
        #expect(try run([Compression.decompressor(algorithm)], compressed) == Self.sample)
        #expect(try run([Compression.decompressor(algorithm)], try run([Compression.compressor(algorithm, level: algorithm.defaultLevel)], [])) == [])
    }

    @Test("zstd with worker threads writes one standard stream that decodes to the input, fed whole or in small pieces")
    func zstdWorkers() throws {
        for pieces in [Self.sample.count, 4_096] {
            let compressor = try Compression.compressor(.zstd, level: 3, workers: 2)
            var compressed: [UInt8] = []
            let pipeline = StagePipeline([compressor]) { compressed.append(contentsOf: $0) }
            var offset = 0
            while offset < Self.sample.count {
                let end = min(offset + pieces, Self.sample.count)
                try pipeline.process(Array(Self.sample[offset..<end]))
                offset = end
            }
            try pipeline.finish()
            #expect(compressed.count < Self.sample.count)
            #expect(try run([Compression.decompressor(.zstd)], compressed) == Self.sample)
        }
    }

    /// A few hundred bytes that expand to many output buffers (a WAL segment of zeros): the
    /// decoder must drain everything it holds, in one call or across several.
    @Test("highly compressible input round-trips, fed whole or in small pieces", arguments: CompressionAlgorithm.allCases)
    func expandingInput(_ algorithm: CompressionAlgorithm) throws {
        let zeros = [UInt8](repeating: 0, count: 4 << 20)
        let compressed = try run([Compression.compressor(algorithm, level: algorithm.defaultLevel)], zeros)
        #expect(try run([Compression.decompressor(algorithm)], compressed) == zeros)
        var pieces: [UInt8] = []
        let decoder = StagePipeline([try Compression.decompressor(algorithm)]) { pieces.append(contentsOf: $0) }
        for start in stride(from: 0, to: compressed.count, by: 7) { try decoder.process(Array(compressed[start..<min(start + 7, compressed.count)])) }
        try decoder.finish()
        #expect(pieces == zeros)
    }

    @Test("truncated input is an error", arguments: [CompressionAlgorithm.zstd, .gzip])
    func truncated(_ algorithm: CompressionAlgorithm) throws {
        let compressed = try run([Compression.compressor(algorithm, level: 1)], Self.sample)
        #expect(throws: PipelineError.self) {
            try run([Compression.decompressor(algorithm)], Array(compressed.prefix(compressed.count / 2)))
        }
    }

    @Test("corrupt input is an error", arguments: [CompressionAlgorithm.zstd, .gzip])
    func corrupt(_ algorithm: CompressionAlgorithm) throws {
        var compressed = try run([Compression.compressor(algorithm, level: 1)], Self.sample)
        for index in stride(from: 20, to: compressed.count, by: 997) { compressed[index] ^= 0xFF }
        #expect(throws: PipelineError.self) { try run([Compression.decompressor(algorithm)], compressed) }
    }

    /// The backup's read-back counts the decoded dump instead of hashing it again, relying on
    /// the codec's own content checksum (zstd's frame checksum, gzip's CRC-32): a wrong one
    /// must fail the decode even when everything before it decodes.
    @Test("a wrong content checksum is an error", arguments: [(CompressionAlgorithm.zstd, 4), (.gzip, 8)])
    func contentChecksum(_ algorithm: CompressionAlgorithm, trailer: Int) throws {
        var compressed = try run([Compression.compressor(algorithm, level: 1)], Self.sample)
        compressed[compressed.count - trailer] ^= 0x01  // zstd: the frame checksum; gzip: the CRC-32
        #expect(throws: PipelineError.self) { try run([Compression.decompressor(algorithm)], compressed) }
    }

    @Test func outOfRangeLevelIsRefused() {
        #expect(throws: PipelineError.self) { try Compression.compressor(.gzip, level: 42) }
    }

    @Test func blockHashesCoverEveryBlock() throws {
        let stage = BlockHashingStage(blockSize: 1 << 20)
        let output = try run([stage], Self.sample)
        #expect(output == Self.sample)
        #expect(stage.byteCount == Int64(Self.sample.count))
        #expect(stage.blockHashes.count == (Self.sample.count + (1 << 20) - 1) / (1 << 20))
        #expect(stage.blockHashes[0] == SHA256Hasher.hash(Array(Self.sample.prefix(1 << 20))).hexString)
        #expect(stage.sha256 == SHA256Hasher.hash(Self.sample).hexString)
    }

    @Test func sha256KnownAnswer() {
        #expect(SHA256Hasher.hash(Array("abc".utf8)).hexString
            == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func fullPipelineRoundTrip() throws {
        let key = try EncryptionKey(keyFileContents: Array(repeating: 3, count: 32), source: "k")
        let id = BackupIDBytes("20261121T020000Z-aaaa")
        let sealed = try run([Compression.compressor(.zstd, level: 3), ChunkEncryptor(key: key, backupID: id)], Self.sample)
        #expect(try run([ChunkDecryptor(key: key, backupID: id), Compression.decompressor(.zstd)], sealed) == Self.sample)
    }
}

@Suite("A pipeline's second half on a thread of its own")
struct ThreadedPipelineTests {
    final class Collected: @unchecked Sendable { var bytes: [UInt8] = [] }

    @Test("bytes arrive in order through few small buffers, and finish flushes the stages")
    func inOrder() throws {
        let input = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ $0 / 251) }
        let collected = Collected()
        let compressed = Collected()
        let threaded = ThreadedPipeline(StagePipeline([try Compression.compressor(.zstd, level: 1)]) { compressed.bytes += $0 },
                                        name: "test", bufferSize: 1000, depth: 2)
        for start in stride(from: 0, to: input.count, by: 4_096) {
            try input[start..<min(start + 4_096, input.count)].withUnsafeBytes { try threaded.process($0) }
        }
        try threaded.finish()
        try StagePipeline([Compression.decompressor(.zstd)]) { collected.bytes += $0 }.process(compressed.bytes)
        #expect(collected.bytes == input)
    }

    @Test("a failure on the thread stops the producer and is thrown; cancel stops without finishing")
    func failures() throws {
        let corrupt = [UInt8](repeating: 0x42, count: 10_000)
        let threaded = ThreadedPipeline(StagePipeline([try Compression.decompressor(.zstd)]) { _ in }, name: "test", bufferSize: 512, depth: 2)
        #expect(throws: PipelineError.self) {
            for _ in 0..<100 { try corrupt.withUnsafeBytes { try threaded.process($0) } }
            try threaded.finish()
        }
        threaded.cancel()  // after a failure: returns at once

        let finished = Collected()
        let unfinished = ThreadedPipeline(StagePipeline([try Compression.compressor(.zstd, level: 1)]) { finished.bytes += $0 }, name: "test")
        try corrupt.withUnsafeBytes { try unfinished.process($0) }
        unfinished.cancel()
        #expect(finished.bytes.isEmpty, "a cancelled pipeline is not finished, so the compressor never flushed")
    }
}
