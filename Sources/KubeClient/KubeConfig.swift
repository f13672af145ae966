public import Foundation
internal import YAML

/// How to reach an API server: where, whom to trust, who we are, and the default namespace.
public struct KubeConnection: Sendable, Equatable {
    public enum Token: Sendable, Equatable {
        case fixed(String)
        /// Re-read as it rotates (projected service-account tokens do, hourly).
        case file(String)
    }

    public var server: String
    public var caFile: String?
    public var caPEM: String?
    public var clientCertificatePEM: String?
    public var clientCertificateFile: String?
    public var clientKeyPEM: String?
    public var clientKeyFile: String?
    public var token: Token?
    public var insecureSkipTLSVerify = false
    public var namespace: String

    public init(server: String, namespace: String = "default", token: Token? = nil) {
        self.server = server.hasSuffix("/") ? String(server.dropLast()) : server
        self.namespace = namespace
        self.token = token
    }
}

/// kubeconfig files, as kubectl reads them.
struct KubeConfigFile: Decodable {
    struct NamedCluster: Decodable { let name: String; let cluster: Cluster }
    struct Cluster: Decodable {
        let server: String?
        let certificateAuthority: String?
        let certificateAuthorityData: String?
        let insecureSkipTLSVerify: Bool?
        enum CodingKeys: String, CodingKey {
            case server
            case certificateAuthority = "certificate-authority"
            case certificateAuthorityData = "certificate-authority-data"
            case insecureSkipTLSVerify = "insecure-skip-tls-verify"
        }
    }
    struct NamedUser: Decodable { let name: String; let user: User }
    struct User: Decodable {
        let token: String?
        let tokenFile: String?
        let clientCertificate: String?
        let clientCertificateData: String?
        let clientKey: String?
        let clientKeyData: String?
        enum CodingKeys: String, CodingKey {
            case token, tokenFile
            case clientCertificate = "client-certificate"
            case clientCertificateData = "client-certificate-data"
            case clientKey = "client-key"
            case clientKeyData = "client-key-data"
        }
    }
    struct NamedContext: Decodable { let name: String; let context: Context }
    struct Context: Decodable { let cluster: String; let user: String?; let namespace: String? }

    let clusters: [NamedCluster]?
    let users: [NamedUser]?
    let contexts: [NamedContext]?
    let currentContext: String?

    enum CodingKeys: String, CodingKey {
        case clusters, users, contexts
        case currentContext = "current-context"
    }
}

extension KubeConnection {
    /// kubeconfig first (`KUBECONFIG`, several files merged, else `~/.kube/config`), then the
    /// pod's service account. When neither works, the error names both causes.
    public static func resolve(context: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
                               serviceAccountDirectory: String = "/var/run/secrets/kubernetes.io/serviceaccount") throws(KubeAPIError) -> KubeConnection {
        let kubeconfigProblem: String
        do {
            return try fromKubeconfig(context: context, environment: environment)
        } catch {
            kubeconfigProblem = error.message
        }
        do {
            return try inCluster(environment: environment, directory: serviceAccountDirectory)
        } catch {
            throw KubeAPIError(.configuration, "no Kubernetes configuration: \(kubeconfigProblem); and not in a cluster: \(error.message)")
        }
    }

    /// The files `KUBECONFIG` names (`:`-separated), else `~/.kube/config`.
    static func kubeconfigPaths(environment: [String: String]) -> [String] {
        if let list = environment["KUBECONFIG"], !list.isEmpty {
            return list.split(separator: ":").map(String.init)
        }
        let home = environment["HOME"] ?? NSHomeDirectory()
        return [home + "/.kube/config"]
    }

