/// Encodes an `Encodable` value straight into a `JSONValue`, without text in between: what
/// the controller sends (CronJobs to apply, status patches) is built as values, hashed and
/// written once. `nil` optionals are left out, as `JSONEncoder` leaves them out. No coding
/// path is kept (`codingPath` is always empty): nothing encoded here throws, and building
/// one per field was most of the cost.
public struct JSONValueEncoder: Sendable {
    public init() {}

    public func encode(_ value: some Encodable) throws -> JSONValue {
        if let value = value as? any JSONValueEncodable { return value.jsonValue }
        let root = Node()
        try value.encode(to: ValueEncoder(node: root))
        return root.value
    }
}

/// A value under construction: containers write into it by reference.
private final class Node {
    enum Content {
        case empty
        case value(JSONValue)
        case object([String: Node])
        case array([Node])
    }
    var content: Content = .empty

    var value: JSONValue {
        switch content {
        case .empty: return .object([:])
        case .value(let value): return value
        case .object(let fields): return .object(fields.mapValues(\.value))
        case .array(let items): return .array(items.map(\.value))
        }
    }

    func objectChild(_ key: String) -> Node {
        var fields: [String: Node] = [:]
        if case .object(let existing) = content { fields = existing }
        if let child = fields[key] { return child }
        // Released from `content` first, so the dictionary is not copied to add one key.
        content = .empty
        let child = Node()
        fields[key] = child
        content = .object(fields)
        return child
    }

    func appendChild() -> Node {
        var items: [Node] = []
        if case .array(let existing) = content { items = existing }
        content = .empty
        let child = Node()
        items.append(child)
        content = .array(items)
        return child
    }

    func becomeObject() { if case .empty = content { content = .object([:]) } }
    func becomeArray() { if case .empty = content { content = .array([]) } }
}

private struct ValueEncoder: Encoder {
    let node: Node
    var codingPath: [any CodingKey] { [] }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.becomeObject()
        return KeyedEncodingContainer(Keyed<Key>(node: node))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.becomeArray()
        return Unkeyed(node: node)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        Single(node: node)
    }
}

/// Scalars as `JSONValue`s (strings, the commonest, tried first); anything else through its
/// own `encode(to:)`.
private func encodeValue(_ value: some Encodable, into node: Node) throws {
    switch value {
    case let value as String: node.content = .value(.string(value))
    case let value as Bool: node.content = .value(.bool(value))
    case let value as Int: node.content = .value(.number(Double(value)))
    case let value as any JSONValueEncodable: node.content = .value(value.jsonValue)
    case let value as Int64: node.content = .value(.number(Double(value)))
    case let value as Int32: node.content = .value(.number(Double(value)))
    case let value as UInt64: node.content = .value(.number(Double(value)))
    case let value as Double: node.content = .value(.number(value))
    case let value as Float: node.content = .value(.number(Double(value)))
    default: try value.encode(to: ValueEncoder(node: node))
    }
}

private struct Keyed<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: Node
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil(forKey key: Key) throws { node.objectChild(key.stringValue).content = .value(.null) }
    mutating func encode(_ value: some Encodable, forKey key: Key) throws {
        try encodeValue(value, into: node.objectChild(key.stringValue))
    }
    // The scalars synthesized `encode(to:)` calls most, written out: the generic path above
    // finds their type by dynamic casts, a large share of encoding a CronJob.
    mutating func encode(_ value: String, forKey key: Key) throws { node.objectChild(key.stringValue).content = .value(.string(value)) }
    mutating func encode(_ value: Bool, forKey key: Key) throws { node.objectChild(key.stringValue).content = .value(.bool(value)) }
    mutating func encode(_ value: Int, forKey key: Key) throws { node.objectChild(key.stringValue).content = .value(.number(Double(value))) }
    mutating func encodeIfPresent(_ value: String?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Bool?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
    mutating func encodeIfPresent(_ value: Int?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
    mutating func encodeIfPresent(_ value: (some Encodable)?, forKey key: Key) throws {
        if let value { try encode(value, forKey: key) }
    }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key) -> KeyedEncodingContainer<NestedKey> {
        let child = node.objectChild(key.stringValue)
        child.becomeObject()
        return KeyedEncodingContainer(Keyed<NestedKey>(node: child))
    }
    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        let child = node.objectChild(key.stringValue)
        child.becomeArray()
        return Unkeyed(node: child)
    }
    mutating func superEncoder() -> any Encoder { ValueEncoder(node: node.objectChild("super")) }
    mutating func superEncoder(forKey key: Key) -> any Encoder { ValueEncoder(node: node.objectChild(key.stringValue)) }
}

private struct Unkeyed: UnkeyedEncodingContainer {
    let node: Node
    var codingPath: [any CodingKey] { [] }
    var count: Int {
        if case .array(let items) = node.content { return items.count }
        return 0
    }

    mutating func encodeNil() throws { node.appendChild().content = .value(.null) }
    mutating func encode(_ value: some Encodable) throws {
        try encodeValue(value, into: node.appendChild())
    }
    mutating func encode(_ value: String) throws { node.appendChild().content = .value(.string(value)) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let child = node.appendChild()
        child.becomeObject()
        return KeyedEncodingContainer(Keyed<NestedKey>(node: child))
    }
    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let child = node.appendChild()
        child.becomeArray()
        return Unkeyed(node: child)
    }
    mutating func superEncoder() -> any Encoder { ValueEncoder(node: node.appendChild()) }
}

private struct Single: SingleValueEncodingContainer {
    let node: Node
    var codingPath: [any CodingKey] { [] }

    mutating func encodeNil() throws { node.content = .value(.null) }
    mutating func encode(_ value: some Encodable) throws { try encodeValue(value, into: node) }
}
