import Foundation
import HTTP
import KubeClient
import KubeObjects
import KubeTestServer
import Testing

/// What the test API server does as a real one does, beyond the recordings: RBAC for tokens
/// that are not the administrator's, and printer columns evaluated as the API server's table
/// convertor does.
@Suite("The test API server's RBAC and printer columns")
struct ServerFidelityTests {
    static let widgets = ResourceType(group: "example.com", version: "v1", plural: "widgets", kind: "Widget", namespaced: true)

    @Test("RBAC: nothing without a binding (the real 403 wording); a RoleBinding grants in its namespace, a ClusterRoleBinding everywhere; subresources and names count")
    func rbac() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let admin = try KubeClient(connection: server.connection(namespace: "shop"))
        let token = server.token(forServiceAccount: "app", namespace: "shop")
        let app = try KubeClient(connection: server.connection(namespace: "shop", token: token), maximumAttempts: 1)
        do {
            _ = try await app.listAll(.cronJobs, namespace: "shop", as: GenericObject.self)
            Issue.record("listed without a binding")
        } catch {
            #expect(error.code == 403 && error.reason == "Forbidden")
            #expect(error.message.hasSuffix("cronjobs.batch is forbidden: User \"system:serviceaccount:shop:app\" cannot list resource \"cronjobs\" in API group \"batch\" in the namespace \"shop\""))
        }
        let _: JSONValue = try await admin.create(.roles, namespace: "shop", [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": ["name": "cron-reader"],
            "rules": [["apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["get", "list"]],
                      ["apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["settings"], "verbs": ["get"]]],
        ])
        let _: JSONValue = try await admin.create(.roleBindings, namespace: "shop", [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": ["name": "app-reads"],
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "cron-reader"],
            "subjects": [["kind": "ServiceAccount", "name": "app", "namespace": "shop"]],
        ])
        _ = try await app.listAll(.cronJobs, namespace: "shop", as: GenericObject.self)
        await #expect(throws: KubeAPIError.self, "another namespace") { _ = try await app.listAll(.cronJobs, namespace: "billing", as: GenericObject.self) }
        await #expect(throws: KubeAPIError.self, "all namespaces") { _ = try await app.listAll(.cronJobs, as: GenericObject.self) }
        await #expect(throws: KubeAPIError.self, "another verb") {
            let _: JSONValue = try await app.patch(.cronJobs, name: "x", .merge(["spec": ["suspend": true]]), subresource: "status")
        }
        do {
            let _: JSONValue = try await app.get(.configMaps, name: "other")
            Issue.record("read a ConfigMap the rule does not name")
        } catch {
            #expect(error.message.hasSuffix("configmaps \"other\" is forbidden: User \"system:serviceaccount:shop:app\" cannot get resource \"configmaps\" in API group \"\" in the namespace \"shop\""))
        }
        do {
            let _: JSONValue = try await app.get(.configMaps, name: "settings")
        } catch {
            #expect(error.isNotFound, "allowed, and simply not there: \(error)")
        }
        // A ClusterRole bound cluster-wide reaches every namespace.
        let _: JSONValue = try await admin.create(.clusterRoles, [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": ["name": "cron-lister"],
            "rules": [["apiGroups": ["batch"], "resources": ["cronjobs"], "verbs": ["list"]]],
        ])
        let _: JSONValue = try await admin.create(.clusterRoleBindings, [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": ["name": "app-lists"],
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cron-lister"],
            "subjects": [["kind": "ServiceAccount", "name": "app", "namespace": "shop"]],
        ])
        _ = try await app.listAll(.cronJobs, as: GenericObject.self)
        _ = try await app.listAll(.cronJobs, namespace: "billing", as: GenericObject.self)
    }

