internal import Foundation

/// The rest of a pipeline, run on a thread of its own: the producer's `process` copies bytes
/// into one of a few fixed buffers and returns, and the thread feeds them, in order, to the
/// pipeline it owns. Two halves of a stream (read, check and decrypt | decompress and hand to
/// pg_restore) then use two cores instead of taking turns on one.
///
/// The producer calls `process` any number of times, then exactly one of `finish` (the
/// stream is complete: finish the pipeline, wait, rethrow its failure) or `cancel`. A failure
/// on the thread is thrown by the producer's next `process`, so reading stops early.
public final class ThreadedPipeline: @unchecked Sendable {
    // Everything below is guarded by `condition`; `downstream` is touched by the thread only.
    private let condition = NSCondition()
    private var free: [UnsafeMutableRawBufferPointer]
    private var filled: [(buffer: UnsafeMutableRawBufferPointer, count: Int)] = []
    private var ended = false
    private var cancelled = false
    private var failure: (any Error)?
    private var stopped = false
    private let buffers: [UnsafeMutableRawBufferPointer]
    private let downstream: StagePipeline

    /// `depth` buffers of `bufferSize` bytes: how far the producer may run ahead.
    public init(_ downstream: StagePipeline, name: String, bufferSize: Int = 1 << 20, depth: Int = 4) {
        self.downstream = downstream
        buffers = (0..<max(1, depth)).map { _ in .allocate(byteCount: max(1, bufferSize), alignment: 16) }
        free = buffers
        let thread = Thread { [self] in consume() }
        thread.name = name
        thread.start()
    }

    deinit {
        for buffer in buffers { buffer.deallocate() }
    }

    /// Hands `input` over (copied); waits only while every buffer is in use.
    public func process(_ input: UnsafeRawBufferPointer) throws {
        var rest = input[...]
        while !rest.isEmpty {
            condition.lock()
            while free.isEmpty && failure == nil { condition.wait() }
            if let failure {
                condition.unlock()
                throw failure
            }
            let buffer = free.removeLast()
            condition.unlock()
            let count = min(buffer.count, rest.count)
            buffer.copyMemory(from: UnsafeRawBufferPointer(rebasing: rest.prefix(count)))
            rest = rest.dropFirst(count)
            condition.lock()
            filled.append((buffer, count))
            condition.broadcast()
            condition.unlock()
        }
    }

    /// The input is complete: the thread drains it and finishes the pipeline. Throws the
    /// pipeline's failure, if any.
    public func finish() throws {
        condition.lock()
        ended = true
        condition.broadcast()
        while !stopped { condition.wait() }
        let failure = failure
        condition.unlock()
        if let failure { throw failure }
    }

    /// The producer failed: the thread drops what is queued and stops without finishing.
    public func cancel() {
        condition.lock()
        ended = true
        cancelled = true
        condition.broadcast()
        while !stopped { condition.wait() }
        condition.unlock()
    }

    private func consume() {
        var outcome: (any Error)?
        while true {
            condition.lock()
            while filled.isEmpty && !ended { condition.wait() }
            if cancelled || filled.isEmpty {
                condition.unlock()
                break
            }
            let (buffer, count) = filled.removeFirst()
            condition.unlock()
            do {
                try downstream.process(UnsafeRawBufferPointer(start: buffer.baseAddress, count: count))
            } catch {
                outcome = error
                break
            }
            condition.lock()
            free.append(buffer)
            condition.broadcast()
            condition.unlock()
        }
        condition.lock()
        let finishing = outcome == nil && !cancelled
        condition.unlock()
        if finishing {
            do { try downstream.finish() } catch { outcome = error }
        }
        condition.lock()
        failure = outcome
        stopped = true
        condition.broadcast()
        condition.unlock()
    }
}
