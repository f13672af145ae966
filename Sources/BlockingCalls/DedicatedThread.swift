import Foundation

/// A serial executor backed by one OS thread of its own.
///
/// Blocking C calls (libpq, read(2) on a pipe, fsync, waitpid) must never run on Swift's
/// cooperative pool, which has one thread per core: an actor whose `unownedExecutor` is a
/// `DedicatedThread` may block freely, and so may closures passed to `run(_:)`.
public final class DedicatedThread: SerialExecutor, @unchecked Sendable {
    // Guarded by `condition`: actor jobs, and closures from `run(_:)`.
    private var jobs: [UnownedJob] = []
    private var plainWork: [@Sendable () -> Void] = []
    private var stopping = false
    private let condition = NSCondition()

    public init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.start()
    }

    public func enqueue(_ job: UnownedJob) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    public func asUnownedSerialExecutor() -> UnownedSerialExecutor {
        UnownedSerialExecutor(ordinary: self)
    }

    /// Lets the thread end once the queued jobs have run.
    public func shutdown() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// Runs `body` on this thread and returns its result to the caller.
    public func run<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            submit { continuation.resume(with: Result(catching: body)) }
        }
    }

    private func submit(_ work: @escaping @Sendable () -> Void) {
        condition.lock()
        plainWork.append(work)
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && plainWork.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && plainWork.isEmpty && stopping {
                condition.unlock()
                return
            }
            let batch = jobs
            let work = plainWork
            jobs.removeAll(keepingCapacity: true)
            plainWork.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedSerialExecutor()) }
            for item in work { item() }
        }
    }
}

/// Runs one blocking call on a fresh thread and awaits its result, keeping the cooperative
/// pool free. For repeated calls keep a `DedicatedThread` instead.
public func runBlocking<T: Sendable>(
    name: String, _ body: @escaping @Sendable () throws -> T
) async throws -> T {
    let thread = DedicatedThread(name: name)
    defer { thread.shutdown() }
    return try await thread.run(body)
}
