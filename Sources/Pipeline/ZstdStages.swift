internal import CZstd

/// zstd streaming compression; output buffer reused across calls.
public final class ZstdCompressor: StreamStage {
    private let context: OpaquePointer
    private var buffer: [UInt8]

    public init(level: Int, workers: Int = 0) throws(PipelineError) {
        guard let context = ZSTD_createCCtx() else {
            throw PipelineError(.compression, "zstd: cannot allocate a compression context")
        }
        self.context = context
        buffer = [UInt8](repeating: 0, count: ZSTD_CStreamOutSize())
        let status = ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, Int32(level))
        // Once every property is set, a throwing init still runs deinit, which frees the context.
        if ZSTD_isError(status) != 0 {
            throw PipelineError(.compression, "zstd level \(level): \(zstdMessage(status)); use a level from 1 to 19")
        }
        // A checksum per frame catches corruption even when the manifest is lost.
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
        // A libzstd built without threads refuses workers: it then compresses on the caller's
        // thread, as with none.
        if workers > 0 { ZSTD_CCtx_setParameter(context, ZSTD_c_nbWorkers, Int32(workers)) }
    }

    deinit { ZSTD_freeCCtx(context) }

    public func process(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        while source.pos < source.size {
            try drain(&source, directive: ZSTD_e_continue, output: output)
        }
    }

    public func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        var source = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
        while try drain(&source, directive: ZSTD_e_end, output: output) != 0 {}
    }

    /// One compression call; returns zstd's "bytes still to flush" hint.
    @discardableResult
    private func drain(_ source: inout ZSTD_inBuffer, directive: ZSTD_EndDirective,
                       output: (UnsafeRawBufferPointer) throws -> Void) throws -> Int {
        try buffer.withUnsafeMutableBytes { space in
            var target = ZSTD_outBuffer(dst: space.baseAddress, size: space.count, pos: 0)
            let remaining = ZSTD_compressStream2(context, &target, &source, directive)
            if ZSTD_isError(remaining) != 0 {
                throw PipelineError(.compression, "zstd compression failed: \(zstdMessage(remaining))")
            }
            if target.pos > 0 { try output(UnsafeRawBufferPointer(rebasing: space[0..<target.pos])) }
            return remaining
        }
    }
}

/// zstd streaming decompression; at the end, insists that the last frame was complete.
public final class ZstdDecompressor: StreamStage {
    private let context: OpaquePointer
    private var buffer: [UInt8]
    /// zstd's hint from the last call: 0 exactly when a frame has just ended.
    private var frameIncomplete = false

    public init() throws(PipelineError) {
        guard let context = ZSTD_createDCtx() else {
            throw PipelineError(.compression, "zstd: cannot allocate a decompression context")
        }
        self.context = context
        buffer = [UInt8](repeating: 0, count: ZSTD_DStreamOutSize())
    }

    deinit { ZSTD_freeDCtx(context) }

    public func process(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        var source = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        try drain(&source, output: output)
    }

    public func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if frameIncomplete {
            // Whatever zstd still holds of a frame whose input all arrived.
            var none = ZSTD_inBuffer(src: nil, size: 0, pos: 0)
            try drain(&none, output: output)
        }
        if frameIncomplete {
            throw PipelineError(.truncated, "the zstd stream ends inside a frame: the backup is truncated")
        }
    }

    /// Calls zstd until it has taken all of `source` and has nothing more to give: zstd takes
    /// input into its own buffers faster than it decodes it, so a used-up input with a frame
    /// still open is not the end while calls make progress (a few hundred bytes of zeros
    /// decode into many output buffers).
    private func drain(_ source: inout ZSTD_inBuffer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        while true {
            let consumed = source.pos
            let (produced, filled) = try decompress(&source, output: output)
            let progressed = produced > 0 || source.pos > consumed
            // A call after a frame's end would start reading the next frame's header.
            guard source.pos < source.size || (frameIncomplete && (filled || progressed)) else { return }
        }
    }

    /// One decompression call; returns how much it wrote and whether that filled the buffer.
    private func decompress(_ source: inout ZSTD_inBuffer, output: (UnsafeRawBufferPointer) throws -> Void) throws -> (Int, Bool) {
        try buffer.withUnsafeMutableBytes { space in
            var target = ZSTD_outBuffer(dst: space.baseAddress, size: space.count, pos: 0)
            let hint = ZSTD_decompressStream(context, &target, &source)
            if ZSTD_isError(hint) != 0 {
                throw PipelineError(.corruptCompressedData, "zstd data is corrupt: \(zstdMessage(hint))")
            }
            frameIncomplete = hint != 0
            if target.pos > 0 { try output(UnsafeRawBufferPointer(rebasing: space[0..<target.pos])) }
            return (target.pos, target.pos == target.size)
        }
    }
}

private func zstdMessage(_ code: Int) -> String {
    String(cString: ZSTD_getErrorName(code))
}
