internal import Synchronization
public import KubeClient

/// The informer's store: the latest version of every object a watcher reported, by key, and
/// optionally grouped by an index (e.g. the owner's key, so a reconcile finds the objects it
/// made without asking the API server).
public final class ObjectCache<Object: KubeObject>: Sendable {
    private struct Contents {
        var objects: [String: Object] = [:]
        var groups: [String: Set<String>] = [:]
        var synced = false
    }

    private let contents = Mutex(Contents())
    private let index: (@Sendable (Object) -> String?)?

    /// `index` names the group an object belongs to (nil: none); `objects(inGroup:)` reads it.
    public init(indexedBy index: (@Sendable (Object) -> String?)? = nil) {
        self.index = index
    }

    /// Applies a watcher event; returns the objects it touched, each as it was before and as
    /// it is now (nil when absent): a relist touches old and new.
    @discardableResult
    public func apply(_ event: Watcher<Object>.Event) -> [(old: Object?, new: Object?)] {
        contents.withLock { contents in
            switch event {
            case .restarted(let all):
                let fresh = Dictionary(all.map { ($0.key, $0) }, uniquingKeysWith: { _, last in last })
                let keys = Set(contents.objects.keys).union(fresh.keys).sorted()
                let touched = keys.map { (old: contents.objects[$0], new: fresh[$0]) }
                contents.objects = [:]
                contents.groups = [:]
                for object in fresh.values { insert(object, into: &contents) }
                contents.synced = true
                return touched
            case .applied(let object):
                let old = remove(object.key, from: &contents)
                insert(object, into: &contents)
                return [(old, object)]
            case .deleted(let object):
                return [(remove(object.key, from: &contents), nil)]
            }
        }
    }

    private func insert(_ object: Object, into contents: inout Contents) {
        // One key string for the map and the group (each `key` is a new one).
        let key = object.key
        contents.objects[key] = object
        if let group = index?(object) { contents.groups[group, default: []].insert(key) }
    }

    private func remove(_ key: String, from contents: inout Contents) -> Object? {
        guard let old = contents.objects.removeValue(forKey: key) else { return nil }
        if let group = index?(old) {
            contents.groups[group]?.remove(key)
            if contents.groups[group]?.isEmpty == true { contents.groups[group] = nil }
        }
        return old
    }

    public func get(_ key: String) -> Object? { contents.withLock { $0.objects[key] } }
    public var all: [Object] { contents.withLock { Array($0.objects.values) } }
    public var count: Int { contents.withLock { $0.objects.count } }
    /// True once the first list has arrived.
    public var hasSynced: Bool { contents.withLock { $0.synced } }

    /// The objects whose index is `group`, sorted by key.
    public func objects(inGroup group: String) -> [Object] {
        contents.withLock { contents in
            (contents.groups[group] ?? []).sorted().compactMap { contents.objects[$0] }
        }
    }
}
