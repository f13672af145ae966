public import BackstopAPI
public import KubeClient
public import KubeObjects

/// `backstop restore-objects`: the Secrets and ConfigMaps a backup stored, put back through
/// the API — by default only planned (a dry run naming kinds and names, never values).
public struct RestoreObjectsCommand: Sendable {
    public enum Mode: Sendable {
        /// Looks at the target namespace (when a client is given) and says what `apply` with
        /// the same `overwrite` would do.
        case dryRun(overwrite: Bool)
        /// Creates what is missing; replaces what exists only with `overwrite`.
        case apply(overwrite: Bool)
        /// Returns the objects for the caller to write out; the API is not touched.
        case export
    }

    public struct Options: Sendable {
        public var encryption: EncryptionSource
        public var mode: Mode
        /// The namespace to restore into; the backed-up namespace when nil.
        public var targetNamespace: String?
        /// Secrets of type `kubernetes.io/service-account-token`: the token controller makes
        /// them for the account; a copy elsewhere is a stale credential.
        public var includeServiceAccountTokens: Bool
        /// Secrets of type `helm.sh/release.v1`: Helm's record of a release, restored with it.
        public var includeHelmReleases: Bool
        /// Needed for `dryRun` (to tell create from replace) and `apply`.
        public var client: KubeClient?

        public init(encryption: EncryptionSource, mode: Mode, targetNamespace: String?, includeServiceAccountTokens: Bool = false,
                    includeHelmReleases: Bool = false, client: KubeClient?) {
            self.encryption = encryption
            self.mode = mode
            self.targetNamespace = targetNamespace
            self.includeServiceAccountTokens = includeServiceAccountTokens
            self.includeHelmReleases = includeHelmReleases
            self.client = client
        }
    }

    public struct Item: Sendable, Equatable {
        public enum Action: String, Sendable {
            case create, replace
            /// Exists and `--overwrite` was not given.
            case keep
            /// A service-account token or Helm release, not asked for.
            case skip
            /// The dry run could not ask the API.
            case restore
        }
        public var kind: String
        public var name: String
        public var action: Action
        /// Why it is kept or skipped, or the API's refusal when applying it failed.
        public var note: String?
        public var failed: Bool

        /// `create Secret/db-credentials`, with the note after it.
        public var line: String {
            "\(failed ? "failed" : action.rawValue) \(kind)/\(name)" + (note.map { " (\($0))" } ?? "")
        }
    }

    public struct Result: Sendable {
        public let backupID: BackupID
        public let namespace: String
        public let items: [Item]
        /// The objects to restore as they would be sent (namespace set): for `export`.
        public let objects: [JSONValue]
        public var failures: [Item] { items.filter(\.failed) }
    }

    let context: WorkerContext
    let options: Options

    public init(context: WorkerContext, options: Options) {
        self.context = context
        self.options = options
    }

    public func run(_ reference: String) async throws(EngineError) -> Result {
        let catalog = BackupCatalog(context: context)
        let id = try await catalog.resolve(reference)
        let loaded: [JSONValue] = try await BackupReadLease(context: context).holding(id) { () throws(EngineError) in
            let manifest = try await catalog.load(id).manifest
            return try await NamespaceObjectsArchive.load(manifest, context: context, key: try options.encryption.key(for: manifest))
        }
        let namespace = options.targetNamespace ?? context.location.namespace
        var items: [Item] = []
        var objects: [JSONValue] = []
        for object in loaded {
            let kind = object["kind"]?.string ?? ""
            let name = object[path: "metadata.name"]?.string ?? ""
            if let reason = skipReason(object) {
                items.append(Item(kind: kind, name: name, action: .skip, note: reason, failed: false))
                continue
            }
            var fields = object.object ?? [:]
            var metadata = fields["metadata"]?.object ?? [:]
            metadata["namespace"] = .string(namespace)
            fields["metadata"] = .object(metadata)
            objects.append(.object(fields))
        }
        switch options.mode {
        case .export:
            items += objects.map { Item(kind: $0["kind"]?.string ?? "", name: $0[path: "metadata.name"]?.string ?? "", action: .restore, note: nil, failed: false) }
        case .dryRun(let overwrite):
            for object in objects { items.append(await plan(object, namespace: namespace, overwrite: overwrite)) }
        case .apply(let overwrite):
            guard let client = options.client else {
                throw EngineError(.invalidOption, "--apply writes through the Kubernetes API, and no kubeconfig or in-cluster account was found; set KUBECONFIG or run in the cluster")
            }
            for object in objects { items.append(await apply(object, namespace: namespace, overwrite: overwrite, client: client)) }
        }
        return Result(backupID: id, namespace: namespace, items: items, objects: objects)
    }

