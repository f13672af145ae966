import Foundation

/// A value that arrives once, from any thread, and can be awaited by any number of tasks
/// or waited for by a blocking thread.
public final class OneShot<Value: Sendable>: @unchecked Sendable {
    // Guarded by `condition`.
    private var result: Value?
    private var waiters: [CheckedContinuation<Value, Never>] = []
    private let condition = NSCondition()

    public init() {}

    /// Sets the value; later calls are ignored.
    public func fulfill(_ value: Value) {
        condition.lock()
        guard result == nil else {
            condition.unlock()
            return
        }
        result = value
        let waiting = waiters
        waiters.removeAll()
        condition.broadcast()
        condition.unlock()
        for waiter in waiting { waiter.resume(returning: value) }
    }

    public var value: Value {
        get async {
            await withCheckedContinuation { continuation in
                condition.lock()
                if let result {
                    condition.unlock()
                    continuation.resume(returning: result)
                } else {
                    waiters.append(continuation)
                    condition.unlock()
                }
            }
        }
    }

    /// Blocks the calling thread; only for dedicated threads.
    public func waitBlocking() -> Value {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let result { return result }
            condition.wait()
        }
    }

    /// The value if it has arrived.
    public var current: Value? {
        condition.lock()
        defer { condition.unlock() }
        return result
    }
}
