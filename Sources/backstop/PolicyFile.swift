import BackstopAPI
import Foundation
import YAML

/// BackupPolicy documents as users have them: written by hand, or what `kubectl get bp -o yaml`
/// prints (managedFields, uid, status …); one document, several (`---`), or a `List`.
/// Strict where a mistake would go unnoticed (`kind`, `apiVersion`, unknown fields under
/// `spec`, as `kubectl apply --validate=strict`); tolerant of what Kubernetes adds (every
/// metadata field; `status` is ignored).
enum PolicyFile {
    struct Document {
        let policy: BackupPolicy
        /// The file, and which document or item of it: for messages.
        let source: String
    }

    /// Reads `path` (`-` is stdin); every BackupPolicy in it, in order.
    static func read(_ path: String, option: String = "-f") throws(CommandLineError) -> [Document] {
        let text: String
        if path == "-" {
            text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
        } else {
            guard let data = FileManager.default.contents(atPath: path) else {
                let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read (permissions)" : "does not exist"
                throw .usage("\(option) \(path): the file \(reason); give the path of a BackupPolicy YAML or JSON file, or - for stdin")
            }
            text = String(decoding: data, as: UTF8.self)
        }
        let source = path == "-" ? "<stdin>" : path
        let nodes: [YAMLNode]
        do { nodes = try YAMLNode.parseDocuments(text, source: source) } catch { throw .usage(error.description) }
        var documents: [Document] = []
        for (index, node) in nodes.enumerated() {
            try collect(node, source: nodes.count > 1 ? "\(source) (document \(index + 1))" : source, into: &documents)
        }
        guard !documents.isEmpty else {
            throw .usage("\(source) holds no BackupPolicy; a policy starts with apiVersion: \(BackupPolicy.apiVersion) and kind: \(BackupPolicy.kind)")
        }
        return documents
    }

    private static func collect(_ node: YAMLNode, source: String, into documents: inout [Document]) throws(CommandLineError) {
        let apiVersion = node["apiVersion"]?.string
        switch node["kind"]?.string {
        case "List", "BackupPolicyList":
            for (index, item) in (node["items"]?.array ?? []).enumerated() {
                try collect(item, source: "\(source) items[\(index)]", into: &documents)
            }
        case BackupPolicy.kind:
            guard apiVersion == BackupPolicy.apiVersion else {
                throw .usage("\(source): apiVersion \(apiVersion.map { "\"\($0)\"" } ?? "is missing")\(apiVersion == nil ? "" : " is not \(BackupPolicy.apiVersion)"); write apiVersion: \(BackupPolicy.apiVersion)")
            }
            // The status belongs to the cluster, not to the policy: ignored, whatever it holds.
            guard case .mapping(let pairs) = node else { throw .usage("\(source): a BackupPolicy must be a mapping") }
            let policy: BackupPolicy
            do {
                policy = try YAMLDecoder(strictPaths: ["spec"]).decode(BackupPolicy.self, from: .mapping(pairs.filter { $0.key != "status" }), source: source)
            } catch {
                throw .usage(error.description)
            }
            documents.append(Document(policy: policy, source: source))
        case nil:
            throw .usage("\(source): no kind; a policy starts with apiVersion: \(BackupPolicy.apiVersion) and kind: \(BackupPolicy.kind)")
        case let other?:
            throw .usage("\(source): kind \(other) is not a \(BackupPolicy.kind); give a file of BackupPolicy documents (or a List of them)")
        }
    }
}
