internal import Foundation

/// `metadata` of any object: what the runtime needs to key, version and own objects.
public struct ObjectMeta: Codable, Sendable, Equatable {
    public var name: String
    public var namespace: String?
    public var uid: String?
    public var resourceVersion: String?
    public var generation: Int?
    public var labels: [String: String]?
    public var annotations: [String: String]?
    public var finalizers: [String]?
    public var ownerReferences: [OwnerReference]?
    public var creationTimestamp: String?
    public var deletionTimestamp: String?
    public var generateName: String?

    public init(name: String, namespace: String? = nil, labels: [String: String]? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
    }
}

public struct OwnerReference: Codable, Sendable, Equatable {
    public var apiVersion: String
    public var kind: String
    public var name: String
    public var uid: String
    public var controller: Bool?
    public var blockOwnerDeletion: Bool?

    public init(apiVersion: String, kind: String, name: String, uid: String, controller: Bool? = true, blockOwnerDeletion: Bool? = true) {
        self.apiVersion = apiVersion
        self.kind = kind
        self.name = name
        self.uid = uid
        self.controller = controller
        self.blockOwnerDeletion = blockOwnerDeletion
    }
}

/// An object the runtime can watch, cache and reconcile.
public protocol KubeObject: Codable, Sendable {
    var metadata: ObjectMeta { get set }
}

extension KubeObject {
    /// `namespace/name`, or `name` for cluster-scoped objects: the work queue's key.
    public var key: String { metadata.namespace.map { "\($0)/\(metadata.name)" } ?? metadata.name }
}

/// Any object, typed metadata and the rest as JSON: for kinds without a Swift type of their own.
public struct GenericObject: KubeObject, Equatable {
    public var metadata: ObjectMeta
    public var fields: [String: JSONValue]

    public init(metadata: ObjectMeta, fields: [String: JSONValue] = [:]) {
        self.metadata = metadata
        self.fields = fields
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: AnyKey.self)
        metadata = try container.decode(ObjectMeta.self, forKey: AnyKey(stringValue: "metadata"))
        var fields: [String: JSONValue] = [:]
        for key in container.allKeys where key.stringValue != "metadata" {
            fields[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
        }
        self.fields = fields
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: AnyKey.self)
        try container.encode(metadata, forKey: AnyKey(stringValue: "metadata"))
        for (key, value) in fields { try container.encode(value, forKey: AnyKey(stringValue: key)) }
    }
}
