/// Passes bytes through unchanged while counting them and hashing the whole stream and
/// each fixed-size block. Sizes and hashes come from the stream itself, never from
/// reading the stored data back.
public final class BlockHashingStage: StreamStage {
    /// 4 MiB: a reader buffers one block to check it before using it, so this bounds
    /// restore memory and how far a reader gets before noticing damage.
    public static let defaultBlockSize = 4 * 1024 * 1024

    /// `nil`: whole-stream hash and count only.
    public let blockSize: Int?
    public private(set) var byteCount: Int64 = 0
    public private(set) var blockHashes: [String] = []
    private let whole = SHA256Hasher()
    private let block = SHA256Hasher()
    private var bytesInBlock = 0
    private var wholeDigest: [UInt8]?

    public init(blockSize: Int? = BlockHashingStage.defaultBlockSize) {
        self.blockSize = blockSize
    }

    public func process(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        whole.update(input)
        byteCount += Int64(input.count)
        guard let blockSize else { return try output(input) }
        var rest = input[...]
        while !rest.isEmpty {
            let take = min(rest.count, blockSize - bytesInBlock)
            block.update(UnsafeRawBufferPointer(rebasing: rest.prefix(take)))
            bytesInBlock += take
            rest = rest.dropFirst(take)
            if bytesInBlock == blockSize {
                blockHashes.append(block.finalize().hexString)
                bytesInBlock = 0
            }
        }
        try output(input)
    }

    public func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if bytesInBlock > 0 {
            blockHashes.append(block.finalize().hexString)
            bytesInBlock = 0
        }
        wholeDigest = whole.finalize()
    }

    /// The whole stream's SHA-256 (hex); available after `finish`.
    public var sha256: String { (wholeDigest ?? []).hexString }
}
