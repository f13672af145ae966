internal import CYAML
internal import Foundation

/// Writes `Encodable` values as YAML (what `-o yaml` prints) through libyaml's emitter: block
/// style, keys sorted as kubectl sorts them, and a string quoted wherever a reader would take
/// the plain text for a number, a boolean, a date or null.
public struct YAMLEncoder: Sendable {
    public init() {}

    public func encode<T: Encodable>(_ value: T) throws(YAMLError) -> String {
        let object: Any
        do {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            object = try JSONSerialization.jsonObject(with: try encoder.encode(value), options: [.fragmentsAllowed])
        } catch {
            throw YAMLError(source: "<output>", path: "", problem: "cannot be written as YAML: \(error.localizedDescription)")
        }
        return try YAMLNode(jsonObject: object).emitted()
    }
}

extension YAMLNode {
    /// A node for what `JSONSerialization` returns.
    init(jsonObject: Any) {
        switch jsonObject {
        case let dictionary as [String: Any]:
            self = .mapping(dictionary.keys.sorted().map { ($0, YAMLNode(jsonObject: dictionary[$0] as Any)) })
        case let array as [Any]:
            self = .sequence(array.map(YAMLNode.init(jsonObject:)))
        case let text as String:
            self = .scalar(text, quoted: Self.plainIsAmbiguous(text))
        case let number as NSNumber:
            // JSON's true and false come back as NSNumber too; their class tells them apart.
            let isBoolean = type(of: number) == type(of: NSNumber(value: true))
            self = .scalar(isBoolean ? (number.boolValue ? "true" : "false") : number.stringValue, quoted: false)
        default:
            self = .null
        }
    }

    /// Whether a plain (unquoted) scalar of `text` could be read back as something other than
    /// this string by a YAML 1.1 reader (libyaml's, PyYAML's, kubectl's): such strings are quoted.
    static func plainIsAmbiguous(_ text: String) -> Bool {
        guard let first = text.first else { return true }
        let words: Set<String> = ["y", "yes", "n", "no", "true", "false", "on", "off", "null", "~"]
        if words.contains(text.lowercased()) { return true }
        // Numbers in every YAML 1.1 spelling (hex, octal, 1_000, 1:30 sexagesimal) and dates.
        let numeric = Set("0123456789_:.eE+-xXoOabcdefABCDEF")
        return "0123456789+-.".contains(first) && text.allSatisfy { numeric.contains($0) }
            || text.prefix(5).count == 5 && text.prefix(4).allSatisfy(\.isNumber) && text.dropFirst(4).first == "-"
    }

    /// The node as a YAML document (block style, no wrapping of long strings).
    public func emitted() throws(YAMLError) -> String {
        let output = EmitterOutput()
        // libyaml keeps its state in the struct: it stays at one address for its whole life.
        let emitter = UnsafeMutablePointer<yaml_emitter_t>.allocate(capacity: 1)
        defer { emitter.deallocate() }
        guard yaml_emitter_initialize(emitter) == 1 else {
            throw YAMLError(source: "<output>", path: "", problem: "libyaml could not initialize its emitter")
        }
        defer { yaml_emitter_delete(emitter) }
        try withExtendedLifetime(output) { () throws(YAMLError) in
            yaml_emitter_set_output(emitter, { data, buffer, size in
                guard let data, let buffer else { return 0 }
                Unmanaged<EmitterOutput>.fromOpaque(data).takeUnretainedValue().bytes.append(contentsOf: UnsafeBufferPointer(start: buffer, count: size))
                return 1
            }, Unmanaged.passUnretained(output).toOpaque())
            yaml_emitter_set_unicode(emitter, 1)
            yaml_emitter_set_width(emitter, -1)
            let events = EventWriter(emitter: emitter)
            try events.emit { yaml_stream_start_event_initialize(&$0, YAML_UTF8_ENCODING) }
            try events.emit { yaml_document_start_event_initialize(&$0, nil, nil, nil, 1) }
            try events.write(self)
            try events.emit { yaml_document_end_event_initialize(&$0, 1) }
            try events.emit { yaml_stream_end_event_initialize(&$0) }
        }
        return String(decoding: output.bytes, as: UTF8.self)
    }
}

/// Where libyaml's output handler appends, reached through the handler's context pointer.
private final class EmitterOutput {
    var bytes: [UInt8] = []
}

/// Feeds events to an emitter; each event is handed over to libyaml, which frees it.
private struct EventWriter {
    let emitter: UnsafeMutablePointer<yaml_emitter_t>

    func emit(_ initialize: (inout yaml_event_t) -> Int32) throws(YAMLError) {
        var event = yaml_event_t()
        guard initialize(&event) == 1, yaml_emitter_emit(emitter, &event) == 1 else {
            let problem = emitter.pointee.problem.map { String(cString: $0) } ?? "an event was refused"
            throw YAMLError(source: "<output>", path: "", problem: "libyaml cannot write the document: \(problem)")
        }
    }

    func write(_ node: YAMLNode) throws(YAMLError) {
        switch node {
        case .null:
            try scalar("null", quoted: false)
        case .scalar(let text, let quoted):
            try scalar(text, quoted: quoted)
        case .sequence(let items):
            try emit { yaml_sequence_start_event_initialize(&$0, nil, nil, 1, YAML_BLOCK_SEQUENCE_STYLE) }
            for item in items { try write(item) }
            try emit { yaml_sequence_end_event_initialize(&$0) }
        case .mapping(let pairs):
            try emit { yaml_mapping_start_event_initialize(&$0, nil, nil, 1, YAML_BLOCK_MAPPING_STYLE) }
            for (key, value) in pairs {
                try scalar(key, quoted: YAMLNode.plainIsAmbiguous(key))
                try write(value)
            }
            try emit { yaml_mapping_end_event_initialize(&$0) }
        }
    }

    /// A quoted scalar may not be written plain; libyaml picks quotes (or a block style for
    /// several lines) wherever plain text would not survive.
    private func scalar(_ text: String, quoted: Bool) throws(YAMLError) {
        var bytes = Array(text.utf8)
        let count = Int32(bytes.count)
        try bytes.withUnsafeMutableBufferPointer { buffer throws(YAMLError) in
            try emit { yaml_scalar_event_initialize(&$0, nil, nil, buffer.baseAddress, count, quoted ? 0 : 1, 1, YAML_ANY_SCALAR_STYLE) }
        }
    }
}
