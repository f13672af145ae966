internal import Foundation

/// A set of field paths, as server-side apply records who owns what
/// (`metadata.managedFields[].fieldsV1`). A path is a list of `FieldsV1` keys: `f:spec`,
/// `f:schedule` for a field, `k:{"name":"worker"}` for the element of an associative list,
/// `v:"x"` for the element of a set. The set holds every path that is itself a member: a leaf
/// value (scalar, atomic list, empty map), or an element of an associative list, which
/// `FieldsV1` marks with a `"."` key.
///
/// Built from `FieldsV1` (what the server says) or from an object (what a client applies),
/// the two are comparable: the controller asks whether its own apply still owns every field
/// it wants, and the test server computes ownership as the real one does.
public struct FieldSet: Hashable, Sendable {
    public typealias Path = [String]

    /// Kept as the tree `FieldsV1` is: a node per path segment, marked when the path to it is
    /// a member. Building from an object, writing `fieldsV1` and the set operations then walk
    /// the tree once instead of hashing every member's whole path (the test API server does
    /// this for every write of every object). Every node but the root is a member or has
    /// children, so equal sets are equal trees.
    private var isMember = false
    private var children: [String: FieldSet] = [:]

    public init() {}

    public init(members: Set<Path>) {
        for path in members { insert(path[...]) }
    }

    private init(member: Bool, children: [String: FieldSet] = [:]) {
        isMember = member
        self.children = children
    }

    private mutating func insert(_ path: ArraySlice<String>) {
        guard let first = path.first else {
            isMember = true
            return
        }
        children[first, default: FieldSet()].insert(path.dropFirst())
    }

    /// Every member path.
    public var members: Set<Path> {
        var members: Set<Path> = []
        var path: Path = []
        func walk(_ node: FieldSet) {
            if node.isMember { members.insert(path) }
            for (key, child) in node.children {
                path.append(key)
                walk(child)
                path.removeLast()
            }
        }
        for (key, child) in children {
            path = [key]
            walk(child)
        }
        return members
    }

    public func contains(_ path: Path) -> Bool {
        var node = self
        for segment in path {
            guard let child = node.children[segment] else { return false }
            node = child
        }
        return !path.isEmpty && node.isMember
    }

    /// From a `fieldsV1` tree.
    public init(fieldsV1: JSONValue) {
        self = Self.node(fieldsV1: fieldsV1, isRoot: true) ?? FieldSet()
    }

    /// Nil for what holds no member (a value that is not an object, which FieldsV1 never has).
    private static func node(fieldsV1: JSONValue, isRoot: Bool) -> FieldSet? {
        guard let fields = fieldsV1.object else { return nil }
        var node = FieldSet(member: !isRoot && (fields.isEmpty || fields["."] != nil))
        for (key, child) in fields where key != "." {
            if let child = Self.node(fieldsV1: child, isRoot: false) { node.children[key] = child }
        }
        return isRoot || !node.isEmptyNode ? node : nil
    }

    /// The fields an object sets, as server-side apply counts them when it is applied:
    /// `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` identify the object and
    /// are not fields. (`status` counts when present: leave it out for the main resource.)
    public init(applying object: JSONValue, lists: ListTypes = .builtIn) {
        // The field path (names only, as `lists` knows them), grown and shrunk in place.
        var fieldPath: [String] = []
        func walk(_ value: JSONValue, depth: Int) -> FieldSet? {
            switch value {
            case .object(let fields):
                if fields.isEmpty || (depth > 0 && lists.isAtomicStruct(fieldPath)) { return FieldSet(member: true) }
                var node = FieldSet()
                for (key, child) in fields {
                    if depth == 0, key == "apiVersion" || key == "kind" { continue }
                    if depth == 1, fieldPath == ["metadata"], key == "name" || key == "namespace" { continue }
                    fieldPath.append(key)
                    if let child = walk(child, depth: depth + 1) { node.children["f:" + key] = child }
                    fieldPath.removeLast()
                }
                return node.children.isEmpty ? nil : node
            case .array(let items):
                switch lists.type(of: fieldPath) {
                case .map(let keys):
                    guard !items.isEmpty else { return nil }
                    var node = FieldSet()
                    for item in items {
                        var element = FieldSet(member: true)
                        for (key, child) in item.object ?? [:] {
                            fieldPath.append(key)
                            if let child = walk(child, depth: depth + 1) { element.children["f:" + key] = child }
                            fieldPath.removeLast()
                        }
                        node.children[Self.elementKey(item, keys: keys)] = element
                    }
                    return node
                case .set:
                    guard !items.isEmpty else { return nil }
                    var node = FieldSet()
                    for item in items { node.children["v:" + String(decoding: item.encoded(), as: UTF8.self)] = FieldSet(member: true) }
                    return node
                case .atomic:
                    return FieldSet(member: true)
                }
            case .null:
                return nil
            default:
                return FieldSet(member: true)
            }
        }
        self = walk(object, depth: 0) ?? FieldSet()
        isMember = false
    }

