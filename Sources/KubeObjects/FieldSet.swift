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

    public private(set) var members: Set<Path>

    public init(members: Set<Path> = []) {
        self.members = members
    }

    /// From a `fieldsV1` tree.
    public init(fieldsV1: JSONValue) {
        var members: Set<Path> = []
        func walk(_ node: JSONValue, _ path: Path) {
            guard let children = node.object else { return }
            if children.isEmpty || children["."] != nil, !path.isEmpty { members.insert(path) }
            for (key, child) in children where key != "." { walk(child, path + [key]) }
        }
        walk(fieldsV1, [])
        self.members = members
    }

    /// The fields an object sets, as server-side apply counts them when it is applied:
    /// `apiVersion`, `kind`, `metadata.name` and `metadata.namespace` identify the object and
    /// are not fields. (`status` counts when present: leave it out for the main resource.)
    public init(applying object: JSONValue, lists: ListTypes = .builtIn) {
        var members: Set<Path> = []
        func walk(_ value: JSONValue, _ path: Path, _ fieldPath: [String]) {
            switch value {
            case .object(let fields):
                if fields.isEmpty || (!path.isEmpty && lists.isAtomicStruct(fieldPath)) { members.insert(path); return }
                for (key, child) in fields {
                    if path.isEmpty, ["apiVersion", "kind"].contains(key) { continue }
                    if path == ["f:metadata"], ["name", "namespace"].contains(key) { continue }
                    walk(child, path + ["f:" + key], fieldPath + [key])
                }
            case .array(let items):
                switch lists.type(of: fieldPath) {
                case .map(let keys):
                    for item in items {
                        let element = path + [Self.elementKey(item, keys: keys)]
                        members.insert(element)
                        for (key, child) in item.object ?? [:] { walk(child, element + ["f:" + key], fieldPath + [key]) }
                    }
                case .set:
                    for item in items { members.insert(path + ["v:" + String(decoding: item.encoded(), as: UTF8.self)]) }
                case .atomic:
                    members.insert(path)
                }
            case .null:
                break
            default:
                members.insert(path)
            }
        }
        walk(object, [], [])
        self.members = members
    }

    /// `k:{"name":"worker"}`: the key fields of an element, as compact JSON with sorted keys.
    static func elementKey(_ item: JSONValue, keys: [String]) -> String {
        let fields = Dictionary(uniqueKeysWithValues: keys.map { ($0, item[$0] ?? .null) })
        return "k:" + String(decoding: JSONValue.object(fields).encoded(), as: UTF8.self)
    }

    public func union(_ other: FieldSet) -> FieldSet { FieldSet(members: members.union(other.members)) }
    public func subtracting(_ other: FieldSet) -> FieldSet { FieldSet(members: members.subtracting(other.members)) }
    public func intersection(_ other: FieldSet) -> FieldSet { FieldSet(members: members.intersection(other.members)) }
    public func isSubset(of other: FieldSet) -> Bool { members.isSubset(of: other.members) }
    public var isEmpty: Bool { members.isEmpty }

    /// Back to a `fieldsV1` tree; associative-list elements and set elements carry `"."`.
    public var fieldsV1: JSONValue {
        Self.tree(members.map { $0[...] })
    }

    /// The tree of paths, built level by level (grouping by the first segment), so no
    /// nested dictionary is copied to add a path.
    private static func tree(_ paths: [ArraySlice<String>]) -> JSONValue {
        var groups: [String: [ArraySlice<String>]] = [:]
        for path in paths {
            guard let first = path.first else { continue }
            groups[first, default: []].append(path.dropFirst())
        }
        var fields: [String: JSONValue] = [:]
        fields.reserveCapacity(groups.count)
        for (key, rests) in groups {
            let deeper = rests.filter { !$0.isEmpty }
            var child = deeper.isEmpty ? JSONValue.object([:]) : tree(deeper)
            if key.hasPrefix("k:") || key.hasPrefix("v:"), rests.contains(where: \.isEmpty) { child["."] = .object([:]) }
            fields[key] = child
        }
        return .object(fields)
    }

    /// A stable hash of the members: equal sets, equal hashes, in every process. The sum of
    /// each member's own hash, so neither sorting nor a copy of the set is needed, and it can
    /// be computed straight from a `FieldsV1` tree (`stableHash(ofFieldsV1:)`).
    public var stableHash: UInt64 {
        members.reduce(0) { $0 &+ Self.memberHash($1[...]) }
    }

    /// `stableHash` of `FieldSet(fieldsV1:)`, without building the set.
    public static func stableHash(ofFieldsV1 tree: JSONValue) -> UInt64 {
        var total: UInt64 = 0
        var path: [String] = []
        func walk(_ node: JSONValue) {
            guard let children = node.object else { return }
            if !path.isEmpty, children.isEmpty || children["."] != nil { total &+= memberHash(path[...]) }
            for (key, child) in children where key != "." {
                path.append(key)
                walk(child)
                path.removeLast()
            }
        }
        walk(tree)
        return total
    }

    /// FNV-1a over the segments (with a separator), then a 64-bit finaliser (splitmix64's), so
    /// sums of member hashes do not cancel out.
    static func memberHash(_ path: ArraySlice<String>) -> UInt64 {
        var fnv = FNV1a()
        for segment in path {
            fnv.combine(segment)
            fnv.combine(0x1F)
        }
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
        var members: Set<Path> = []
        func walk(_ container: KeyedDecodingContainer<Key>, _ path: Path) throws {
            let keys = container.allKeys
            if !path.isEmpty, keys.isEmpty || keys.contains(where: { $0.stringValue == "." }) { members.insert(path) }
            for key in keys where key.stringValue != "." {
                try walk(container.nestedContainer(keyedBy: Key.self, forKey: key), path + [key.stringValue])
            }
        }
        try walk(decoder.container(keyedBy: Key.self), [])
        self.members = members
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
