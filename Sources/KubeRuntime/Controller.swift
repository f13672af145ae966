public import KubeClient
public import Logging

/// What a reconcile asks for next.
public enum ReconcileAction: Sendable, Equatable {
    /// Nothing until the object (or something that maps to it) changes.
    case awaitChange
    /// Look again after this long even if nothing changes (a schedule, a status to refresh).
    case requeue(after: Duration)
}

/// What to do with a key whose reconcile threw (kube-rs's `error_policy`).
public enum ErrorAction: Sendable, Equatable {
    /// Again soon, backing off per key: the error may pass (a 409, a 5xx, a lost connection).
    case retryWithBackoff
    /// Not hot: the error will not pass by itself (a refused write, a 403); look again later
    /// or when the object changes.
    case requeue(after: Duration)
}

/// A level-based controller: a watcher keeps the cache, every change queues the object's key,
/// and `workers` tasks reconcile keys from the queue, one key never twice at once. A throwing
/// reconcile is retried with the key's backoff; a successful one resets it.
public struct Controller<Object: KubeObject>: Sendable {
    public typealias Reconcile = @Sendable (_ key: String, _ object: Object?) async throws -> ReconcileAction

    /// Objects the controller makes (CronJobs of a policy), kept in their own cache (which the
    /// reconcile reads instead of asking the API server): a change to one queues its owner's
    /// key, so hand edits are noticed and restored.
    public struct OwnedWatch: Sendable {
        let run: @Sendable (_ health: APIAccessHealth, _ enqueue: @escaping @Sendable (String) async -> Void) async -> Void
        let hasSynced: @Sendable () -> Bool

        /// `needsReconcile` may skip a changed object (e.g. the echo of the controller's own
        /// write, which the reconcile that made it already accounted for); a relist or a
        /// deletion always queues its owner.
        public init<Owned: KubeObject>(_ watcher: Watcher<Owned>, cache: ObjectCache<Owned>,
                                       owner: @escaping @Sendable (Owned) -> String?,
                                       needsReconcile: @escaping @Sendable (Owned) -> Bool = { _ in true }) {
            run = { health, enqueue in
                await watcher.run(reportingTo: health) { event in
                    // The cache first: the reconcile the key starts must see this change.
                    for (old, new) in cache.apply(event) {
                        if case .applied = event, let new, !needsReconcile(new) { continue }
                        let owners = Set([old.flatMap(owner), new.flatMap(owner)].compactMap { $0 })
                        for key in owners.sorted() { await enqueue(key) }
                    }
                }
            }
            hasSynced = { cache.hasSynced }
        }
    }

    /// Whether a change from `old` to `new` needs a reconcile (e.g. not when only the status
    /// the controller itself wrote changed). Relists and deletions always queue.
    public typealias ChangeFilter = @Sendable (_ old: Object?, _ new: Object) -> Bool
    public typealias ErrorPolicy = @Sendable (_ key: String, _ error: any Error) -> ErrorAction

    public let cache = ObjectCache<Object>()
    public let queue = WorkQueue<String>()
    /// Watches that keep failing, for `/readyz`.
    public let health: APIAccessHealth
    let watcher: Watcher<Object>
    let owned: [OwnedWatch]
    let workers: Int
    let logger: Logger
    let needsReconcile: ChangeFilter
    let errorPolicy: ErrorPolicy
    let reconcile: Reconcile

    public init(watcher: Watcher<Object>, owned: [OwnedWatch] = [], workers: Int = 2, logger: Logger,
                needsReconcile: @escaping ChangeFilter = { _, _ in true },
                errorPolicy: @escaping ErrorPolicy = { _, _ in .retryWithBackoff }, reconcile: @escaping Reconcile) {
        self.watcher = watcher
        self.owned = owned
        self.workers = workers
        self.logger = logger
        self.health = APIAccessHealth(logger: logger)
        self.needsReconcile = needsReconcile
        self.errorPolicy = errorPolicy
        self.reconcile = reconcile
    }

    /// Runs until the task is cancelled; then the queue shuts down and the workers finish
    /// the keys they hold.
    public func run() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { [cache, queue, watcher, needsReconcile, health] in
                await watcher.run(reportingTo: health) { event in
                    for (old, new) in cache.apply(event) {
                        if case .applied = event, let new, !needsReconcile(old, new) { continue }
                        if let key = (new ?? old)?.key { await queue.add(key) }
                    }
                }
            }
            for watch in owned {
                group.addTask { [queue, health] in await watch.run(health) { key in await queue.add(key) } }
            }
            for worker in 0..<workers {
                group.addTask { await work(worker) }
            }
            await withTaskCancellationHandler {
                await group.waitForAll()
            } onCancel: { [queue] in
                Task { await queue.shutDown() }
            }
        }
    }

    /// True once the first list of the watched and of every owned collection has arrived:
    /// before that, a reconcile would take an object that exists for one that does not.
    public var hasSynced: Bool { cache.hasSynced && owned.allSatisfy { $0.hasSynced() } }

    private func work(_ worker: Int) async {
        while !hasSynced && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(20)) }
        while let key = await queue.next() {
            do {
                switch try await reconcile(key, cache.get(key)) {
                case .awaitChange:
                    break
                case .requeue(let delay):
                    await queue.add(key, after: delay)
                }
                await queue.forget(key)
            } catch {
                let failures = await queue.failureCount(key) + 1
                switch errorPolicy(key, error) {
                case .retryWithBackoff:
                    logger.warning("reconcile \(key) failed (\(failures) in a row): \(error)")
                    await queue.addRateLimited(key)
                case .requeue(let delay):
                    logger.warning("reconcile \(key) failed: \(error); next try in \(delay)")
                    await queue.forget(key)
                    await queue.add(key, after: delay)
                }
            }
            await queue.done(key)
        }
    }
}

/// What a process hosting controllers of several kinds needs of each, whatever it reconciles:
/// to run it, and to read its readiness and queue for `/readyz` and `/metrics`.
public protocol RunnableController: Sendable {
    func run() async
    var health: APIAccessHealth { get }
    var hasSynced: Bool { get }
    var queue: WorkQueue<String> { get }
}

extension Controller: RunnableController {}
