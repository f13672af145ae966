internal import CYAML

/// A YAML document as a tree. Scalars keep their text and whether they were quoted (a quoted
/// `"123"` is a string, a plain `123` may be a number); anchors are resolved, so an alias is
/// a copy of what it names.
public indirect enum YAMLNode: Sendable, Equatable {
    case scalar(String, quoted: Bool)
    case sequence([YAMLNode])
    /// Keys in document order; YAML keys of the configs we read are plain strings.
    case mapping([(key: String, value: YAMLNode)])
    case null

    public static func == (lhs: YAMLNode, rhs: YAMLNode) -> Bool {
        switch (lhs, rhs) {
        case let (.scalar(a, qa), .scalar(b, qb)): a == b && qa == qb
        case let (.sequence(a), .sequence(b)): a == b
        case let (.mapping(a), .mapping(b)): a.map(\.key) == b.map(\.key) && a.map(\.value) == b.map(\.value)
        case (.null, .null): true
        default: false
        }
    }

    public subscript(key: String) -> YAMLNode? {
        guard case .mapping(let pairs) = self else { return nil }
        return pairs.last { $0.key == key }?.value
    }

    public var string: String? {
        if case .scalar(let text, _) = self { return text }
        return nil
    }

    public var array: [YAMLNode]? {
        if case .sequence(let items) = self { return items }
        return nil
    }

    /// Parses the first document of `text` with libyaml. An empty document is `.null`.
    public static func parse(_ text: String, source: String = "<input>") throws(YAMLError) -> YAMLNode {
        try documents(in: text, source: source, first: true).first ?? .null
    }

    /// Parses every document of a stream (`---`-separated), in order; empty documents are
    /// left out, as kubectl leaves them out.
    public static func parseDocuments(_ text: String, source: String = "<input>") throws(YAMLError) -> [YAMLNode] {
        try documents(in: text, source: source, first: false).filter { $0 != .null }
    }

    private static func documents(in text: String, source: String, first: Bool) throws(YAMLError) -> [YAMLNode] {
        var parser = yaml_parser_t()
        guard yaml_parser_initialize(&parser) == 1 else {
            throw YAMLError(source: source, path: "", problem: "libyaml could not initialize")
        }
        defer { yaml_parser_delete(&parser) }
        let bytes = Array(text.utf8)
        return try bytes.withUnsafeBufferPointer { buffer throws(YAMLError) -> [YAMLNode] in
            yaml_parser_set_input_string(&parser, buffer.baseAddress, buffer.count)
            var documents: [YAMLNode] = []
            var builder = TreeBuilder(source: source)
            while true {
                var event = yaml_event_t()
                guard yaml_parser_parse(&parser, &event) == 1 else {
                    let problem = parser.problem.map { String(cString: $0) } ?? "malformed YAML"
                    throw YAMLError(source: source, path: "", problem: "\(problem) at line \(parser.problem_mark.line + 1), column \(parser.problem_mark.column + 1)")
                }
                defer { yaml_event_delete(&event) }
                switch try builder.consume(&event) {
                case .inDocument:
                    continue
                case .documentEnd:
                    documents.append(builder.root ?? .null)
                    if first { return documents }
                    builder = TreeBuilder(source: source)
                case .streamEnd:
                    return documents
                }
            }
        }
    }
}

/// Builds the nodes of one document from libyaml's event stream.
private struct TreeBuilder {
    enum Progress {
        case inDocument
        case documentEnd
        case streamEnd
    }

    enum Frame {
        case sequence([YAMLNode], anchor: String?)
        case mapping([(key: String, value: YAMLNode)], pendingKey: String?, anchor: String?)
    }

    let source: String
    var stack: [Frame] = []
    var anchors: [String: YAMLNode] = [:]
    var root: YAMLNode?

    mutating func consume(_ event: inout yaml_event_t) throws(YAMLError) -> Progress {
        switch event.type {
        case YAML_SCALAR_EVENT:
            let scalar = event.data.scalar
            let text = scalar.value.map { String(decoding: UnsafeBufferPointer(start: $0, count: scalar.length), as: UTF8.self) } ?? ""
            let quoted = scalar.style == YAML_SINGLE_QUOTED_SCALAR_STYLE || scalar.style == YAML_DOUBLE_QUOTED_SCALAR_STYLE
                || scalar.style == YAML_LITERAL_SCALAR_STYLE || scalar.style == YAML_FOLDED_SCALAR_STYLE
            let node: YAMLNode = !quoted && ["", "~", "null", "Null", "NULL"].contains(text) ? .null : .scalar(text, quoted: quoted)
            if let anchor = scalar.anchor.map({ String(cString: $0) }) { anchors[anchor] = node }
            try add(node)
        case YAML_ALIAS_EVENT:
            let name = event.data.alias.anchor.map { String(cString: $0) } ?? ""
            guard let node = anchors[name] else {
                throw YAMLError(source: source, path: "", problem: "alias *\(name) names no anchor")
            }
            try add(node)
        case YAML_SEQUENCE_START_EVENT:
            stack.append(.sequence([], anchor: event.data.sequence_start.anchor.map { String(cString: $0) }))
        case YAML_MAPPING_START_EVENT:
            stack.append(.mapping([], pendingKey: nil, anchor: event.data.mapping_start.anchor.map { String(cString: $0) }))
        case YAML_SEQUENCE_END_EVENT, YAML_MAPPING_END_EVENT:
            guard let frame = stack.popLast() else { return .inDocument }
            let node: YAMLNode
            let anchor: String?
            switch frame {
            case let .sequence(items, name): (node, anchor) = (.sequence(items), name)
            case let .mapping(pairs, _, name): (node, anchor) = (.mapping(pairs), name)
            }
            if let anchor { anchors[anchor] = node }
            try add(node)
        case YAML_DOCUMENT_END_EVENT:
            return .documentEnd
        case YAML_STREAM_END_EVENT:
            return .streamEnd
        default:
            break
        }
        return .inDocument
    }

    private mutating func add(_ node: YAMLNode) throws(YAMLError) {
        guard let top = stack.popLast() else {
            root = node
            return
        }
        switch top {
        case .sequence(var items, let anchor):
            items.append(node)
            stack.append(.sequence(items, anchor: anchor))
        case .mapping(var pairs, let pendingKey, let anchor):
            if let key = pendingKey {
                pairs.append((key, node))
                stack.append(.mapping(pairs, pendingKey: nil, anchor: anchor))
            } else {
                guard case .scalar(let key, _) = node else {
                    throw YAMLError(source: source, path: "", problem: "a mapping key must be a plain value, not a list or map")
                }
                stack.append(.mapping(pairs, pendingKey: key, anchor: anchor))
            }
        }
    }
}

/// A YAML problem: the file, the path inside it (`users[0].user.token`) and what is wrong.
public struct YAMLError: Error, CustomStringConvertible, Sendable, Equatable {
    public let source: String
    public let path: String
    public let problem: String

    public init(source: String, path: String, problem: String) {
        self.source = source
        self.path = path
        self.problem = problem
    }

    public var description: String { path.isEmpty ? "\(source): \(problem)" : "\(source): \(path): \(problem)" }
}
