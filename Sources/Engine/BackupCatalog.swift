public import BackstopAPI
internal import Foundation
internal import Logging
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

    /// A backup whose `manifest.json` exists but cannot be read or decoded. It is one damaged
    /// backup, never a reason to stop: listings show it, prune leaves it alone, the chain
    /// names it and checks the rest.
    public struct DamagedEntry: Sendable, Equatable {
        public let id: BackupID
        /// The hash of the stored bytes, when they could be read at all.
        public let manifestSHA256: String?
        public let problem: String
    }

    /// Every committed backup of the environment, oldest first, readable or not.
    public struct Contents: Sendable {
        public var entries: [Entry]
        public var damaged: [DamagedEntry]
    }

    /// Ids that have a manifest, oldest first. A backup without one never completed.
    public func committedIDs() async throws(EngineError) -> [BackupID] {
        committedIDs(in: try await listBackups())
    }

    private func listBackups() async throws(EngineError) -> [ObjectInfo] {
        do { return try await context.storage.list(prefix: context.location.backupsPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list \(context.storage.displayName)") }
    }

    private func committedIDs(in objects: [ObjectInfo]) -> [BackupID] {
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
        do { id = try BackupID(reference) } catch { throw EngineError(.invalidOption, error.description, underlying: error) }
        guard ids.contains(id) else {
            throw EngineError(.notFound, "no backup \(reference) in \(context.location.environmentPrefix); `backstop list` shows the ones there")
        }
        return id
    }

    public func load(_ id: BackupID) async throws(EngineError) -> Entry {
        switch await read(id) {
        case .readable(let entry): return entry
        case .damaged(let damage): throw EngineError(.integrity, "backup \(id) is damaged: \(damage.problem); restore from another backup (`backstop list` shows them)")
        case .gone: throw EngineError(.notFound, "backup \(id) was deleted while it was read; `backstop list` shows the ones there")
        }
    }

    private enum ReadOutcome {
        case readable(Entry)
        case damaged(DamagedEntry)
        /// Deleted between the listing and the read (a prune).
        case gone
    }

    private func read(_ id: BackupID) async -> ReadOutcome {
        let key = context.location.manifestKey(id)
        let bytes: [UInt8]
        do { bytes = try await context.storage.get(key) } catch {
            if error.kind == .notFound { return .gone }
            return .damaged(DamagedEntry(id: id, manifestSHA256: nil, problem: "\(BackupManifest.fileName) cannot be read: \(error.message)"))
        }
        let hash = SHA256Hasher.hash(bytes).hexString
        let manifest: BackupManifest
        do { manifest = try BackupManifest.decode(Data(bytes)) } catch {
            return .damaged(DamagedEntry(id: id, manifestSHA256: hash, problem: "\(BackupManifest.fileName): \(error.field == BackupManifest.fileName ? "" : error.field + ": ")\(error.problem)"))
        }
        guard manifest.id == id else {
            return .damaged(DamagedEntry(id: id, manifestSHA256: hash, problem: "\(BackupManifest.fileName) names backup \(manifest.id): it was copied from another backup"))
        }
        return .readable(Entry(manifest: manifest, manifestSHA256: hash, verification: await verification(of: id)))
    }

    /// Every committed backup, oldest first: readable ones with the storage class of their
    /// data, and damaged ones with what is wrong.
    public func contents() async throws(EngineError) -> Contents {
        let objects = try await listBackups()
        let classes = Dictionary(objects.map { ($0.key, $0.storageClass) }, uniquingKeysWith: { first, _ in first })
        var contents = Contents(entries: [], damaged: [])
        for id in committedIDs(in: objects) {
            switch await read(id) {
            case .readable(var entry):
                entry.storageClass = entry.manifest.objects.first.flatMap { classes[context.location.objectKey(id, name: $0.name)] ?? nil }
                contents.entries.append(entry)
            case .damaged(let damage):
                contents.damaged.append(damage)
            case .gone:
                continue
            }
        }
        return contents
    }

    /// The readable committed backups, oldest first (`contents()` also has the damaged ones).
    public func entries() async throws(EngineError) -> [Entry] {
        try await contents().entries
    }

    /// The id and stored hash of the newest manifest whose bytes can be read, for the chain of
    /// a new backup. A manifest that cannot be read at all (permissions) is passed over with a
    /// warning, so one damaged backup does not stop every later one; `verify --chain` names it
    /// and links its successor past it. Any other failure (the storage is unreachable) fails.
    func newestManifestHash(among committed: [BackupID]) async throws(EngineError) -> (id: BackupID, sha256: String)? {
        for id in committed.reversed() {
            do {
                return (id, SHA256Hasher.hash(try await context.storage.get(context.location.manifestKey(id))).hexString)
            } catch where error.kind == .notFound {
                continue  // pruned since the listing
            } catch where error.kind == .permissionDenied {
                context.logger.warning("the manifest of \(id) cannot be read (\(error.message)); the new backup is chained past it")
            } catch {
                throw EngineError.wrapping(error, context: "cannot read the previous manifest \(id)")
            }
        }
        return nil
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

    /// The holds (`holds/<id>.json`), whatever the state of their backups. A hold file that
    /// cannot be decoded still holds its backup; its reason then says so.
    public func holds() async throws(EngineError) -> [BackupID: BackupHold] {
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.holdsPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list the holds in \(context.storage.displayName)") }
        var holds: [BackupID: BackupHold] = [:]
        for object in objects where object.key.hasSuffix(".json") {
            guard let id = try? BackupID(String(object.key.dropFirst(context.location.holdsPrefix.count).dropLast(".json".count))) else { continue }
            let hold = (try? await context.storage.get(object.key)).flatMap { try? JSONDecoder().decode(BackupHold.self, from: Data($0)) }
            holds[id] = hold ?? BackupHold(backupID: id, heldAt: UTCTimestamp(secondsSince1970: 0), reason: "(the hold file cannot be read)")
        }
        return holds
    }

    public enum HoldOutcome: Sendable, Equatable {
        case held(BackupHold)
        /// It was on hold already, for the same reason (or none was given): nothing changed.
        case alreadyHeld(BackupHold)
    }

    /// Puts a committed backup on hold: retention keeps it until it is released. A backup
    /// already on hold keeps its first hold; asking again with another reason is refused, so a
    /// reason is never lost silently.
    public func hold(_ reference: String, reason: String?) async throws(EngineError) -> HoldOutcome {
        let id = try await resolve(reference)
        if let existing = try await holds()[id] { return try keep(existing, against: reason) }
        let hold = BackupHold(backupID: id, heldAt: context.timestamp, reason: reason)
        let bytes: [UInt8]
        do { bytes = [UInt8](try Self.encoder.encode(hold)) }
        catch { throw EngineError(.storage, "cannot encode the hold of \(id): \(error)") }
        // Created only if absent, so of two holds at once one wins and the other is compared with it.
        let created: Bool
        do { created = try await context.storage.putIfAbsent(context.location.holdKey(id), bytes: bytes) }
        catch { throw EngineError.wrapping(error, context: "cannot put \(id) on hold") }
        if created { return .held(hold) }
        guard let existing = try await holds()[id] else {
            throw EngineError(.storage, "the hold of \(id) changed while it was written; try again")
        }
        return try keep(existing, against: reason)
    }

    /// An existing hold stays as it is: asking again for no reason or the same one changes
    /// nothing; another reason is refused rather than written over the first.
    private func keep(_ existing: BackupHold, against reason: String?) throws(EngineError) -> HoldOutcome {
        guard reason == nil || reason == existing.reason else {
            throw EngineError(.conflict, "\(existing.backupID) is already on hold since \(existing.heldAt)\(existing.reason.map { " (\"\($0)\")" } ?? ""); release it first (`backstop release \(existing.backupID)`) to hold it for another reason")
        }
        return .alreadyHeld(existing)
    }

    /// Releases a hold (`latest` is the newest backup); releasing a backup that is not held is
    /// an error, so a typo shows.
    public func release(_ reference: String) async throws(EngineError) -> BackupID {
        let id: BackupID
        if reference == "latest" {
            id = try await resolve(reference)
        } else {
            do { id = try BackupID(reference) } catch { throw EngineError(.invalidOption, error.description, underlying: error) }
        }
        guard try await holds()[id] != nil else {
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
            /// Its own manifest cannot be read or decoded, so its link cannot be checked.
            case damaged(String)
        }
        public let id: BackupID
        public let status: Status
    }

    /// Follows `previousManifestSHA256` from the oldest backup to the newest. A predecessor
    /// deleted by prune is fine (the prune record names its hash); a damaged manifest is named
    /// and the rest is still checked; any other gap or change is reported as broken.
    public func chain() async throws(EngineError) -> [ChainLink] {
        let contents = try await contents()
        let pruned = try await prunedManifests()
        enum Item {
            case readable(Entry)
            case damaged(DamagedEntry)
            var id: BackupID {
                switch self {
                case .readable(let entry): entry.manifest.id
                case .damaged(let damage): damage.id
                }
            }
            var storedHash: String? {
                switch self {
                case .readable(let entry): entry.manifestSHA256
                case .damaged(let damage): damage.manifestSHA256
                }
            }
        }
        let items = (contents.entries.map(Item.readable) + contents.damaged.map(Item.damaged)).sorted { $0.id < $1.id }
        var links: [ChainLink] = []
        for (index, item) in items.enumerated() {
            guard case .readable(let entry) = item else {
                if case .damaged(let damage) = item { links.append(ChainLink(id: damage.id, status: .damaged(damage.problem))) }
                continue
            }
            let named = entry.manifest.previousManifestSHA256
            // A manifest whose bytes cannot be read is passed over by the backup after it.
            let previous = items[..<index].last { $0.storedHash != nil }
            let status: ChainLink.Status
            if let previous, named == previous.storedHash {
                status = .linked
            } else if let named, let prune = pruned[named] {
                status = .predecessorPruned(by: prune)
            } else if named == nil {
                status = index == 0 ? .first : .broken("names no predecessor, but \(items[index - 1].id) precedes it")
            } else if let previous {
                status = .broken("names a predecessor manifest that is not \(previous.id)'s and no prune record deleted: \(previous.id)'s manifest was altered, or a backup between them was removed outside retention")
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
            catch let error as StorageError where error.kind == .notFound { continue }
            catch let error as StorageError { throw EngineError.wrapping(error, context: "cannot read the prune record \(object.key)") }
            catch {
                // A damaged record only weakens what the chain can explain; the links it would
                // have explained show as broken.
                context.logger.warning("the prune record \(object.key) cannot be read (\(EngineError.describeDecoding(error, document: object.key))); gaps it explained show as broken")
                continue
            }
            for deleted in record.deleted {
                pruned[deleted.manifestSHA256] = "prune of \(record.prunedAt) (\(deleted.backupID))"
            }
        }
        return pruned
    }

    /// The drill records, oldest first (their keys begin with the time). A record that cannot
    /// be read is skipped with a warning: it proves nothing either way.
    public func drills() async throws(EngineError) -> [DrillRecord] {
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.drillsPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list the drill records") }
        var records: [DrillRecord] = []
        for object in objects.sorted(by: { $0.key < $1.key }) where object.key.hasSuffix(".json") {
            do { records.append(try JSONDecoder().decode(DrillRecord.self, from: Data(try await context.storage.get(object.key)))) }
            catch let error as StorageError where error.kind == .notFound { continue }
            catch let error as StorageError { throw EngineError.wrapping(error, context: "cannot read the drill record \(object.key)") }
            catch { context.logger.warning("the drill record \(object.key) cannot be read (\(EngineError.describeDecoding(error, document: object.key))); skipped") }
        }
        return records
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        return encoder
    }()
}
