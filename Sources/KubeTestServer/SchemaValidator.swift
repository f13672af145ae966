internal import Foundation
internal import KubeClient
internal import KubeObjects
internal import Synchronization

/// A CRD's structural OpenAPI v3 schema applied as the API server does: defaults filled in,
/// unknown fields pruned (unless `x-kubernetes-preserve-unknown-fields`), then types,
/// required fields, enums, patterns, bounds and lengths checked. Errors read like the real
/// server's causes: `spec.schedule: Required value`.
struct SchemaValidator {
    let schema: JSONValue

    /// The defaulted, pruned object and the problems found (empty when valid).
    func apply(to object: JSONValue) -> (JSONValue, [String]) {
        var problems: [String] = []
        var result = object
        // metadata, apiVersion and kind belong to the server, not the CRD's schema.
        for field in ["spec", "status"] {
            guard let fieldSchema = schema[path: "properties.\(field)"] else { continue }
            if let value = object[field] {
                result[field] = check(value, fieldSchema, field, &problems)
            } else if let defaulted = defaulted(fieldSchema) {
                result[field] = check(defaulted, fieldSchema, field, &problems)
            }
        }
        for field in (schema["required"]?.array ?? []).compactMap(\.string) where result[field] == nil {
            problems.append("\(field): Required value")
        }
        return (result, problems)
    }

    /// An object schema with defaults yields an object of them (so nested defaults apply).
    private func defaulted(_ schema: JSONValue) -> JSONValue? {
        if let value = schema["default"] { return value }
        return nil
    }

    private func check(_ value: JSONValue, _ schema: JSONValue, _ path: String, _ problems: inout [String]) -> JSONValue {
        if schema["x-kubernetes-int-or-string"] == .bool(true) {
            if value.number == nil && value.string == nil { problems.append("\(path): Invalid value: must be an integer or a string") }
            return value
        }
        switch schema["type"]?.string {
        case "object":
            guard var fields = value.object else {
                problems.append("\(path): Invalid value: \"\(Self.typeName(value))\": must be of type object")
                return value
            }
            let properties = schema["properties"]?.object ?? [:]
            for (name, propertySchema) in properties where fields[name] == nil {
                if let value = propertySchema["default"] { fields[name] = value }
            }
            for (name, child) in fields {
                if let propertySchema = properties[name] {
                    fields[name] = check(child, propertySchema, "\(path).\(name)", &problems)
                } else if let additional = schema["additionalProperties"], additional.object != nil {
                    fields[name] = check(child, additional, "\(path).\(name)", &problems)
                } else if schema["x-kubernetes-preserve-unknown-fields"] != .bool(true) && schema["additionalProperties"] != .bool(true) {
                    fields[name] = nil  // pruned, as the API server prunes unknown fields
                }
            }
            for name in (schema["required"]?.array ?? []).compactMap(\.string) where fields[name] == nil {
                problems.append("\(path).\(name): Required value")
            }
            // Counted after pruning, as the real server prunes while decoding (recording 04b:
            // `spec: {}` → "spec: Invalid value: 1: spec in body should have at least 1 properties").
            if let minimum = schema["minProperties"]?.number, Double(fields.count) < minimum {
                problems.append("\(path): Invalid value: \(Self.format(minimum)): \(path) in body should have at least \(Self.format(minimum)) properties")
            }
            if let maximum = schema["maxProperties"]?.number, Double(fields.count) > maximum {
                problems.append("\(path): Invalid value: \(Self.format(maximum)): \(path) in body should have at most \(Self.format(maximum)) properties")
            }
            return .object(fields)
        case "array":
            guard let items = value.array else {
                problems.append("\(path): Invalid value: \"\(Self.typeName(value))\": must be of type array")
                return value
            }
            if let minimum = schema["minItems"]?.number, Double(items.count) < minimum {
                problems.append("\(path): Invalid value: must have at least \(Int(minimum)) items")
            }
            if let maximum = schema["maxItems"]?.number, Double(items.count) > maximum {
                problems.append("\(path): Too many: \(items.count): must have at most \(Int(maximum)) items")
            }
            if schema["x-kubernetes-list-type"]?.string == "map" || schema["x-kubernetes-list-type"]?.string == "set" {
                let keys = (schema["x-kubernetes-list-map-keys"]?.array ?? []).compactMap(\.string)
                var seen: [JSONValue] = []
                for (index, item) in items.enumerated() {
                    let identity: JSONValue = keys.isEmpty ? item : .object(Dictionary(uniqueKeysWithValues: keys.map { ($0, item[$0] ?? .null) }))
                    if seen.contains(identity) {
                        problems.append("\(path)[\(index)]: Duplicate value: \(String(decoding: identity.encoded(), as: UTF8.self))")
                    }
                    seen.append(identity)
                }
            }
            guard let itemSchema = schema["items"] else { return value }
            return .array(items.enumerated().map { check($0.element, itemSchema, "\(path)[\($0.offset)]", &problems) })
        case "string":
            guard let text = value.string else {
                problems.append("\(path): Invalid value: \"\(Self.typeName(value))\": must be of type string")
                return value
            }
            if let minimum = schema["minLength"]?.number, Double(text.count) < minimum {
                problems.append("\(path): Invalid value: \"\(text)\": should be at least \(Int(minimum)) chars long")
            }
            if let maximum = schema["maxLength"]?.number, Double(text.count) > maximum {
                problems.append("\(path): Too long: may not be longer than \(Int(maximum))")
            }
            if let pattern = schema["pattern"]?.string, !Self.matches(text, pattern: pattern) {
                problems.append("\(path): Invalid value: \"\(text)\": should match '\(pattern)'")
            }
        case "integer", "number":
            guard let number = value.number, schema["type"]?.string == "number" || number == number.rounded() else {
                problems.append("\(path): Invalid value: \"\(Self.typeName(value))\": must be of type \(schema["type"]?.string ?? "number")")
                return value
            }
            if let minimum = schema["minimum"]?.number, number < minimum {
                problems.append("\(path): Invalid value: \(Self.format(number)): should be greater than or equal to \(Self.format(minimum))")
            }
            if let maximum = schema["maximum"]?.number, number > maximum {
                problems.append("\(path): Invalid value: \(Self.format(number)): should be less than or equal to \(Self.format(maximum))")
            }
        case "boolean":
            if case .bool = value {} else {
                problems.append("\(path): Invalid value: \"\(Self.typeName(value))\": must be of type boolean")
            }
        default:
            break
        }
        if let allowed = schema["enum"]?.array, !allowed.contains(value) {
            let list = allowed.map { String(decoding: $0.encoded(), as: UTF8.self) }.joined(separator: ", ")
            problems.append("\(path): Unsupported value: \(String(decoding: value.encoded(), as: UTF8.self)): supported values: \(list)")
        }
        return value
    }