    private func skipReason(_ object: JSONValue) -> String? {
        guard object["kind"]?.string == NamespaceObjects.Kind.secret.rawValue else { return nil }
        switch object["type"]?.string {
        case "kubernetes.io/service-account-token" where !options.includeServiceAccountTokens:
            return "a ServiceAccount token, made by the cluster for its account; --include-service-account-tokens restores it"
        case "helm.sh/release.v1" where !options.includeHelmReleases:
            return "a Helm release record; --include-helm-releases restores it"
        default:
            return nil
        }
    }

    private static func resource(of object: JSONValue) -> ResourceType {
        object["kind"]?.string == NamespaceObjects.Kind.secret.rawValue ? .secrets : .configMaps
    }

    private func plan(_ object: JSONValue, namespace: String, overwrite: Bool) async -> Item {
        let kind = object["kind"]?.string ?? ""
        let name = object[path: "metadata.name"]?.string ?? ""
        guard let client = options.client else {
            return Item(kind: kind, name: name, action: .restore, note: "no Kubernetes API to compare with", failed: false)
        }
        do {
            _ = try await client.get(Self.resource(of: object), namespace: namespace, name: name, as: JSONValue.self)
        } catch where error.isNotFound {
            return Item(kind: kind, name: name, action: .create, note: nil, failed: false)
        } catch {
            return Item(kind: kind, name: name, action: .restore, note: "cannot look it up: \(error.message)", failed: false)
        }
        return overwrite
            ? Item(kind: kind, name: name, action: .replace, note: nil, failed: false)
            : Item(kind: kind, name: name, action: .keep, note: "exists; --overwrite replaces it", failed: false)
    }

    private func apply(_ object: JSONValue, namespace: String, overwrite: Bool, client: KubeClient) async -> Item {
        let kind = object["kind"]?.string ?? ""
        let name = object[path: "metadata.name"]?.string ?? ""
        let resource = Self.resource(of: object)
        do {
            _ = try await client.create(resource, namespace: namespace, object, as: Acknowledgement.self)
            return Item(kind: kind, name: name, action: .create, note: nil, failed: false)
        } catch where error.isAlreadyExists {
            guard overwrite else { return Item(kind: kind, name: name, action: .keep, note: "exists; --overwrite replaces it", failed: false) }
        } catch {
            return Item(kind: kind, name: name, action: .create, note: error.message, failed: true)
        }
        // Replaced whole, at the version just read: a concurrent change makes this fail
        // rather than be overwritten unseen.
        do {
            let current = try await client.get(resource, namespace: namespace, name: name, as: JSONValue.self)
            var fields = object.object ?? [:]
            var metadata = fields["metadata"]?.object ?? [:]
            metadata["resourceVersion"] = current[path: "metadata.resourceVersion"]
            fields["metadata"] = .object(metadata)
            _ = try await client.update(resource, namespace: namespace, name: name, JSONValue.object(fields))
            return Item(kind: kind, name: name, action: .replace, note: nil, failed: false)
        } catch {
            return Item(kind: kind, name: name, action: .replace, note: error.message, failed: true)
        }
    }
}