    public static func fromKubeconfig(context wanted: String? = nil, environment: [String: String]) throws(KubeAPIError) -> KubeConnection {
        // Merged like kubectl: the first file to name a cluster, user or context wins, and the
        // first current-context set wins.
        var clusters: [String: (KubeConfigFile.Cluster, String)] = [:]
        var users: [String: (KubeConfigFile.User, String)] = [:]
        var contexts: [String: KubeConfigFile.Context] = [:]
        var current: String?
        var read: [String] = []
        for path in kubeconfigPaths(environment: environment) {
            guard let data = FileManager.default.contents(atPath: path) else { continue }
            let file: KubeConfigFile
            do { file = try YAMLDecoder().decode(KubeConfigFile.self, from: String(decoding: data, as: UTF8.self), source: path) }
            catch { throw KubeAPIError(.configuration, "kubeconfig \(error.description)") }
            read.append(path)
            let folder = (path as NSString).deletingLastPathComponent
            for entry in file.clusters ?? [] where clusters[entry.name] == nil { clusters[entry.name] = (entry.cluster, folder) }
            for entry in file.users ?? [] where users[entry.name] == nil { users[entry.name] = (entry.user, folder) }
            for entry in file.contexts ?? [] where contexts[entry.name] == nil { contexts[entry.name] = entry.context }
            if current == nil, let name = file.currentContext, !name.isEmpty { current = name }
        }
        let paths = kubeconfigPaths(environment: environment).joined(separator: ":")
        guard !read.isEmpty else { throw KubeAPIError(.configuration, "no kubeconfig at \(paths)") }
        guard let name = wanted ?? current else {
            throw KubeAPIError(.configuration, "kubeconfig \(read.joined(separator: ":")): no current-context; pass --context")
        }
        guard let context = contexts[name] else {
            throw KubeAPIError(.configuration, "kubeconfig \(read.joined(separator: ":")): contexts: no context named \(name)")
        }
        guard let (cluster, clusterFolder) = clusters[context.cluster] else {
            throw KubeAPIError(.configuration, "kubeconfig \(read.joined(separator: ":")): context \(name) names cluster \(context.cluster), which is not in clusters")
        }
        guard let server = cluster.server, !server.isEmpty else {
            throw KubeAPIError(.configuration, "kubeconfig \(read.joined(separator: ":")): clusters[\(context.cluster)].cluster.server is missing")
        }
        var connection = KubeConnection(server: server, namespace: context.namespace ?? "default")
        func absolute(_ path: String, _ folder: String) -> String { path.hasPrefix("/") ? path : folder + "/" + path }
        func pem(_ base64: String, field: String) throws(KubeAPIError) -> String {
            guard let data = Data(base64Encoded: base64.filter { !$0.isWhitespace }) else {
                throw KubeAPIError(.configuration, "kubeconfig \(read.joined(separator: ":")): \(field) is not base64")
            }
            return String(decoding: data, as: UTF8.self)
        }
        connection.caFile = cluster.certificateAuthority.map { absolute($0, clusterFolder) }
        connection.caPEM = try cluster.certificateAuthorityData.map { data throws(KubeAPIError) in
            try pem(data, field: "clusters[\(context.cluster)].cluster.certificate-authority-data")
        }
        connection.insecureSkipTLSVerify = cluster.insecureSkipTLSVerify ?? false
        if let userName = context.user {
            guard let (user, userFolder) = users[userName] else {
                throw KubeAPIError(.configuration, "kubeconfig \(read.joined(separator: ":")): context \(name) names user \(userName), which is not in users")
            }
            if let token = user.token { connection.token = .fixed(token) }
            else if let file = user.tokenFile { connection.token = .file(absolute(file, userFolder)) }
            connection.clientCertificateFile = user.clientCertificate.map { absolute($0, userFolder) }
            connection.clientKeyFile = user.clientKey.map { absolute($0, userFolder) }
            connection.clientCertificatePEM = try user.clientCertificateData.map { data throws(KubeAPIError) in
                try pem(data, field: "users[\(userName)].user.client-certificate-data")
            }
            connection.clientKeyPEM = try user.clientKeyData.map { data throws(KubeAPIError) in
                try pem(data, field: "users[\(userName)].user.client-key-data")
            }
            let hasCertificate = connection.clientCertificateFile != nil || connection.clientCertificatePEM != nil
            let hasKey = connection.clientKeyFile != nil || connection.clientKeyPEM != nil
            guard hasCertificate == hasKey else {
                throw KubeAPIError(.configuration, "kubeconfig \(read.joined(separator: ":")): users[\(userName)] has a client certificate without its key, or a key without its certificate")
            }
        }
        return connection
    }

    /// The pod's service account: token (re-read as it rotates), CA and namespace.
    public static func inCluster(environment: [String: String], directory: String) throws(KubeAPIError) -> KubeConnection {
        guard let host = environment["KUBERNETES_SERVICE_HOST"], !host.isEmpty,
              let port = environment["KUBERNETES_SERVICE_PORT"], !port.isEmpty else {
            throw KubeAPIError(.configuration, "KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT are not set")
        }
        let token = directory + "/token"
        guard FileManager.default.isReadableFile(atPath: token) else {
            throw KubeAPIError(.configuration, "no service account token at \(token); is automountServiceAccountToken off?")
        }
        let namespace = FileManager.default.contents(atPath: directory + "/namespace")
            .map { String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines) } ?? "default"
        let server = host.contains(":") ? "https://[\(host)]:\(port)" : "https://\(host):\(port)"
        var connection = KubeConnection(server: server, namespace: namespace, token: .file(token))
        connection.caFile = directory + "/ca.crt"
        return connection
    }
}
