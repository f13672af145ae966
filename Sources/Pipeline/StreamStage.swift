/// One step of a byte-stream pipeline (pgBackRest's filter idea): it transforms bytes, and
/// may produce results (sizes, hashes) as the bytes pass. Stages are not `Sendable`: a
/// pipeline belongs to the one thread that drives it, and reuses its buffers.
public protocol StreamStage: AnyObject {
    /// Consumes all of `input`, handing produced bytes to `output`. The buffer passed to
    /// `output` is only valid during that call.
    func process(_ input: UnsafeRawBufferPointer, output: (UnsafeRawBufferPointer) throws -> Void) throws

    /// Ends the stream: flushes what is buffered and checks that the stream was complete.
    func finish(output: (UnsafeRawBufferPointer) throws -> Void) throws
}

/// Stages in order, ending in a sink.
public final class StagePipeline {
    private let stages: [any StreamStage]
    private let sink: (UnsafeRawBufferPointer) throws -> Void

    public init(_ stages: [any StreamStage], sink: @escaping (UnsafeRawBufferPointer) throws -> Void) {
        self.stages = stages
        self.sink = sink
    }

    public func process(_ input: UnsafeRawBufferPointer) throws {
        try feed(input, from: 0)
    }

    public func process(_ bytes: [UInt8]) throws {
        try bytes.withUnsafeBytes { try process($0) }
    }

    /// Finishes every stage in order, so each one's flush passes through the later ones.
    public func finish() throws {
        for index in stages.indices {
            try stages[index].finish { try feed($0, from: index + 1) }
        }
    }

    private func feed(_ bytes: UnsafeRawBufferPointer, from index: Int) throws {
        if index == stages.count {
            if !bytes.isEmpty { try sink(bytes) }
            return
        }
        try stages[index].process(bytes) { try feed($0, from: index + 1) }
    }
}

extension StagePipeline {
    /// `bytes` through `stages` into memory (a WAL segment, a backup's small objects), fed in
    /// the 1 MiB pieces the stages are built for, as a stream would feed them.
    public static func transform(_ bytes: [UInt8], through stages: [any StreamStage], expectedSize: Int) throws -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(expectedSize)
        let pipeline = StagePipeline(stages) { out.append(contentsOf: $0) }
        try bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let end = min(offset + (1 << 20), buffer.count)
                try pipeline.process(UnsafeRawBufferPointer(rebasing: buffer[offset..<end]))
                offset = end
            }
        }
        try pipeline.finish()
        return out
    }
}
