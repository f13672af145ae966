internal import Synchronization
public import KubeClient

/// The informer's store: the latest version of every object a watcher reported, by key.
public final class ObjectCache<Object: KubeObject>: Sendable {
    private let objects = Mutex<[String: Object]>([:])
    private let synced = Mutex(false)

    public init() {}

    /// Applies a watcher event; returns the keys it touched (a relist touches old and new).
    @discardableResult
    public func apply(_ event: Watcher<Object>.Event) -> [String] {
        switch event {
        case .restarted(let all):
            let fresh = Dictionary(all.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
            let touched = objects.withLock { current -> [String] in
                let keys = Set(current.keys).union(fresh.keys)
                current = fresh
                return Array(keys)
            }
            synced.withLock { $0 = true }
            return touched.sorted()
        case .applied(let object):
            objects.withLock { $0[object.key] = object }
            return [object.key]
        case .deleted(let object):
            objects.withLock { $0[object.key] = nil }
            return [object.key]
        }
    }

    public func get(_ key: String) -> Object? { objects.withLock { $0[key] } }
    public var all: [Object] { objects.withLock { Array($0.values) } }
    public var count: Int { objects.withLock { $0.count } }
    /// True once the first list has arrived.
    public var hasSynced: Bool { synced.withLock { $0 } }
}
