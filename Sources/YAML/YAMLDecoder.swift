/// Decodes `Decodable` values from YAML (kubeconfig, manifests). Errors name the source and
/// the path of the field, e.g. `~/.kube/config: users[0].user.token: expected a string`.
public struct YAMLDecoder: Sendable {
    /// Paths (e.g. `spec`) under which a field the type does not know is an error, as
    /// `kubectl apply --validate=strict` makes it; elsewhere unknown fields are ignored, as
    /// Kubernetes adds its own (`status`, `managedFields` …).
    public var strictPaths: [String]

    public init(strictPaths: [String] = []) {
        self.strictPaths = strictPaths
    }

    public func decode<T: Decodable>(_ type: T.Type, from text: String, source: String = "<input>") throws(YAMLError) -> T {
        try decode(type, from: try YAMLNode.parse(text, source: source), source: source)
    }

    /// Decodes an already parsed document (one of several in a stream, say).
    public func decode<T: Decodable>(_ type: T.Type, from root: YAMLNode, source: String = "<input>") throws(YAMLError) -> T {
        let usage = KeyUsage()
        do {
            let value = try T(from: NodeDecoder(node: root, path: [], source: source, usage: usage))
            if let unknown = usage.firstUnknownKey(in: root, under: strictPaths) {
                throw YAMLError(source: source, path: unknown, problem: "unknown field; check its spelling and where it is indented (kubectl --validate=strict refuses it too)")
            }
            return value
        } catch let error as YAMLError {
            throw error
        } catch let DecodingError.keyNotFound(key, context) {
            throw YAMLError(source: source, path: Self.render(context.codingPath), problem: "missing field \(key.stringValue)")
        } catch let DecodingError.typeMismatch(_, context), let DecodingError.valueNotFound(_, context), let DecodingError.dataCorrupted(context) {
            throw YAMLError(source: source, path: Self.render(context.codingPath), problem: context.debugDescription)
        } catch {
            throw YAMLError(source: source, path: "", problem: "\(error)")
        }
    }

    static func render(_ path: [any CodingKey]) -> String {
        var text = ""
        for key in path {
            if let index = key.intValue { text += "[\(index)]" } else { text += text.isEmpty ? key.stringValue : ".\(key.stringValue)" }
        }
        return text
    }
}

private struct IndexKey: CodingKey {
    let intValue: Int?
    let stringValue: String
    init(_ index: Int) { intValue = index; stringValue = "\(index)" }
    init?(intValue: Int) { self.init(intValue) }
    init?(stringValue: String) { return nil }
}

/// The fields a decoded type asked for, so the ones nobody asked for can be reported.
private final class KeyUsage {
    private var used: Set<String> = []

    func record(_ path: [any CodingKey], _ key: any CodingKey) {
        used.insert(YAMLDecoder.render(path + [key]))
    }

    /// The first key under one of `prefixes` that no decoder asked for, in document order.
    func firstUnknownKey(in node: YAMLNode, under prefixes: [String], path: String = "") -> String? {
        func isStrict(_ path: String) -> Bool {
            prefixes.contains { path == $0 || path.hasPrefix($0 + ".") || path.hasPrefix($0 + "[") }
        }
        switch node {
        case .mapping(let pairs):
            for (key, value) in pairs {
                let child = path.isEmpty ? key : path + "." + key
                if isStrict(child) && !used.contains(child) { return child }
                if let unknown = firstUnknownKey(in: value, under: prefixes, path: child) { return unknown }
            }
        case .sequence(let items):
            for (index, item) in items.enumerated() {
                if let unknown = firstUnknownKey(in: item, under: prefixes, path: path + "[\(index)]") { return unknown }
            }
        case .scalar, .null:
            break
        }
        return nil
    }
}

private struct NodeDecoder: Decoder {
    let node: YAMLNode
    let path: [any CodingKey]
    let source: String
    let usage: KeyUsage
    var codingPath: [any CodingKey] { path }
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func error(_ problem: String) -> YAMLError {
        YAMLError(source: source, path: YAMLDecoder.render(path), problem: problem)
    }

    func container<Key: CodingKey>(keyedBy type: Key.Type) throws -> KeyedDecodingContainer<Key> {
        switch node {
        case .mapping(let pairs): return KeyedDecodingContainer(Keyed<Key>(pairs: pairs, decoder: self))
        case .null: return KeyedDecodingContainer(Keyed<Key>(pairs: [], decoder: self))
        default: throw error("expected a mapping")
        }
    }

    func unkeyedContainer() throws -> any UnkeyedDecodingContainer {
        switch node {
        case .sequence(let items): return Unkeyed(items: items, decoder: self)
        case .null: return Unkeyed(items: [], decoder: self)
        default: throw error("expected a list")
        }
    }

    func singleValueContainer() throws -> any SingleValueDecodingContainer { Single(decoder: self) }

    func child(_ node: YAMLNode, _ key: any CodingKey) -> NodeDecoder {
        NodeDecoder(node: node, path: path + [key], source: source, usage: usage)
    }
}

private struct Keyed<Key: CodingKey>: KeyedDecodingContainerProtocol {
    let pairs: [(key: String, value: YAMLNode)]
    let decoder: NodeDecoder
    var codingPath: [any CodingKey] { decoder.path }
    var allKeys: [Key] { pairs.compactMap { Key(stringValue: $0.key) } }