    /// Compiled patterns by their text: a CRD's few patterns are checked on every write, and
    /// compiling one costs far more than matching it. Matched under the lock, as the
    /// expression objects are not declared safe to share.
    private static let compiled = Mutex<[String: NSRegularExpression?]>([:])

    /// Whether a `pattern` (unanchored, as OpenAPI's) matches somewhere in the text; an
    /// invalid pattern matches nothing.
    static func matches(_ text: String, pattern: String) -> Bool {
        compiled.withLock { cache in
            if cache[pattern] == nil { cache[pattern] = .some(try? NSRegularExpression(pattern: pattern)) }
            guard let expression = cache[pattern] ?? nil else { return false }
            return expression.firstMatch(in: text, range: NSRange(text.startIndex..., in: text)) != nil
        }
    }

    static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    static func format(_ number: Double) -> String {
        number == number.rounded() ? String(Int64(number)) : String(number)
    }
}

extension SchemaValidator {
    /// How a custom resource's lists merge under server-side apply: as its schema declares
    /// (`x-kubernetes-list-type: map` with `x-kubernetes-list-map-keys`, or `set`; a list
    /// declares nothing is atomic). Metadata merges as every object's does.
    static func listTypes(of schema: JSONValue) -> ListTypes {
        ListTypes(atomicStruct: { path in
            var node: JSONValue? = schema
            for name in path {
                while let items = node?["items"], node?["type"]?.string == "array" { node = items }
                node = node?[path: "properties"]?[name] ?? node?["additionalProperties"]
            }
            return node?["x-kubernetes-map-type"]?.string == "atomic"
        }) { path in
            if path.first == "metadata" { return ListTypes.builtIn.type(of: path) }
            var node: JSONValue? = schema
            for name in path {
                // Through list items first: the path names fields only.
                while let items = node?["items"], node?["type"]?.string == "array" { node = items }
                node = node?[path: "properties"]?[name] ?? node?["additionalProperties"]
            }
            switch node?["x-kubernetes-list-type"]?.string {
            case "map": return .map(keys: (node?["x-kubernetes-list-map-keys"]?.array ?? []).compactMap(\.string))
            case "set": return .set
            default: return .atomic
            }
        }
    }
}
