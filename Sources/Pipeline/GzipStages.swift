internal import CZlib

/// windowBits 15 + 16: zlib writes and reads the gzip wrapper, so the object is a plain
/// `.gz` that `gunzip` opens.
private let gzipWindowBits: Int32 = 15 + 16
private let gzipBufferSize = 256 * 1024

/// gzip compression through zlib's deflate.
public final class GzipCompressor: StreamStage {
    private let stream: UnsafeMutablePointer<z_stream>
    private var buffer = [UInt8](repeating: 0, count: gzipBufferSize)

    public init(level: Int) throws(PipelineError) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = deflateInit2_(stream, Int32(level), Z_DEFLATED, gzipWindowBits, 8, Z_DEFAULT_STRATEGY,
                                   ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        // Once every property is set, a throwing init still runs deinit, which cleans up.
        guard status == Z_OK else {
            throw PipelineError(.compression, "gzip level \(level): zlib refused (\(status)); use a level from 1 to 9")
        }
    }

    deinit {
        deflateEnd(stream)
        stream.deallocate()
    }

    public func process(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let base = input.baseAddress, !input.isEmpty else { return }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        while stream.pointee.avail_in > 0 {
            _ = try deflateStep(flush: Z_NO_FLUSH, output: output)
        }
    }

    public func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        stream.pointee.next_in = nil
        stream.pointee.avail_in = 0
        while try deflateStep(flush: Z_FINISH, output: output) != Z_STREAM_END {}
    }

    private func deflateStep(flush: Int32, output: (UnsafeRawBufferPointer) throws -> Void) throws -> Int32 {
        try buffer.withUnsafeMutableBytes { space in
            stream.pointee.next_out = space.baseAddress?.assumingMemoryBound(to: Bytef.self)
            stream.pointee.avail_out = uInt(space.count)
            let status = deflate(stream, flush)
            guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                throw PipelineError(.compression, "gzip compression failed (zlib status \(status))")
            }
            let produced = space.count - Int(stream.pointee.avail_out)
            if produced > 0 { try output(UnsafeRawBufferPointer(rebasing: space[0..<produced])) }
            return status
        }
    }
}

/// gzip decompression through zlib's inflate. Accepts concatenated members, as gunzip does.
public final class GzipDecompressor: StreamStage {
    private let stream: UnsafeMutablePointer<z_stream>
    private var buffer = [UInt8](repeating: 0, count: gzipBufferSize)
    private var insideMember = false

    public init() throws(PipelineError) {
        stream = .allocate(capacity: 1)
        stream.initialize(to: z_stream())
        let status = inflateInit2_(stream, gzipWindowBits, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard status == Z_OK else {
            throw PipelineError(.compression, "gzip: zlib refused to start (\(status))")
        }
    }

    deinit {
        inflateEnd(stream)
        stream.deallocate()
    }

    public func process(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws {
        guard let base = input.baseAddress, !input.isEmpty else { return }
        stream.pointee.next_in = UnsafeMutablePointer(mutating: base.assumingMemoryBound(to: Bytef.self))
        stream.pointee.avail_in = uInt(input.count)
        while stream.pointee.avail_in > 0 {
            insideMember = true
            let status = try buffer.withUnsafeMutableBytes { space in
                stream.pointee.next_out = space.baseAddress?.assumingMemoryBound(to: Bytef.self)
                stream.pointee.avail_out = uInt(space.count)
                let status = inflate(stream, Z_NO_FLUSH)
                guard status == Z_OK || status == Z_STREAM_END || status == Z_BUF_ERROR else {
                    throw PipelineError(.corruptCompressedData, "gzip data is corrupt (zlib status \(status))")
                }
                let produced = space.count - Int(stream.pointee.avail_out)
                if produced > 0 { try output(UnsafeRawBufferPointer(rebasing: space[0..<produced])) }
                return status
            }
            if status == Z_STREAM_END {
                insideMember = false
                inflateReset(stream)
            }
        }
    }

    public func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws {
        if insideMember {
            throw PipelineError(.truncated, "the gzip stream ends inside a member: the backup is truncated")
        }
    }
}
