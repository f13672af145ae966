public import BackstopAPI

/// The compression stages for an algorithm.
public enum Compression {
    public static func compressor(_ algorithm: CompressionAlgorithm, level: Int) throws(PipelineError) -> any StreamStage {
        switch algorithm {
        case .zstd: try ZstdCompressor(level: level)
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
