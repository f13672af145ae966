/// Keys waiting to be reconciled (client-go's workqueue): a key is queued at most once, is
/// never handed to two workers at once (a key added while it is processed runs again after),
/// and failing keys come back after a per-key exponential backoff with jitter and a cap.
public actor WorkQueue<Key: Hashable & Sendable> {
    private var queue: [Key] = []
    private var dirty: Set<Key> = []
    private var processing: Set<Key> = []
    private var failures: [Key: Int] = [:]
    private var waiters: [CheckedContinuation<Key?, Never>] = []
    private var delayed: [Key: Task<Void, Never>] = [:]
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
        delayed[key]?.cancel()
        delayed[key] = Task { [weak self] in
            try? await Task.sleep(for: delay)
            guard !Task.isCancelled else { return }
            await self?.fireDelayed(key)
        }
    }

    private func fireDelayed(_ key: Key) {
        delayed[key] = nil
        add(key)
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
        for task in delayed.values { task.cancel() }
        delayed.removeAll()
        let waiting = waiters
        waiters.removeAll()
        for waiter in waiting { waiter.resume(returning: nil) }
    }
}