    /// The value of `key`; asking counts as knowing the field.
    func node(_ key: Key) -> YAMLNode? {
        decoder.usage.record(decoder.path, key)
        return pairs.last { $0.key == key.stringValue }?.value
    }
    func contains(_ key: Key) -> Bool { node(key) != nil }

    func decodeNil(forKey key: Key) throws -> Bool {
        guard let node = node(key) else { return true }
        return node == .null
    }

    func decode<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T {
        guard let node = node(key) else {
            throw decoder.child(.null, key).error("missing field \(key.stringValue)")
        }
        return try T(from: decoder.child(node, key))
    }

    func decodeIfPresent<T: Decodable>(_ type: T.Type, forKey key: Key) throws -> T? {
        guard let node = node(key), node != .null else { return nil }
        return try T(from: decoder.child(node, key))
    }

    func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type, forKey key: Key) throws -> KeyedDecodingContainer<NestedKey> {
        try decoder.child(node(key) ?? .null, key).container(keyedBy: type)
    }

    func nestedUnkeyedContainer(forKey key: Key) throws -> any UnkeyedDecodingContainer {
        try decoder.child(node(key) ?? .null, key).unkeyedContainer()
    }

    func superDecoder() throws -> any Decoder { decoder }
    func superDecoder(forKey key: Key) throws -> any Decoder { decoder.child(node(key) ?? .null, key) }
}

private struct Unkeyed: UnkeyedDecodingContainer {
    let items: [YAMLNode]
    let decoder: NodeDecoder
    var currentIndex = 0
    var codingPath: [any CodingKey] { decoder.path }
    var count: Int? { items.count }
    var isAtEnd: Bool { currentIndex >= items.count }

    mutating func next() throws -> NodeDecoder {
        guard !isAtEnd else { throw decoder.error("the list has only \(items.count) items") }
        defer { currentIndex += 1 }
        return decoder.child(items[currentIndex], IndexKey(currentIndex))
    }

    mutating func decodeNil() throws -> Bool {
        guard !isAtEnd, items[currentIndex] == .null else { return false }
        currentIndex += 1
        return true
    }

    mutating func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: try next()) }
    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy type: NestedKey.Type) throws -> KeyedDecodingContainer<NestedKey> {
        try next().container(keyedBy: type)
    }
    mutating func nestedUnkeyedContainer() throws -> any UnkeyedDecodingContainer { try next().unkeyedContainer() }
    mutating func superDecoder() throws -> any Decoder { try next() }
}

private struct Single: SingleValueDecodingContainer {
    let decoder: NodeDecoder
    var codingPath: [any CodingKey] { decoder.path }

    func decodeNil() -> Bool { decoder.node == .null }

    func text(_ expected: String) throws -> (String, Bool) {
        guard case .scalar(let text, let quoted) = decoder.node else { throw decoder.error("expected \(expected)") }
        return (text, quoted)
    }

    /// A plain `123` or `true` is a number or a boolean, as in JSON (and so for Kubernetes):
    /// a string field wants it quoted. This keeps `JSONValue` and typed decoding in agreement.
    func decode(_ type: String.Type) throws -> String {
        let (text, quoted) = try text("a string")
        let numeric = text.first.map { "0123456789-+.".contains($0) } == true && Double(text) != nil
        if !quoted && (numeric || ["true", "false", "True", "False", "TRUE", "FALSE"].contains(text)) {
            throw decoder.error("expected a string, not \(text); quote it (\"\(text)\")")
        }
        return text
    }

    func decode(_ type: Bool.Type) throws -> Bool {
        let (text, quoted) = try text("true or false")
        switch (text, quoted) {
        case ("true", false), ("True", false), ("TRUE", false): return true
        case ("false", false), ("False", false), ("FALSE", false): return false
        default: throw decoder.error("expected true or false, not \(text)")
        }
    }

    func number<T: LosslessStringConvertible>(_ type: T.Type) throws -> T {
        let (text, _) = try text("a number")
        guard let value = T(text) else { throw decoder.error("expected a number, not \(text)") }
        return value
    }

    func decode(_ type: Double.Type) throws -> Double { try number(Double.self) }
    func decode(_ type: Float.Type) throws -> Float { try number(Float.self) }
    func decode(_ type: Int.Type) throws -> Int { try number(Int.self) }
    func decode(_ type: Int8.Type) throws -> Int8 { try number(Int8.self) }
    func decode(_ type: Int16.Type) throws -> Int16 { try number(Int16.self) }
    func decode(_ type: Int32.Type) throws -> Int32 { try number(Int32.self) }
    func decode(_ type: Int64.Type) throws -> Int64 { try number(Int64.self) }
    func decode(_ type: UInt.Type) throws -> UInt { try number(UInt.self) }
    func decode(_ type: UInt8.Type) throws -> UInt8 { try number(UInt8.self) }
    func decode(_ type: UInt16.Type) throws -> UInt16 { try number(UInt16.self) }
    func decode(_ type: UInt32.Type) throws -> UInt32 { try number(UInt32.self) }
    func decode(_ type: UInt64.Type) throws -> UInt64 { try number(UInt64.self) }
    func decode<T: Decodable>(_ type: T.Type) throws -> T { try T(from: decoder) }
}
