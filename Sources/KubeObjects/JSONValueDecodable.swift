/// A type read from an already parsed `JSONValue` instead of through `Decodable`: for what a
/// controller decodes thousands of times (watch events, list items, answers to applies),
/// `JSONDecoder`'s per-value containers and coding paths cost more than the work itself.
/// `KubeClient` uses this when the type offers it.
public protocol JSONValueDecodable {
    init(json: JSONValue) throws(JSONValue.ShapeError)
    /// Top-level fields the type never reads (e.g. `["spec"]` for metadata-only views): the
    /// parser skips them instead of building them.
    static var unreadFields: [[String]] { get }
}

extension JSONValueDecodable {
    public static var unreadFields: [[String]] { [] }
}

extension JSONValue {
    /// A value that is not the shape a type needs: names the field.
    public struct ShapeError: Error, CustomStringConvertible, Sendable {
        public let field: String
        public let expected: String
        public var description: String { "\(field): expected \(expected)" }

        public init(field: String, expected: String) {
            self.field = field
            self.expected = expected
        }
    }

    /// `[String: String]` of an object of strings (labels, annotations); nil when absent.
    public func stringMap(_ key: String) throws(ShapeError) -> [String: String]? {
        guard let value = self[key], value != .null else { return nil }
        guard let fields = value.object else { throw ShapeError(field: key, expected: "an object of strings") }
        var map: [String: String] = [:]
        for (name, item) in fields {
            guard let text = item.string else { throw ShapeError(field: "\(key).\(name)", expected: "a string") }
            map[name] = text
        }
        return map
    }

    public func requiredString(_ key: String) throws(ShapeError) -> String {
        guard let text = self[key]?.string else { throw ShapeError(field: key, expected: "a string") }
        return text
    }

    public var int: Int? { number.flatMap { $0 == $0.rounded() && abs($0) < 9e15 ? Int($0) : nil } }
    public var bool: Bool? { if case .bool(let value) = self { value } else { nil } }
}

extension ObjectMeta: JSONValueDecodable {
    public init(json: JSONValue) throws(JSONValue.ShapeError) {
        self.init(name: try json.requiredString("name"), namespace: json["namespace"]?.string, labels: try json.stringMap("labels"),
                  annotations: try json.stringMap("annotations"))
        uid = json["uid"]?.string
        resourceVersion = json["resourceVersion"]?.string
        generation = json["generation"]?.int
        finalizers = json["finalizers"]?.array?.compactMap(\.string)
        ownerReferences = try json["ownerReferences"]?.array?.map { reference throws(JSONValue.ShapeError) in try OwnerReference(json: reference) }
        creationTimestamp = json["creationTimestamp"]?.string
        deletionTimestamp = json["deletionTimestamp"]?.string
        generateName = json["generateName"]?.string
        managedFields = json["managedFields"]?.array?.map { entry in
            ManagedFieldsEntry(operation: entry["operation"]?.string, manager: entry["manager"]?.string, apiVersion: entry["apiVersion"]?.string,
                               time: entry["time"]?.string, fieldsV1: entry["fieldsV1"].map(FieldSet.init(fieldsV1:)),
                               subresource: entry["subresource"]?.string)
        }
    }
}

extension OwnerReference: JSONValueDecodable {
    public init(json: JSONValue) throws(JSONValue.ShapeError) {
        self.init(apiVersion: try json.requiredString("apiVersion"), kind: try json.requiredString("kind"), name: try json.requiredString("name"),
                  uid: try json.requiredString("uid"), controller: json["controller"]?.bool, blockOwnerDeletion: json["blockOwnerDeletion"]?.bool)
    }
}
