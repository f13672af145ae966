public import BackstopAPI
internal import BlockingCalls
internal import Foundation
public import KubeClient
internal import KubeObjects
internal import Pipeline
internal import Storage

/// Where a backup reads the namespace's Secrets and ConfigMaps: the API (as the pod's
/// ServiceAccount), the namespace, and each kind's label selector.
public struct NamespaceObjectsSource: Sendable {
    public let client: KubeClient
    public let namespace: String
    public let selectors: [NamespaceObjects.Kind: String]

    public init(client: KubeClient, namespace: String, selectors: [NamespaceObjects.Kind: String]) {
        self.client = client
        self.namespace = namespace
        self.selectors = selectors
    }
}

/// The Secrets and ConfigMaps part of a backup: read through the API, stripped of what the
/// server manages, written as one `v1` `List` through compression and (always) encryption
/// into `objects.json<ext>.enc`, read back checked block by block.
///
/// Values never leave this type in the clear except to the API server (restore) or to a file
/// the user asked for: logs and errors name kinds and names only.
enum NamespaceObjectsArchive {
    static func objectName(_ compression: CompressionAlgorithm) -> String {
        "objects.json" + compression.fileExtension + ".enc"
    }

    /// Metadata the server sets, or that would tie a copy to the original object: a restored
    /// object with the old owner's uid would be collected at once by the garbage collector.
    static let serverManagedMetadata = ["uid", "resourceVersion", "generation", "creationTimestamp", "deletionTimestamp",
                                        "deletionGracePeriodSeconds", "managedFields", "selfLink", "ownerReferences", "finalizers"]

    /// Reads every selected object, sorted by kind and name.
    static func read(_ source: NamespaceObjectsSource) async throws(EngineError) -> [JSONValue] {
        var objects: [JSONValue] = []
        for kind in NamespaceObjects.Kind.allCases {
            guard let selector = source.selectors[kind] else { continue }
            let resource: ResourceType = kind == .secret ? .secrets : .configMaps
            let items: [JSONValue]
            do {
                items = try await source.client.listAll(resource, namespace: source.namespace, labelSelector: selector, as: JSONValue.self).items
            } catch {
                throw EngineError(.kubernetes, "cannot list \(resource.plural) (\(selector)) in \(source.namespace): \(error.message)\(error.code == 403 ? "; bind the backup's ServiceAccount to a Role with get and list on \(resource.plural) (k8s/examples/objects-rbac.yaml)" : "")",
                                  underlying: error)
            }
            objects += items.map { stripped($0, kind: kind) }.sorted { ($0[path: "metadata.name"]?.string ?? "") < ($1[path: "metadata.name"]?.string ?? "") }
        }
        return objects
    }

    /// The object as it can be created again: apiVersion and kind set (list items lack them),
    /// server-managed metadata and status removed.
    static func stripped(_ object: JSONValue, kind: NamespaceObjects.Kind) -> JSONValue {
        var fields = object.object ?? [:]
        fields["apiVersion"] = "v1"
        fields["kind"] = .string(kind.rawValue)
        fields["status"] = nil
        var metadata = fields["metadata"]?.object ?? [:]
        for name in serverManagedMetadata { metadata[name] = nil }
        fields["metadata"] = .object(metadata)
        return .object(fields)
    }

    /// The stored plaintext: `{"apiVersion":"v1","kind":"List","items":[…]}`, as kubectl reads it.
    static func document(_ items: [JSONValue]) -> [UInt8] {
        JSONValue.object(["apiVersion": "v1", "kind": "List", "items": .array(items)]).encodedBytes()
    }

    static func counts(_ items: [JSONValue]) -> [String: Int] {
        Dictionary(items.map { ($0["kind"]?.string ?? "", 1) }, uniquingKeysWith: +)
    }

    /// Compresses, encrypts and stores the objects under the backup's folder.
    static func store(_ items: [JSONValue], id: BackupID, context: WorkerContext, compression: CompressionAlgorithm, level: Int,
                      key: EncryptionKey) async throws(EngineError) -> BackupManifest.NamespaceObjectsInfo {
        let name = objectName(compression)
        let plaintext = document(items)
        let encoded: Encoded
        do {
            encoded = try await runBlocking(name: "objects-encode") { () throws -> Encoded in
                let plaintextHash = BlockHashingStage(blockSize: nil)
                let stored = BlockHashingStage()
                let output = try StagePipeline.transform(plaintext, through: [plaintextHash, try Compression.compressor(compression, level: level),
                                                                              try ChunkEncryptor(key: key, backupID: BackupIDBytes(id.rawValue)), stored],
                                                         expectedSize: plaintext.count)
                return Encoded(bytes: output, plaintext: .init(size: plaintextHash.byteCount, sha256: plaintextHash.sha256),
                               object: .init(name: name, size: Int64(output.count), hashed: stored))
            }
            try await context.storage.put(context.location.objectKey(id, name: name), bytes: encoded.bytes)
        } catch {
            throw EngineError.wrapping(error, context: "cannot store the Secrets and ConfigMaps of \(id)")
        }
        return .init(object: encoded.object, plaintext: encoded.plaintext, counts: counts(items))
    }

    private struct Encoded: Sendable {
        let bytes: [UInt8]
        let plaintext: BackupManifest.PlaintextInfo
        let object: BackupManifest.StoredObject
    }

    /// Reads the part back: every block against the manifest, decrypted, decompressed, the
    /// plaintext's hash checked, parsed. Throws when the backup has none.
    static func load(_ manifest: BackupManifest, context: WorkerContext, key: EncryptionKey?) async throws(EngineError) -> [JSONValue] {
        guard let info = manifest.namespaceObjects else {
            throw EngineError(.notFound, "backup \(manifest.id) holds no Secrets or ConfigMaps: its policy had no objects selection then; pick a backup from after objects was set")
        }
        guard let key else {
            throw EngineError(.encryption, "the Secrets and ConfigMaps of \(manifest.id) are encrypted; pass the backup's --encryption-key-file or --passphrase-file")
        }
        let storage = context.storage
        let objectKey = context.location.objectKey(manifest.id, name: info.object.name)
        let algorithm = manifest.compression.algorithm
        let id = manifest.id
        let plaintext: (bytes: [UInt8], sha256: String)
        do {
            plaintext = try await runBlocking(name: "objects-decode") { () throws -> ([UInt8], String) in
                let hash = BlockHashingStage(blockSize: nil)
                var output: [UInt8] = []
                let pipeline = StagePipeline([ChunkDecryptor(key: key, backupID: BackupIDBytes(id.rawValue)),
                                              try Compression.decompressor(algorithm), hash]) { output.append(contentsOf: $0) }
                try CheckedObjectReader(storage: storage, key: objectKey, object: info.object).stream(into: pipeline, progress: TransferProgress())
                return (output, hash.sha256)
            }
        } catch {
            throw EngineError.wrapping(error, context: "the Secrets and ConfigMaps of \(manifest.id)")
        }
        guard Int64(plaintext.bytes.count) == info.plaintext.size, plaintext.sha256 == info.plaintext.sha256 else {
            throw EngineError(.integrity, "the Secrets and ConfigMaps of \(manifest.id) decode to other bytes than the manifest records; restore them from another backup")
        }
        guard let items = (try? JSONValue.decode(Data(plaintext.bytes)))?["items"]?.array else {
            throw EngineError(.integrity, "the Secrets and ConfigMaps of \(manifest.id) are not a List of objects; restore them from another backup")
        }
        return items
    }
}
