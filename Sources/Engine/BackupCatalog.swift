public import BackstopAPI
internal import Foundation
internal import Pipeline
internal import Storage

/// The backups of one environment, read from storage: what `list` shows and how
/// `latest` and the hash chain are found. Only the environment's own prefix is listed.
public struct BackupCatalog: Sendable {
    let context: WorkerContext

    public init(context: WorkerContext) {
        self.context = context
    }

    /// One committed backup: its manifest, the manifest's stored hash, and its latest verification.
    public struct Entry: Sendable {
        public let manifest: BackupManifest
        public let manifestSHA256: String
        public let verification: VerificationRecord?
        /// The storage class of the data when it is not STANDARD (S3 tiers); `nil` otherwise.
        public var storageClass: String? = nil
    }

    /// Ids that have a manifest, oldest first. A backup without one never completed.
    public func committedIDs() async throws(EngineError) -> [BackupID] {
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.backupsPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list \(context.storage.displayName)") }
        let suffix = "/" + BackupManifest.fileName
        return objects.compactMap { object -> BackupID? in
            guard object.key.hasSuffix(suffix) else { return nil }
            let folder = object.key.dropFirst(context.location.backupsPrefix.count).dropLast(suffix.count)
            return try? BackupID(String(folder))
        }.sorted()
    }

    /// `latest` or an id, resolved to a committed backup.
    public func resolve(_ reference: String) async throws(EngineError) -> BackupID {
        let ids = try await committedIDs()
        if reference == "latest" {
            guard let newest = ids.last else {
                throw EngineError(.notFound, "no backups in \(context.storage.displayName)/\(context.location.environmentPrefix); run `backstop backup` first, or check --namespace, --policy and --environment")
            }
            return newest
        }
        let id: BackupID
        do { id = try BackupID(reference) } catch { throw EngineError.wrapping(error) }
        guard ids.contains(id) else {
            throw EngineError(.notFound, "no backup \(reference) in \(context.location.environmentPrefix); `backstop list` shows the ones there")
        }
        return id
    }

    public func load(_ id: BackupID) async throws(EngineError) -> Entry {
        let key = context.location.manifestKey(id)
        let bytes: [UInt8]
        do { bytes = try await context.storage.get(key) }
        catch { throw EngineError.wrapping(error, context: "cannot read the manifest of \(id)") }
        let manifest: BackupManifest
        do { manifest = try BackupManifest.decode(Data(bytes)) }
        catch { throw EngineError(.integrity, "manifest of \(id): \(error.description)", underlying: error) }
        guard manifest.id == id else {
            throw EngineError(.integrity, "the manifest in \(key) names backup \(manifest.id): it was copied from another backup")
        }
        return Entry(manifest: manifest, manifestSHA256: SHA256Hasher.hash(bytes).hexString,
                     verification: await verification(of: id))
    }

    /// Every committed backup, oldest first, with the storage class of its data.
    public func entries() async throws(EngineError) -> [Entry] {
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.backupsPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list \(context.storage.displayName)") }
        let classes = Dictionary(objects.map { ($0.key, $0.storageClass) }, uniquingKeysWith: { first, _ in first })
        var entries: [Entry] = []
        for id in try await committedIDs() {
            var entry = try await load(id)
            entry.storageClass = entry.manifest.objects.first.flatMap { classes[context.location.objectKey(id, name: $0.name)] ?? nil }
            entries.append(entry)
        }
        return entries
    }

    /// The stored hash of the newest committed manifest, for the chain.
    func manifestHash(of previous: BackupID?) async throws(EngineError) -> String? {
        guard let previous else { return nil }
        do {
            return SHA256Hasher.hash(try await context.storage.get(context.location.manifestKey(previous))).hexString
        } catch {
            throw EngineError.wrapping(error, context: "cannot read the previous manifest \(previous)")
        }
    }

    /// The latest verification; `nil` if there is none or it is unreadable.
    func verification(of id: BackupID) async -> VerificationRecord? {
        guard let bytes = try? await context.storage.get(context.location.verificationKey(id)) else { return nil }
        return try? JSONDecoder().decode(VerificationRecord.self, from: Data(bytes))
    }

    func record(_ verification: VerificationRecord) async throws(EngineError) {
        let data: Data
        do { data = try Self.encoder.encode(verification) }
        catch { throw EngineError(.storage, "cannot encode verified.json: \(error)") }
        do { try await context.storage.put(context.location.verificationKey(verification.backupID), bytes: [UInt8](data)) }
        catch { throw EngineError.wrapping(error, context: "cannot write verified.json of \(verification.backupID)") }
    }

