import Foundation

/// Up to `threads` OS threads, started as needed and then kept, for blocking calls that come
/// often (an HTTP exchange each): starting a thread per call costs CPU and, through glibc's
/// per-thread malloc arenas, memory. Calls beyond `threads` wait for a free thread, in
/// order; a call must therefore never wait for another call of the same pool.
public final class BlockingThreadPool: Sendable {
    /// The shared queue the threads take work from; it outlives the pool only until the
    /// threads have seen `stop`.
    private final class Queue: @unchecked Sendable {
        // Guarded by `condition`.
        private var work: [@Sendable () -> Void] = []
        private var next = 0
        private var stopping = false
        private var started = 0
        private var idle = 0
        private let condition = NSCondition()
        let limit: Int
        let name: String

        init(limit: Int, name: String) {
            self.limit = limit
            self.name = name
        }

        func submit(_ item: @escaping @Sendable () -> Void) {
            condition.lock()
            work.append(item)
            let waiting = work.count - next
            let grow = waiting > idle && started < limit
            if grow { started += 1 }
            condition.signal()
            condition.unlock()
            if grow {
                let thread = Thread { [self] in
                    while let item = take() { item() }
                }
                thread.name = name
                thread.start()
            }
        }

        func stop() {
            condition.lock()
            stopping = true
            condition.broadcast()
            condition.unlock()
        }

        /// The next item, or nil once stopped and drained.
        func take() -> (@Sendable () -> Void)? {
            condition.lock()
            defer { condition.unlock() }
            idle += 1
            while next == work.count && !stopping { condition.wait() }
            idle -= 1
            guard next < work.count else { return nil }
            let item = work[next]
            next += 1
            if next == work.count {  // drained: reuse the storage instead of growing it
                work.removeAll(keepingCapacity: true)
                next = 0
            }
            return item
        }
    }

    private let queue: Queue

    public init(threads: Int, name: String) {
        queue = Queue(limit: max(1, threads), name: name)
    }

    /// The threads end once the queued work has run.
    deinit { queue.stop() }

    /// Runs `body` on one of the pool's threads and returns its result to the caller.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.submit { continuation.resume(with: Result(catching: body)) }
        }
    }
}
