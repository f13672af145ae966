/// `metadata` of any object: what clients key, version and own objects by. One model for the
/// controller, the builders and the policy types.
public struct ObjectMeta: Codable, Sendable, Hashable {
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
    /// Who set which field (server-side apply's field ownership), as the server reports it.
    public var managedFields: [ManagedFieldsEntry]?

    public init(name: String, namespace: String? = nil, labels: [String: String]? = nil, annotations: [String: String]? = nil,
                ownerReferences: [OwnerReference]? = nil) {
        self.name = name
        self.namespace = namespace
        self.labels = labels
        self.annotations = annotations
        self.ownerReferences = ownerReferences
    }
}

public struct OwnerReference: Codable, Sendable, Hashable {
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

/// One manager's fields (`metadata.managedFields[]`): whoever applied or updated them.
public struct ManagedFieldsEntry: Codable, Sendable, Hashable {
    /// `Apply` (server-side apply) or `Update` (create, update, patch).
    public var operation: String?
    public var manager: String?
    public var apiVersion: String?
    public var time: String?
    public var fieldsType: String?
    /// The fields, read from their `FieldsV1` form (`{"f:spec": {"f:schedule": {}}}`).
    public var fieldsV1: FieldSet?
    /// `status` when the entry is about a subresource.
    public var subresource: String?

    public init(operation: String?, manager: String?, apiVersion: String?, time: String?, fieldsV1: FieldSet?, subresource: String? = nil) {
        self.operation = operation
        self.manager = manager
        self.apiVersion = apiVersion
        self.time = time
        self.fieldsType = fieldsV1 == nil ? nil : "FieldsV1"
        self.fieldsV1 = fieldsV1
        self.subresource = subresource
    }
}