    /// core/v1 Secret (its API reference: "stringData … merged into the data field on write,
    /// overwriting any existing values … never output when reading"; SetDefaults_Secret: type
    /// Opaque), labels.Selector's set-based requirements, and rbac's appliesToUser (a
    /// RoleBinding's ServiceAccount subject without a namespace is in the binding's).
    @Test("Secrets fold stringData into data and default their type; set-based label selectors; a RoleBinding subject without a namespace is the binding's")
    func secretsSelectorsAndSubjects() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let admin = try KubeClient(connection: server.connection(namespace: "shop"))
        let secret: JSONValue = ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "db", "labels": ["tier": "db"]],
                                 "data": ["user": .string(Data("old".utf8).base64EncodedString()), "host": .string(Data("h".utf8).base64EncodedString())],
                                 "stringData": ["user": "app"]]
        let created: JSONValue = try await admin.create(.secrets, namespace: "shop", secret)
        #expect(created["stringData"] == nil && created["type"] == "Opaque")
        #expect(created["data"] == ["user": .string(Data("app".utf8).base64EncodedString()), "host": .string(Data("h".utf8).base64EncodedString())])
        let _: JSONValue = try await admin.create(.secrets, namespace: "shop", ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "web", "labels": ["tier": "web"]]])
        let _: JSONValue = try await admin.create(.secrets, namespace: "shop", ["apiVersion": "v1", "kind": "Secret", "metadata": ["name": "bare"]])
        func names(_ selector: String) async throws -> [String] {
            try await admin.listAll(.secrets, namespace: "shop", labelSelector: selector, as: GenericObject.self).items.map(\.metadata.name).sorted()
        }
        #expect(try await names("tier in (db,cache)") == ["db"])
        #expect(try await names("tier notin (db)") == ["bare", "web"], "notin matches objects without the key")
        #expect(try await names("tier,tier notin (web)") == ["db"])
        // Through the client's percent-encoding of the query: `!`, `=`, spaces, commas, parentheses.
        #expect(try await names("!tier") == ["bare"])
        #expect(try await names("tier!=web,tier in (db, web)") == ["db"])

        let token = server.token(forServiceAccount: "reader", namespace: "shop")
        let reader = try KubeClient(connection: server.connection(namespace: "shop", token: token), maximumAttempts: 1)
        let _: JSONValue = try await admin.create(.roles, namespace: "shop", [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": ["name": "secret-reader"],
            "rules": [["apiGroups": [""], "resources": ["secrets"], "verbs": ["list"]]],
        ])
        let _: JSONValue = try await admin.create(.roleBindings, namespace: "shop", [
            "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": ["name": "reader"],
            "roleRef": ["apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "secret-reader"],
            "subjects": [["kind": "ServiceAccount", "name": "reader"]],
        ])
        #expect(try await reader.listAll(.secrets, namespace: "shop", as: GenericObject.self).items.count == 3)
    }

    @Test("printer columns: a [*] path shows its first value, filters pick the element, a missing value is empty, dates are ages, no Age is added to declared columns")
    func printerColumns() async throws {
        let server = try TestAPIServer()
        defer { server.stop() }
        let admin = try KubeClient(connection: server.connection(namespace: "shop"))
        let _: JSONValue = try await admin.create(.customResourceDefinitions, [
            "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition", "metadata": ["name": "widgets.example.com"],
            "spec": ["group": "example.com", "scope": "Namespaced",
                     "names": ["plural": "widgets", "singular": "widget", "kind": "Widget"],
                     "versions": [["name": "v1", "served": true, "storage": true,
                                   "schema": ["openAPIV3Schema": ["type": "object", "x-kubernetes-preserve-unknown-fields": true]],
                                   "additionalPrinterColumns": [
                                       ["name": "Parts", "type": "string", "jsonPath": ".spec.parts[*].name"],
                                       ["name": "Ready", "type": "string", "jsonPath": ".status.conditions[?(@.type==\"Ready\")].status"],
                                       ["name": "Second", "type": "string", "jsonPath": ".spec.parts[1].name"],
                                       ["name": "Missing", "type": "string", "jsonPath": ".spec.nothing"],
                                       ["name": "Made", "type": "date", "jsonPath": ".metadata.creationTimestamp"],
                                   ]]]],
        ])
        let _: JSONValue = try await admin.create(Self.widgets, [
            "apiVersion": "example.com/v1", "kind": "Widget", "metadata": ["name": "w"],
            "spec": ["parts": [["name": "a"], ["name": "b"], ["name": "c"]]],
            "status": ["conditions": [["type": "Synced", "status": "False"], ["type": "Ready", "status": "True"]]],
        ])
        let response = try await HTTPClient().send(HTTPRequest(method: "GET", url: server.url + "/apis/example.com/v1/namespaces/shop/widgets", headers: [
            HTTPHeader("Accept", "application/json;as=Table;v=v1;g=meta.k8s.io"), HTTPHeader("Authorization", "Bearer \(server.token)"),
        ]))
        let table = try JSONValue.decode(Data(response.body))
        let cells = try #require(table["rows"]?[arrayIndex: 0]?["cells"]?.array)
        #expect(cells.prefix(5) == ["w", "a", "True", "b", .null], "\(cells)")
        #expect(cells.count == 6 && cells[5].string?.hasSuffix("s") == true, "the date as an age, and no column beyond the declared ones: \(cells)")
        let names = table["columnDefinitions"]?.array?.compactMap { $0["name"]?.string }
        #expect(names == ["Name", "Parts", "Ready", "Second", "Missing", "Made"])
    }
}
