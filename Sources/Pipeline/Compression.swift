public import BackstopAPI

/// The compression stages for an algorithm.
public enum Compression {
    /// `workers` > 0 lets zstd compress on that many threads of its own (the stream stays one
    /// standard frame); gzip and none ignore it.
    public static func compressor(_ algorithm: CompressionAlgorithm, level: Int, workers: Int = 0) throws(PipelineError) -> any StreamStage {
        switch algorithm {
        case .zstd: try ZstdCompressor(level: level, workers: workers)
        case .gzip: try GzipCompressor(level: level)
        case .none: PassThroughStage()
        }
    }

    public static func decompressor(_ algorithm: CompressionAlgorithm) throws(PipelineError) -> any StreamStage {
        switch algorithm {
        case .zstd: try ZstdDecompressor()
        case .gzip: try GzipDecompressor()
        case .none: PassThroughStage()
        }
    }
}

/// Hands bytes on unchanged (compression `none`).
public final class PassThroughStage: StreamStage {
    public init() {}
    public func process(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        try output(input)
    }
    public func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {}
}