    // MARK: Holds

    /// Ids on hold (`holds/<id>.json`), whatever the state of their backups.
    public func holds() async throws(EngineError) -> Set<BackupID> {
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.holdsPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list the holds in \(context.storage.displayName)") }
        return Set(objects.compactMap { object in
            guard object.key.hasSuffix(".json") else { return nil }
            return try? BackupID(String(object.key.dropFirst(context.location.holdsPrefix.count).dropLast(".json".count)))
        })
    }

    /// Puts a committed backup on hold: retention keeps it until it is released.
    public func hold(_ reference: String, reason: String?) async throws(EngineError) -> BackupID {
        let id = try await resolve(reference)
        let hold = BackupHold(backupID: id, heldAt: context.timestamp, reason: reason)
        do {
            try await context.storage.put(context.location.holdKey(id), bytes: [UInt8](try Self.encoder.encode(hold)))
        } catch let error as StorageError {
            throw EngineError.wrapping(error, context: "cannot put \(id) on hold")
        } catch {
            throw EngineError(.storage, "cannot encode the hold of \(id): \(error)")
        }
        return id
    }

    /// Releases a hold; releasing a backup that is not held is an error, so a typo shows.
    public func release(_ reference: String) async throws(EngineError) -> BackupID {
        let id: BackupID
        do { id = try BackupID(reference) } catch { throw EngineError.wrapping(error) }
        guard try await holds().contains(id) else {
            throw EngineError(.notFound, "\(id) is not on hold; `backstop list` shows the held backups")
        }
        do { try await context.storage.delete([context.location.holdKey(id)]) }
        catch { throw EngineError.wrapping(error, context: "cannot release \(id)") }
        return id
    }

    // MARK: The hash chain

    public struct ChainLink: Sendable, Equatable {
        public enum Status: Sendable, Equatable {
            /// The oldest backup, which names no predecessor.
            case first
            /// Its predecessor's stored manifest has the hash it names.
            case linked
            /// It names a manifest that a recorded prune deleted.
            case predecessorPruned(by: String)
            /// It names a manifest that is neither here nor in any prune record.
            case broken(String)
        }
        public let id: BackupID
        public let status: Status
    }

    /// Follows `previousManifestSHA256` from the oldest backup to the newest. A predecessor
    /// deleted by prune is fine (the prune record names its hash); any other gap or change is
    /// reported as broken.
    public func chain() async throws(EngineError) -> [ChainLink] {
        let entries = try await entries()
        let pruned = try await prunedManifests()
        var links: [ChainLink] = []
        for (index, entry) in entries.enumerated() {
            let named = entry.manifest.previousManifestSHA256
            let previous = index > 0 ? entries[index - 1] : nil
            let status: ChainLink.Status
            if let previous, named == previous.manifestSHA256 {
                status = .linked
            } else if let named, let prune = pruned[named] {
                status = .predecessorPruned(by: prune)
            } else if named == nil {
                status = previous == nil ? .first
                    : .broken("names no predecessor, but \(previous!.manifest.id) precedes it")
            } else if let previous {
                status = .broken("names a predecessor manifest that is not \(previous.manifest.id)'s and no prune record deleted: \(previous.manifest.id)'s manifest was altered, or a backup between them was removed outside retention")
            } else {
                status = .broken("names a predecessor manifest that is missing and no prune record deleted: the oldest backups were removed outside retention")
            }
            links.append(ChainLink(id: entry.manifest.id, status: status))
        }
        return links
    }

    /// Hashes of manifests deleted by prune, with the prune that did it.
    func prunedManifests() async throws(EngineError) -> [String: String] {
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.prunesPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list the prune records") }
        var pruned: [String: String] = [:]
        for object in objects where object.key.hasSuffix(".json") {
            let record: PruneRecord
            do { record = try JSONDecoder().decode(PruneRecord.self, from: Data(try await context.storage.get(object.key))) }
            catch { throw EngineError(.integrity, "prune record \(object.key) cannot be read: \(error)") }
            for deleted in record.deleted {
                pruned[deleted.manifestSHA256] = "prune of \(record.prunedAt) (\(deleted.backupID))"
            }
        }
        return pruned
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }()
}
