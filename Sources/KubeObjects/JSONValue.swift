public import Foundation

/// Any JSON value: the generic shape of Kubernetes objects whose Swift type is not known
/// (custom resources in the test server, patches).
public enum JSONValue: Codable, Sendable, Equatable, Hashable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        // Most common first (Kubernetes objects are mostly strings and maps): every miss
        // costs a thrown DecodingError, and watches decode every event.
        if container.decodeNil() { self = .null }
        else if let value = try? container.decode(String.self) { self = .string(value) }
        else if let value = try? container.decode([String: JSONValue].self) { self = .object(value) }
        else if let value = try? container.decode(Bool.self) { self = .bool(value) }
        else if let value = try? container.decode(Double.self) { self = .number(value) }
        else { self = .array(try container.decode([JSONValue].self)) }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            // Whole numbers print without ".0": resourceVersions and generations are integers.
            if value == value.rounded(), abs(value) < 1e15 { try container.encode(Int64(value)) } else { try container.encode(value) }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }

    public subscript(key: String) -> JSONValue? {
        get {
            guard case .object(let fields) = self else { return nil }
            return fields[key]
        }
        set {
            guard case .object(var fields) = self else { return }
            fields[key] = newValue
            self = .object(fields)
        }
    }

    /// The element of a list; nil when out of range. Setting replaces an element in range.
    public subscript(arrayIndex index: Int) -> JSONValue? {
        get {
            guard case .array(let items) = self, items.indices.contains(index) else { return nil }
            return items[index]
        }
        set {
            guard case .array(var items) = self, items.indices.contains(index), let newValue else { return }
            items[index] = newValue
            self = .array(items)
        }
    }

    /// The value at a dotted path, e.g. `metadata.name`.
    public subscript(path path: String) -> JSONValue? {
        path.split(separator: ".").reduce(Optional(self)) { $0?[String($1)] }
    }

    public var string: String? { if case .string(let value) = self { value } else { nil } }
    public var number: Double? { if case .number(let value) = self { value } else { nil } }
    public var object: [String: JSONValue]? { if case .object(let value) = self { value } else { nil } }
    public var array: [JSONValue]? { if case .array(let value) = self { value } else { nil } }

    /// Parses JSON text (fast: see `JSONParser`).
    public static func decode(_ data: Data) throws -> JSONValue { try JSONParser.parse(data) }

    /// Parses JSON text, leaving out the fields named by `skipping` (paths of keys, `*` for
    /// any list element): they are scanned over, not built.
    public static func decode(_ data: Data, skipping: [[String]]) throws -> JSONValue { try JSONParser.parse(data, skipping: skipping) }

    /// Compact JSON text, keys sorted (fast: see `JSONWriter`).
    public func encoded() -> Data { Data(JSONWriter.write(self)) }

    /// The same bytes as `encoded()`, without the copy into `Data` (for hashing).
    public func encodedBytes() -> [UInt8] { JSONWriter.write(self) }

    /// The RFC 7386 merge patch that turns `old` into `new` (objects by key, `null` for a
    /// removed key, anything else whole); nil when they are equal.
    public static func mergePatch(from old: JSONValue, to new: JSONValue) -> JSONValue? {
        guard old != new else { return nil }
        guard case .object(let before) = old, case .object(let after) = new else { return new }
        var patch: [String: JSONValue] = [:]
        for (key, value) in after {
            if let previous = before[key] {
                if let change = mergePatch(from: previous, to: value) { patch[key] = change }
            } else {
                patch[key] = value
            }
        }
        for key in before.keys where after[key] == nil { patch[key] = .null }
        return .object(patch)
    }

    /// RFC 7386 JSON merge patch: objects merge, `null` removes, anything else replaces.
    public func merged(with patch: JSONValue) -> JSONValue {
        guard case .object(let changes) = patch else { return patch }
        var fields = object ?? [:]
        for (key, change) in changes {
            if change == .null { fields[key] = nil }
            else { fields[key] = (fields[key] ?? .null).merged(with: change) }
        }
        return .object(fields)
    }
}

/// Literals, so a test or a patch can write `["spec": ["suspend": true]]`.
extension JSONValue: ExpressibleByStringLiteral, ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral,
    ExpressibleByBooleanLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral {
    public init(stringLiteral value: String) { self = .string(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(Dictionary(elements, uniquingKeysWith: { _, last in last }))
    }
}
