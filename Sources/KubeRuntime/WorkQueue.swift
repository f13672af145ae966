public import HTTP
/// Keys waiting to be reconciled (client-go's workqueue): a key is queued at most once, is
/// never handed to two workers at once (a key added while it is processed runs again after),
/// and failing keys come back after a per-key exponential backoff with jitter and a cap.
public actor WorkQueue<Key: Hashable & Sendable> {
    private var queue: [Key] = []
    private var dirty: Set<Key> = []
    private var processing: Set<Key> = []
    private var failures: [Key: Int] = [:]
    private var waiters: [CheckedContinuation<Key?, Never>] = []
    /// Keys to add later, and when; one timer task sleeps until the earliest (not a task per
    /// key: a controller requeues every policy for its RPO check).
    private var delayed: [Key: ContinuousClock.Instant] = [:]
    private var timer: (task: Task<Void, Never>, deadline: ContinuousClock.Instant)?
    private var shuttingDown = false
    private let backoff: Backoff

    public init(backoff: Backoff = Backoff(base: .milliseconds(5), cap: .seconds(300))) {
        self.backoff = backoff
    }

    public func add(_ key: Key) {
        guard !shuttingDown, !dirty.contains(key) else { return }
        dirty.insert(key)
        guard !processing.contains(key) else { return }  // queued again by done()
        if let waiter = waiters.first {
            waiters.removeFirst()
            dirty.remove(key)
            processing.insert(key)
            waiter.resume(returning: key)
        } else {
            queue.append(key)
        }
    }

    /// Adds `key` after `delay`; an earlier pending delayed add for it is replaced.
    public func add(_ key: Key, after delay: Duration) {
        guard !shuttingDown else { return }
        delayed[key] = ContinuousClock.now + delay
        scheduleTimer()
    }

    private func scheduleTimer() {
        guard let earliest = delayed.values.min() else {
            timer?.task.cancel()
            timer = nil
            return
        }
        if let timer, timer.deadline <= earliest { return }
        timer?.task.cancel()
        timer = (Task { [weak self] in
            try? await Task.sleep(until: earliest, clock: .continuous)
            guard !Task.isCancelled else { return }
            await self?.fireDue()
        }, earliest)
    }

    private func fireDue() {
        timer = nil
        let now = ContinuousClock.now
        for (key, deadline) in delayed where deadline <= now {
            delayed[key] = nil
            add(key)
        }
        scheduleTimer()
    }

    /// Adds after the key's own backoff, which grows with each call until `forget`.
    public func addRateLimited(_ key: Key) {
        let count = (failures[key] ?? 0) + 1
        failures[key] = count
        add(key, after: backoff.delay(afterFailures: count))
    }

    public func forget(_ key: Key) { failures[key] = nil }

    public func failureCount(_ key: Key) -> Int { failures[key] ?? 0 }

    /// The next key to work on, or nil once shut down. The caller must call `done`.
    public func next() async -> Key? {
        if let key = takeFirst() { return key }
        if shuttingDown { return nil }
        return await withCheckedContinuation { waiters.append($0) }
    }

    private func takeFirst() -> Key? {
        guard !queue.isEmpty else { return nil }
        let key = queue.removeFirst()
        dirty.remove(key)
        processing.insert(key)
        return key
    }

    public func done(_ key: Key) {
        processing.remove(key)
        if dirty.contains(key) {
            dirty.remove(key)
            add(key)
        }
    }

    public var length: Int { queue.count }

    public func shutDown() {
        shuttingDown = true
        timer?.task.cancel()
        timer = nil
        delayed.removeAll()
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting { waiter.resume(returning: nil) }
    }
}