    /// `k:{"name":"worker"}`: the key fields of an element, as compact JSON with sorted keys.
    static func elementKey(_ item: JSONValue, keys: [String]) -> String {
        let fields = Dictionary(uniqueKeysWithValues: keys.map { ($0, item[$0] ?? .null) })
        return "k:" + String(decoding: JSONValue.object(fields).encoded(), as: UTF8.self)
    }

    public func union(_ other: FieldSet) -> FieldSet {
        var result = self
        result.isMember = isMember || other.isMember
        for (key, child) in other.children {
            result.children[key] = children[key].map { $0.union(child) } ?? child
        }
        return result
    }

    public func subtracting(_ other: FieldSet) -> FieldSet {
        guard !other.isEmptyNode else { return self }
        var result = FieldSet(member: isMember && !other.isMember)
        for (key, child) in children {
            guard let removed = other.children[key] else {
                result.children[key] = child
                continue
            }
            let rest = child.subtracting(removed)
            if !rest.isEmptyNode { result.children[key] = rest }
        }
        return result
    }

    public func intersection(_ other: FieldSet) -> FieldSet {
        var result = FieldSet(member: isMember && other.isMember)
        let (small, large) = children.count <= other.children.count ? (children, other.children) : (other.children, children)
        for (key, child) in small {
            guard let match = large[key] else { continue }
            let common = child.intersection(match)
            if !common.isEmptyNode { result.children[key] = common }
        }
        return result
    }

    public func isSubset(of other: FieldSet) -> Bool {
        if isMember && !other.isMember { return false }
        return children.allSatisfy { key, child in other.children[key].map(child.isSubset(of:)) ?? false }
    }

    public var isEmpty: Bool { children.isEmpty }

    private var isEmptyNode: Bool { !isMember && children.isEmpty }

    /// Back to a `fieldsV1` tree; associative-list elements and set elements carry `"."`.
    public var fieldsV1: JSONValue {
        var fields: [String: JSONValue] = [:]
        fields.reserveCapacity(children.count)
        for (key, child) in children {
            var tree = child.fieldsV1
            if child.isMember, !child.children.isEmpty, key.hasPrefix("k:") || key.hasPrefix("v:") { tree["."] = .object([:]) }
            fields[key] = tree
        }
        return .object(fields)
    }

    /// A stable hash of the members: equal sets, equal hashes, in every process. The sum of
    /// each member's own hash, so neither sorting nor a copy of the set is needed, and it can
    /// be computed straight from a `FieldsV1` tree (`stableHash(ofFieldsV1:)`).
    public var stableHash: UInt64 {
        var total: UInt64 = 0
        func walk(_ node: FieldSet, _ prefix: FNV1a) {
            for (key, child) in node.children {
                var hash = prefix
                Self.combine(key, into: &hash)
                if child.isMember { total &+= Self.finalized(hash) }
                walk(child, hash)
            }
        }
        walk(self, FNV1a())
        return total
    }

    /// `stableHash` of `FieldSet(fieldsV1:)`, without building the set.
    public static func stableHash(ofFieldsV1 tree: JSONValue) -> UInt64 {
        var total: UInt64 = 0
        func walk(_ node: JSONValue, _ prefix: FNV1a, isRoot: Bool) {
            guard let children = node.object else { return }
            if !isRoot, children.isEmpty || children["."] != nil { total &+= finalized(prefix) }
            for (key, child) in children where key != "." {
                var hash = prefix
                combine(key, into: &hash)
                walk(child, hash, isRoot: false)
            }
        }
        walk(tree, FNV1a(), isRoot: true)
        return total
    }

