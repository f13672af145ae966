import Foundation
import KubeClient
import KubeObjects
import KubeTestServer
import YAML

/// The control plane the controller's tests run on, as a cluster would have it: the test API
/// server with the CRD and `k8s/rbac.yaml` applied, and the controller talking as its own
/// ServiceAccount (`backstop-system/backstop-controller`), so a rule missing from the RBAC
/// fails here as it would in a cluster. Tests look and poke as the administrator.
enum ControlPlane {
    static let namespace = "backstop-system"
    static let serviceAccount = "backstop-controller"

    /// The kinds `k8s/rbac.yaml` holds.
    static let kinds: [String: ResourceType] = [
        "ServiceAccount": .serviceAccounts, "Role": .roles, "RoleBinding": .roleBindings,
        "ClusterRole": .clusterRoles, "ClusterRoleBinding": .clusterRoleBindings,
    ]

    /// Applies the CRDs and the RBAC (namespaced objects into `backstop-system`, as the
    /// kustomization puts them).
    static func install(on server: TestAPIServer, crd: JSONValue? = nil) async throws {
        let admin = try KubeClient(connection: server.connection(namespace: namespace))
        _ = try await admin.create(.customResourceDefinitions, try crd ?? PolicyReconcilerTests.manifest("k8s/crds/backuppolicy.yaml"))
        _ = try await admin.create(.customResourceDefinitions, try PolicyReconcilerTests.manifest("k8s/crds/backuprestore.yaml"))
        try await apply("k8s/rbac.yaml", namespace: namespace, on: server)
    }

    /// Creates the RBAC objects of a file of the repository (`kubectl apply -n namespace -f`).
    static func apply(_ file: String, namespace: String, on server: TestAPIServer) async throws {
        let admin = try KubeClient(connection: server.connection(namespace: namespace))
        let text = try String(contentsOfFile: PolicyReconcilerTests.root + "/" + file, encoding: .utf8)
        for document in try YAMLNode.parseDocuments(text, source: file) {
            let object = try YAMLDecoder().decode(JSONValue.self, from: document, source: file)
            guard let kind = object["kind"]?.string, let type = kinds[kind] else { continue }
            let _: JSONValue = try await admin.create(type, namespace: type.namespaced ? namespace : nil, object)
        }
    }

    /// A client acting as the controller's ServiceAccount.
    static func controllerClient(_ server: TestAPIServer, maximumAttempts: Int = 5) throws -> KubeClient {
        try KubeClient(connection: server.connection(namespace: namespace, token: token(server)), maximumAttempts: maximumAttempts)
    }

    static func token(_ server: TestAPIServer) -> String {
        server.token(forServiceAccount: serviceAccount, namespace: namespace)
    }
}
