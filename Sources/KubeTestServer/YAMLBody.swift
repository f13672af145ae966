internal import Foundation
internal import KubeObjects
internal import YAML

/// Request bodies: JSON, or YAML for server-side apply (`application/apply-patch+yaml`; kubectl
/// and client-go send JSON there too, which is YAML). Plain scalars resolve as YAML 1.2's core
/// schema does, as the API server's YAML decoder reads them: `1` is a number, `true` a bool,
/// `null` or `~` nothing, a quoted `"1"` a string.
enum RequestBody {
    static func decode(_ bytes: [UInt8], contentType: String) -> JSONValue? {
        if let json = try? JSONValue.decode(Data(bytes)) { return json }
        guard contentType.contains("yaml"), let node = try? YAMLNode.parse(String(decoding: bytes, as: UTF8.self)) else { return nil }
        return json(node)
    }

    static func json(_ node: YAMLNode) -> JSONValue {
        switch node {
        case .null: return .null
        case .sequence(let items): return .array(items.map(json))
        case .mapping(let pairs): return .object(Dictionary(pairs.map { ($0.key, json($0.value)) }, uniquingKeysWith: { _, last in last }))
        case .scalar(let text, let quoted):
            if quoted { return .string(text) }
            switch text {
            case "null", "Null", "NULL", "~", "": return .null
            case "true", "True", "TRUE": return .bool(true)
            case "false", "False", "FALSE": return .bool(false)
            default: break
            }
            if text.range(of: #"^[-+]?([0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$"#, options: .regularExpression) != nil,
               let value = Int(text.replacingOccurrences(of: "+", with: "")) {
                return .number(Double(value))
            }
            if text.range(of: #"^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$"#, options: .regularExpression) != nil,
               let value = Double(text) {
                return .number(value)
            }
            return .string(text)
        }
    }
}
