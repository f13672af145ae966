import Foundation
import KubeClient
import Testing

@Suite("Kubernetes configuration")
struct KubeConfigTests {
    let folder: URL

    init() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("backstop-kube-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    func write(_ name: String, _ text: String) throws -> String {
        let path = folder.appendingPathComponent(name).path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return path
    }

    static let base64PEM = Data("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n".utf8).base64EncodedString()

    @Test("tokens, token files, client certificates (files and data), CA, namespace, contexts")
    func shapes() throws {
        let config = try write("config", """
            apiVersion: v1
            kind: Config
            current-context: prod
            clusters:
            - name: prod-cluster
              cluster: {server: "https://prod.example:6443/", certificate-authority-data: \(Self.base64PEM)}
            - name: dev-cluster
              cluster: {server: https://dev.example:6443, certificate-authority: certs/ca.pem, insecure-skip-tls-verify: true}
            users:
            - name: admin
              user: {client-certificate-data: \(Self.base64PEM), client-key-data: \(Self.base64PEM)}
            - name: robot
              user: {tokenFile: tokens/robot}
            - name: files
              user: {client-certificate: /etc/k/cert.pem, client-key: key.pem}
            contexts:
            - name: prod
              context: {cluster: prod-cluster, user: admin, namespace: shop}
            - name: dev
              context: {cluster: dev-cluster, user: robot}
            - name: files
              context: {cluster: dev-cluster, user: files}
            """)
        let prod = try KubeConnection.fromKubeconfig(environment: ["KUBECONFIG": config])
        #expect(prod.server == "https://prod.example:6443")
        #expect(prod.namespace == "shop")
        #expect(prod.caPEM?.hasPrefix("-----BEGIN CERTIFICATE-----") == true)
        #expect(prod.clientCertificatePEM != nil && prod.clientKeyPEM != nil)
        #expect(!prod.insecureSkipTLSVerify, "verification stays on unless the file says otherwise")

        let dev = try KubeConnection.fromKubeconfig(context: "dev", environment: ["KUBECONFIG": config])
        #expect(dev.namespace == "default")
        #expect(dev.caFile == folder.path + "/certs/ca.pem", "relative paths are relative to the kubeconfig")
        #expect(dev.token == .file(folder.path + "/tokens/robot"))
        #expect(dev.insecureSkipTLSVerify)

        let files = try KubeConnection.fromKubeconfig(context: "files", environment: ["KUBECONFIG": config])
        #expect(files.clientCertificateFile == "/etc/k/cert.pem")
        #expect(files.clientKeyFile == folder.path + "/key.pem")
    }

    @Test("several KUBECONFIG files merge: the first to name something wins")
    func merged() throws {
        let first = try write("first", """
            current-context: a
            clusters: [{name: c, cluster: {server: "https://first:1"}}]
            contexts: [{name: a, context: {cluster: c, user: u}}]
            users: [{name: u, user: {token: first-token}}]
            """)
        let second = try write("second", """
            current-context: b
            clusters: [{name: c, cluster: {server: "https://second:1"}}, {name: d, cluster: {server: "https://d:1"}}]
            contexts: [{name: b, context: {cluster: d, user: u}}]
            users: [{name: u, user: {token: second-token}}]
            """)
        let environment = ["KUBECONFIG": "\(first):\(folder.path)/missing:\(second)"]
        let connection = try KubeConnection.fromKubeconfig(environment: environment)
        #expect(connection.server == "https://first:1")
        #expect(connection.token == .fixed("first-token"))
        #expect(try KubeConnection.fromKubeconfig(context: "b", environment: environment).server == "https://d:1")
    }

    @Test("bad files name the file and the field")
    func badFiles() throws {
        let cases: [(String, String)] = [
            ("clusters: [{name: c, cluster: {server: https://x}}]\ncontexts: [{name: a, context: {cluster: c}}]\n", "current-context"),
            ("current-context: a\ncontexts: [{name: a, context: {cluster: nowhere}}]\n", "nowhere"),
            ("current-context: a\nclusters: [{name: c, cluster: {}}]\ncontexts: [{name: a, context: {cluster: c}}]\n", "server"),
            ("current-context: a\nclusters: [{name: c, cluster: {server: https://x, certificate-authority-data: '%%%'}}]\ncontexts: [{name: a, context: {cluster: c}}]\n", "certificate-authority-data"),
            ("current-context: a\nclusters: [{name: c, cluster: {server: https://x}}]\nusers: [{name: u, user: {client-certificate: c.pem}}]\ncontexts: [{name: a, context: {cluster: c, user: u}}]\n", "key"),
            ("clusters: [{name: c, cluster: {server: [1, 2]}}]\n", "clusters[0].cluster.server"),
        ]
        for (index, (text, expected)) in cases.enumerated() {
            let path = try write("bad\(index)", text)
            do {
                _ = try KubeConnection.fromKubeconfig(environment: ["KUBECONFIG": path])
                Issue.record("case \(index) was accepted")
            } catch {
                #expect(error.message.contains(path), "names the file: \(error.message)")
                #expect(error.message.contains(expected), "names the field \(expected): \(error.message)")
            }
        }
    }

    @Test("in-cluster: the service account; neither source: one error naming both")
    func inCluster() throws {
        let account = folder.appendingPathComponent("serviceaccount")
        try FileManager.default.createDirectory(at: account, withIntermediateDirectories: true)
        try Data("sa-token\n".utf8).write(to: account.appendingPathComponent("token"))
        try Data("backstop-system".utf8).write(to: account.appendingPathComponent("namespace"))
        let environment = ["KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443", "HOME": folder.path]
        let connection = try KubeConnection.resolve(environment: environment, serviceAccountDirectory: account.path)
        #expect(connection.server == "https://10.0.0.1:443")
        #expect(connection.namespace == "backstop-system")
        #expect(connection.token == .file(account.path + "/token"))
        #expect(connection.caFile == account.path + "/ca.crt")
        do {
            _ = try KubeConnection.resolve(environment: ["HOME": folder.path], serviceAccountDirectory: account.path)
            Issue.record("no configuration was accepted")
        } catch {
            #expect(error.message.contains("no kubeconfig at \(folder.path)/.kube/config"))
            #expect(error.message.contains("KUBERNETES_SERVICE_HOST"))
        }
    }
}
