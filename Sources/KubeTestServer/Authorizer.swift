internal import KubeObjects

/// Who a request is from: the admin token's holder (group `system:masters`, allowed
/// everything), or a user or service account whose every request RBAC decides, as on a real
/// cluster, from the Roles, ClusterRoles and bindings stored in this server.
public struct APIUser: Sendable, Hashable {
    public let name: String
    public let groups: [String]

    public static let admin = APIUser(name: "admin", groups: ["system:masters", "system:authenticated"])

    public static func serviceAccount(namespace: String, name: String) -> APIUser {
        APIUser(name: "system:serviceaccount:\(namespace):\(name)",
                groups: ["system:serviceaccounts", "system:serviceaccounts:\(namespace)", "system:authenticated"])
    }

    public init(name: String, groups: [String]) {
        self.name = name
        self.groups = groups
    }
}

/// RBAC: a request is allowed when a rule of a role bound to the user (or one of its groups,
/// or its service account) names its API group, resource (`cronjobs/status` for the
/// subresource), verb and, for requests on one object, its name. A RoleBinding grants in its
/// namespace; a ClusterRoleBinding everywhere.
struct Authorizer {
    struct Attributes {
        let verb: String
        let group: String
        let resource: String
        let subresource: String?
        let namespace: String?
        let name: String?
    }

    /// The stored Roles, ClusterRoles, RoleBindings and ClusterRoleBindings.
    let roles: [JSONValue]
    let clusterRoles: [JSONValue]
    let roleBindings: [JSONValue]
    let clusterRoleBindings: [JSONValue]

    func allows(_ user: APIUser, _ request: Attributes) -> Bool {
        if user.groups.contains("system:masters") { return true }
        for binding in clusterRoleBindings where binds(binding, to: user) {
            if let role = clusterRole(binding[path: "roleRef.name"]?.string), grants(role, request) { return true }
        }
        guard let namespace = request.namespace else { return false }
        for binding in roleBindings where binding[path: "metadata.namespace"]?.string == namespace && binds(binding, to: user) {
            let name = binding[path: "roleRef.name"]?.string
            let role = binding[path: "roleRef.kind"]?.string == "ClusterRole"
                ? clusterRole(name)
                : roles.first { $0[path: "metadata.namespace"]?.string == namespace && $0[path: "metadata.name"]?.string == name }
            if let role, grants(role, request) { return true }
        }
        return false
    }

    private func clusterRole(_ name: String?) -> JSONValue? {
        clusterRoles.first { $0[path: "metadata.name"]?.string == name }
    }

    private func binds(_ binding: JSONValue, to user: APIUser) -> Bool {
        (binding["subjects"]?.array ?? []).contains { subject in
            let name = subject["name"]?.string ?? ""
            switch subject["kind"]?.string {
            // As rbac's appliesToUser: a RoleBinding's subject without a namespace is in the
            // binding's (a ClusterRoleBinding's must name one).
            case "ServiceAccount":
                let namespace = subject["namespace"]?.string ?? binding[path: "metadata.namespace"]?.string ?? ""
                return user.name == "system:serviceaccount:\(namespace):\(name)"
            case "User": return user.name == name
            case "Group": return user.groups.contains(name)
            default: return false
            }
        }
    }

    private func grants(_ role: JSONValue, _ request: Attributes) -> Bool {
        let resource = request.subresource.map { "\(request.resource)/\($0)" } ?? request.resource
        return (role["rules"]?.array ?? []).contains { rule in
            func list(_ field: String) -> [String] { (rule[field]?.array ?? []).compactMap(\.string) }
            let groups = list("apiGroups"), resources = list("resources"), verbs = list("verbs"), names = list("resourceNames")
            return (groups.contains("*") || groups.contains(request.group))
                && (resources.contains("*") || resources.contains(resource))
                && (verbs.contains("*") || verbs.contains(request.verb))
                && (names.isEmpty || request.name.map(names.contains) == true)
        }
    }

    /// The real server's refusal: `cronjobs.batch is forbidden: User "…" cannot list resource
    /// "cronjobs" in API group "batch" in the namespace "shop"`.
    static func refusal(_ user: APIUser, _ request: Attributes) -> JSONValue {
        let qualified = request.group.isEmpty ? request.resource : "\(request.resource).\(request.group)"
        let named = request.name.map { " \"\($0)\"" } ?? ""
        let resource = request.subresource.map { "\(request.resource)/\($0)" } ?? request.resource
        let scope = request.namespace.map { "in the namespace \"\($0)\"" } ?? "at the cluster scope"
        let message = "\(qualified)\(named) is forbidden: User \"\(user.name)\" cannot \(request.verb) resource \"\(resource)\" in API group \"\(request.group)\" \(scope)"
        var details: [String: JSONValue] = ["group": .string(request.group), "kind": .string(request.resource)]
        if let name = request.name { details["name"] = .string(name) }
        return ["kind": "Status", "apiVersion": "v1", "metadata": [:], "status": "Failure", "message": .string(message),
                "reason": "Forbidden", "details": .object(details), "code": 403]
    }
}
