/// A kind of object the API serves: where its URLs are and whether it lives in a namespace.
public struct ResourceType: Sendable, Hashable, CustomStringConvertible {
    /// Empty for the core group (`/api/v1`).
    public let group: String
    public let version: String
    public let plural: String
    public let kind: String
    public let namespaced: Bool

    public init(group: String, version: String, plural: String, kind: String, namespaced: Bool) {
        self.group = group
        self.version = version
        self.plural = plural
        self.kind = kind
        self.namespaced = namespaced
    }

    public var apiVersion: String { group.isEmpty ? version : "\(group)/\(version)" }
    public var description: String { group.isEmpty ? plural : "\(plural).\(group)" }

    /// `/api/v1/namespaces/ns/pods/name[/status]`, or the collection when `name` is nil.
    public func path(namespace: String?, name: String? = nil, subresource: String? = nil) -> String {
        var path = group.isEmpty ? "/api/\(version)" : "/apis/\(group)/\(version)"
        if namespaced, let namespace { path += "/namespaces/\(namespace)" }
        path += "/\(plural)"
        if let name { path += "/\(name)" }
        if let subresource { path += "/\(subresource)" }
        return path
    }

    public static let pods = ResourceType(group: "", version: "v1", plural: "pods", kind: "Pod", namespaced: true)
    public static let secrets = ResourceType(group: "", version: "v1", plural: "secrets", kind: "Secret", namespaced: true)
    public static let events = ResourceType(group: "", version: "v1", plural: "events", kind: "Event", namespaced: true)
    public static let namespaces = ResourceType(group: "", version: "v1", plural: "namespaces", kind: "Namespace", namespaced: false)
    public static let jobs = ResourceType(group: "batch", version: "v1", plural: "jobs", kind: "Job", namespaced: true)
    public static let cronJobs = ResourceType(group: "batch", version: "v1", plural: "cronjobs", kind: "CronJob", namespaced: true)
    public static let leases = ResourceType(group: "coordination.k8s.io", version: "v1", plural: "leases", kind: "Lease", namespaced: true)
    public static let customResourceDefinitions = ResourceType(group: "apiextensions.k8s.io", version: "v1", plural: "customresourcedefinitions",
                                                               kind: "CustomResourceDefinition", namespaced: false)
    public static let backupPolicies = ResourceType(group: "backstop.dev", version: "v1alpha1", plural: "backuppolicies", kind: "BackupPolicy", namespaced: true)
    public static let backupRestores = ResourceType(group: "backstop.dev", version: "v1alpha1", plural: "backuprestores", kind: "BackupRestore", namespaced: true)
}

extension ResourceType {
    public static let configMaps = ResourceType(group: "", version: "v1", plural: "configmaps", kind: "ConfigMap", namespaced: true)
    public static let serviceAccounts = ResourceType(group: "", version: "v1", plural: "serviceaccounts", kind: "ServiceAccount", namespaced: true)
    public static let services = ResourceType(group: "", version: "v1", plural: "services", kind: "Service", namespaced: true)
    public static let deployments = ResourceType(group: "apps", version: "v1", plural: "deployments", kind: "Deployment", namespaced: true)
    public static let statefulSets = ResourceType(group: "apps", version: "v1", plural: "statefulsets", kind: "StatefulSet", namespaced: true)
    public static let roles = ResourceType(group: "rbac.authorization.k8s.io", version: "v1", plural: "roles", kind: "Role", namespaced: true)
    public static let roleBindings = ResourceType(group: "rbac.authorization.k8s.io", version: "v1", plural: "rolebindings", kind: "RoleBinding",
                                                  namespaced: true)
    public static let clusterRoles = ResourceType(group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterroles", kind: "ClusterRole",
                                                  namespaced: false)
    public static let clusterRoleBindings = ResourceType(group: "rbac.authorization.k8s.io", version: "v1", plural: "clusterrolebindings",
                                                         kind: "ClusterRoleBinding", namespaced: false)
}
