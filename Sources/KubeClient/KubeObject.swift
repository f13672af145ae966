public import KubeObjects

/// An object the runtime can watch, cache and reconcile.
public protocol KubeObject: Codable, Sendable {
    var metadata: ObjectMeta { get set }
}

extension KubeObject {
    /// `namespace/name`, or `name` for cluster-scoped objects: the work queue's key.
    public var key: String { metadata.namespace.map { "\($0)/\(metadata.name)" } ?? metadata.name }
}

/// Any object, typed metadata and the rest as JSON: for kinds without a Swift type of their own.
public struct GenericObject: KubeObject, Equatable, JSONValueDecodable {
    public var metadata: ObjectMeta
    public var fields: [String: JSONValue]

    public init(metadata: ObjectMeta, fields: [String: JSONValue] = [:]) {
        self.metadata = metadata
        self.fields = fields
    }

    public init(json: JSONValue) throws(JSONValue.ShapeError) {
        metadata = try ObjectMeta(json: json["metadata"] ?? .null)
        fields = json.object ?? [:]
        fields["metadata"] = nil
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    /// Read as from the client (`init(json:)`), whichever decoder it comes from.
    public init(from decoder: any Decoder) throws {
        try self.init(json: JSONValue(from: decoder))
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyKey.self)
        try container.encode(metadata, forKey: AnyKey(stringValue: "metadata"))
        for (key, value) in fields { try container.encode(value, forKey: AnyKey(stringValue: key)) }
    }
}

/// The API server's `/version`. `minor` may carry a suffix (`27+` on some providers).
public struct ServerVersion: Decodable, Sendable, Equatable {
    public var major: String
    public var minor: String
    public var gitVersion: String

    public init(major: String, minor: String, gitVersion: String) {
        self.major = major
        self.minor = minor
        self.gitVersion = gitVersion
    }

    /// The minor release as a number (`27+` → 27); nil when unreadable.
    public var minorNumber: Int? { Int(minor.prefix { $0.isNumber }) }
}

/// A list page that can read itself from parsed JSON (when its items can).
protocol FastListPage {
    init?(fast json: JSONValue) throws
    static var unreadItemFields: [[String]] { get }
}

/// An answer whose content is not needed (a status patch's, an Event's): only that the
/// request succeeded. Scanned, not parsed into values.
public struct Acknowledgement: Decodable, Sendable, JSONValueDecodable {
    public static var unreadFields: [[String]] { [["*"]] }

    public init(json: JSONValue) {}

    public init(from decoder: any Decoder) throws {}
}