    /// A member's hash: FNV-1a over its segments (each followed by a separator), then a 64-bit
    /// finaliser (splitmix64's), so sums of member hashes do not cancel out. A path's prefix is
    /// hashed once for all the members under it.
    private static func combine(_ segment: String, into hash: inout FNV1a) {
        hash.combine(segment)
        hash.combine(0x1F)
    }

    private static func finalized(_ fnv: FNV1a) -> UInt64 {
        var hash = fnv.value
        hash = (hash ^ (hash >> 30)) &* 0xbf58_476d_1ce4_e5b9
        hash = (hash ^ (hash >> 27)) &* 0x94d0_49bb_1331_11eb
        return hash ^ (hash >> 31)
    }

    /// `.spec.jobTemplate.spec.template.spec.containers[name="worker"].image`: how the API
    /// server names a field in a conflict.
    public static func describe(_ path: Path) -> String {
        var text = ""
        for segment in path {
            if segment.hasPrefix("f:") {
                text += "." + segment.dropFirst(2)
            } else if segment.hasPrefix("k:"), let key = try? JSONValue.decode(Data(segment.dropFirst(2).utf8)), let fields = key.object {
                text += "[" + fields.keys.sorted().map { "\($0)=\(String(decoding: (fields[$0] ?? .null).encoded(), as: UTF8.self))" }.joined(separator: ",") + "]"
            } else if segment.hasPrefix("v:") {
                text += "[" + segment.dropFirst(2) + "]"
            }
        }
        return text
    }
}

/// Read from and written as a `FieldsV1` tree. Decoded by walking the tree's keys, never
/// through `JSONValue`: every object the controller watches carries managedFields.
extension FieldSet: Codable {
    private struct Key: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        func read(_ container: KeyedDecodingContainer<Key>, isRoot: Bool) throws -> FieldSet {
            let keys = container.allKeys
            var node = FieldSet(member: !isRoot && (keys.isEmpty || keys.contains { $0.stringValue == "." }))
            for key in keys where key.stringValue != "." {
                node.children[key.stringValue] = try read(container.nestedContainer(keyedBy: Key.self, forKey: key), isRoot: false)
            }
            return node
        }
        self = try read(decoder.container(keyedBy: Key.self), isRoot: true)
    }

    public func encode(to encoder: any Encoder) throws {
        try fieldsV1.encode(to: encoder)
    }
}

/// How lists merge when applied: by key (`containers` by `name`), as a set, or whole
/// (atomic). Built-in kinds declare it in their OpenAPI; custom resources in their schema
/// (`x-kubernetes-list-type`).
public struct ListTypes: Sendable {
    public enum ListType: Sendable, Equatable {
        case atomic
        case set
        case map(keys: [String])
    }

    /// Field path (names only, list elements left out) → type.
    let byPath: @Sendable ([String]) -> ListType
    /// Whether the object at a field path is owned and replaced whole (`+structType=atomic`
    /// in the Kubernetes types: a `secretKeyRef` is one value, not two fields).
    let atomicStruct: @Sendable ([String]) -> Bool

    public init(atomicStruct: @escaping @Sendable ([String]) -> Bool = { _ in false }, _ byPath: @escaping @Sendable ([String]) -> ListType) {
        self.byPath = byPath
        self.atomicStruct = atomicStruct
    }

    public func type(of path: [String]) -> ListType { byPath(path) }
    public func isAtomicStruct(_ path: [String]) -> Bool { atomicStruct(path) }

    /// The associative lists of the built-in kinds a controller writes (Pod specs and their
    /// templates, object metadata), by field name, as the Kubernetes OpenAPI declares them;
    /// every other list is atomic. So are the selector and reference structs.
    public static let builtIn = ListTypes(atomicStruct: { path in
        ["secretKeyRef", "configMapKeyRef", "fieldRef", "resourceFieldRef", "involvedObject", "related"].contains(path.last ?? "")
    }) { path in
        switch path.last {
        case "containers", "initContainers", "ephemeralContainers", "env", "volumes", "imagePullSecrets":
            return .map(keys: ["name"])
        case "hostAliases": return .map(keys: ["ip"])
        case "volumeMounts": return .map(keys: ["mountPath"])
        case "volumeDevices": return .map(keys: ["devicePath"])
        case "ports" where path.dropLast().last == "containers": return .map(keys: ["containerPort", "protocol"])
        case "ownerReferences": return .map(keys: ["uid"])
        case "finalizers": return .set
        default: return .atomic
        }
    }
}
