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

    /// Every committed backup, oldest first.
    public func entries() async throws(EngineError) -> [Entry] {
        var entries: [Entry] = []
        for id in try await committedIDs() {
            entries.append(try await load(id))
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
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        let data: Data
        do { data = try encoder.encode(verification) }
        catch { throw EngineError(.storage, "cannot encode verified.json: \(error)") }
        do { try await context.storage.put(context.location.verificationKey(verification.backupID), bytes: [UInt8](data)) }
        catch { throw EngineError.wrapping(error, context: "cannot write verified.json of \(verification.backupID)") }
    }
}
