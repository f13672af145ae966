public import BackstopAPI
internal import Foundation
internal import Logging
public import Postgres
internal import Storage

/// `backstop doctor`: an audit of one environment's backups, as the seeds' `/doctor` — each
/// check a line that passed, failed (with a hint saying what to do) or is only information.
/// It never changes anything but a probe object it writes and removes at once.
public struct DoctorCommand: Sendable {
    public struct Options: Sendable {
        /// The database backed up, to check it is reachable and dumpable; nil skips that check.
        public var database: ConnectionSettings?
        public var encryption: EncryptionSource
        public var rpo: FixedDuration?
        public var rto: FixedDuration?
        /// A drill older than this is stale.
        public var drillMaxAge: FixedDuration

        public init(database: ConnectionSettings?, encryption: EncryptionSource, rpo: FixedDuration?, rto: FixedDuration?,
                    drillMaxAge: FixedDuration = FixedDuration(seconds: 7 * 86_400)) {
            self.database = database
            self.encryption = encryption
            self.rpo = rpo
            self.rto = rto
            self.drillMaxAge = drillMaxAge
        }
    }

    public struct Check: Sendable, Equatable, Codable {
        public enum Status: String, Sendable, Codable {
            case ok
            case fail
            case info
        }
        public let name: String
        public let status: Status
        public let message: String
        /// What to do about it (a failure), or why it matters (information).
        public let hint: String?

        public init(_ name: String, _ status: Status, _ message: String, hint: String? = nil) {
            self.name = name
            self.status = status
            self.message = message
            self.hint = hint
        }
    }

    let context: WorkerContext
    let options: Options

    public init(context: WorkerContext, options: Options) {
        self.context = context
        self.options = options
    }

    var place: String { "\(context.storage.displayName)/\(context.location.environmentPrefix)" }

    public func run() async -> [Check] {
        var checks = [await storage()]
        if checks[0].status == .ok {
            checks += await backups()
        }
        checks.append(await database())
        return checks
    }

    // MARK: Storage

    /// Reachable and writable: a probe object written, read back and removed. A refusal names
    /// the credentials; other failures the location.
    func storage() async -> Check {
        let key = context.location.environmentPrefix + ".doctor-probe-" + String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let probe = Array("backstop doctor probe\n".utf8)
        do {
            try await context.storage.put(key, bytes: probe)
            let read = try await context.storage.get(key)
            try await context.storage.delete([key])
            guard read == probe else {
                return Check("storage", .fail, "Storage \(context.storage.displayName) returned other bytes than were written",
                             hint: "something between Backstop and the storage rewrites objects: check proxies and the endpoint")
            }
            return Check("storage", .ok, "Storage reachable and writable: \(place)")
        } catch {
            let hint: String = switch error.kind {
            case .permissionDenied:
                "the credentials are refused or lack rights: check the S3 Secret (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) and the bucket policy (PutObject, GetObject, DeleteObject, ListBucket)"
            case .notFound:
                "the bucket or folder does not exist: check --storage (spec.storage)"
            default:
                "check --storage, the endpoint and the network"
            }
            return Check("storage", .fail, "Storage \(context.storage.displayName) is not usable: \(error.message)", hint: hint)
        }
    }

    // MARK: Backups

    func backups() async -> [Check] {
        let catalog = BackupCatalog(context: context)
        let contents: BackupCatalog.Contents
        do { contents = try await catalog.contents() } catch {
            return [Check("backups", .fail, "Cannot list the backups in \(place): \(error.message)", hint: "check the storage's list permission")]
        }
        var checks: [Check] = []
        guard let newest = contents.entries.last else {
            checks.append(Check("rpo", .fail, "No backups in \(place)",
                                hint: "run `backstop backup`, or `kubectl annotate bp \(context.location.policy) backstop.dev/run-now=$(date +%s)`; check --namespace, --policy and --environment"))
            checks.append(await drill(newest: nil))
            checks.append(await leftovers(contents))
            return checks
        }
        checks.append(recency(newest.manifest))
        if let archiving = await archiving(expected: contents.entries.contains { $0.manifest.isPhysical }) { checks.append(archiving) }
        checks.append(verification(newest))
        checks.append(await drill(newest: newest.manifest))
        checks.append(await chain(catalog))
        checks.append(key(newest.manifest))
        if let objects = namespaceObjects(newest.manifest, anyEarlier: contents.entries.contains { $0.manifest.namespaceObjects != nil }) {
            checks.append(objects)
        }
        checks.append(await leftovers(contents))
        return checks
    }

    /// The Secrets and ConfigMaps beside the newest dump, when any backup holds some.
    func namespaceObjects(_ manifest: BackupManifest, anyEarlier: Bool) -> Check? {
        guard let part = manifest.namespaceObjects else {
            return anyEarlier
                ? Check("objects", .info, "The newest backup holds no Secrets or ConfigMaps; earlier ones do",
                        hint: "the policy no longer selects them (objects): restore-objects takes them from an earlier backup")
                : nil
        }
        let counts = part.counts.sorted { $0.key > $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        return Check("objects", .ok, "Secrets and ConfigMaps stored with the newest backup, encrypted: \(counts.isEmpty ? "none matched" : counts)")
    }

    func recency(_ manifest: BackupManifest) -> Check {
        let age = context.now() - Double(manifest.completedAt.secondsSince1970)
        let description = "Newest backup \(manifest.id), \(Self.age(age)) ago"
        guard let rpo = options.rpo else {
            return Check("rpo", .info, description + "; no RPO given", hint: "pass --rpo (or set objectives.rpo) to check it against one")
        }
        guard age <= Double(rpo.seconds) else {
            return Check("rpo", .fail, "\(description): older than the RPO of \(rpo)",
                         hint: "backups are not running or fail: `kubectl get jobs -l backstop.dev/environment=\(context.location.environment)` and `kubectl logs` on the newest; `kubectl describe bp \(context.location.policy)`")
        }
        return Check("rpo", .ok, "\(description) (RPO \(rpo))")
    }

    /// The WAL archive's newest file against the RPO, as seed 000's doctor says "WAL archiving
    /// to s3://… — last archive 5 minutes ago"; with a database, whether archive_command is
    /// failing right now. No line for an environment that neither archives nor has base backups.
    func archiving(expected: Bool) async -> Check? {
        let status: WALArchiveStatus
        do { status = try await WALArchiveStatus.read(context, database: options.database).status } catch {
            return Check("archiving", .fail, "Cannot read the WAL archive: \(error.message)", hint: "check the storage's list and read permissions")
        }
        guard let record = status.newest else {
            guard expected else { return nil }
            return Check("archiving", .fail, "Base backups are kept, but no WAL is archived in \(context.storage.displayName)/\(context.location.walPrefix)",
                         hint: "a base backup cannot be recovered without its WAL: set archive_mode = on and archive_command = 'backstop wal-push %p' with this storage and environment")
        }
        if let state = status.archiver, state.failing {
            return Check("archiving", .fail, "archive_command is failing (last failed: \(state.lastFailedWAL ?? "?"), \(state.failedCount) failures); last archived \(record.fileName)",
                         hint: "the server's log says why; WAL piles up in pg_wal until it succeeds, and point-in-time recovery stops at the last archived file")
        }
        let age = context.now() - Double(record.archivedAt.secondsSince1970)
        let description = "WAL archiving to \(context.storage.displayName)/\(context.location.walPrefix) — last archive \(Self.age(age)) ago (\(record.fileName))"
        if let rpo = options.rpo, age > Double(rpo.seconds) {
            return Check("archiving", .fail, "\(description): older than the RPO of \(rpo)",
                         hint: "check pg_stat_archiver on the server; on a quiet server set archive_timeout (e.g. 5min) so a segment is archived at least that often")
        }
        return Check("archiving", .ok, description)
    }

    func verification(_ entry: BackupCatalog.Entry) -> Check {
        guard let record = entry.verification else {
            return Check("verified", .fail, "Newest backup \(entry.manifest.id) has no verification record",
                         hint: "run `backstop verify \(entry.manifest.id)`; backups verify themselves, so a missing record means the run ended early")
        }
        guard record.succeeded else {
            return Check("verified", .fail, "Newest backup \(entry.manifest.id) failed verification: \(record.failure ?? "no reason recorded")",
                         hint: "do not rely on it: restore from an older backup (`backstop list`), and look at the storage for damage")
        }
        return Check("verified", .ok, "Newest backup verified at \(record.verifiedAt): \(record.checks.joined(separator: ", "))")
    }

    func drill(newest: BackupManifest?) async -> Check {
        let records: [DrillRecord]
        do { records = try await BackupCatalog(context: context).drills() } catch {
            return Check("drill", .fail, "Cannot read the drill records: \(error.message)", hint: "check the storage's list and read permissions")
        }
        guard let last = records.last else {
            return Check("drill", .info, "No restore drill yet: no restore of these backups has been proven",
                         hint: "run `backstop drill latest --scratch postgres://…`, or set drill on the environment to run one on a schedule")
        }
        let age = context.now() - Double(last.completedAt.secondsSince1970)
        guard last.outcome == .succeeded else {
            return Check("drill", .fail, "Last restore drill failed \(Self.age(age)) ago: \(last.message)",
                         hint: "the backup it drilled does not restore as it is: look at the drill's log, then restore from an older backup if needed")
        }
        if age > Double(options.drillMaxAge.seconds) {
            return Check("drill", .fail, "Last restore drill was \(Self.age(age)) ago (\(last.backupID)), longer than \(options.drillMaxAge)",
                         hint: "drills prove restores only while they run: check the drill CronJob, or run `backstop drill latest --scratch …`")
        }
        let seconds = last.restoreSeconds ?? 0
        if let rto = options.rto, seconds > Double(rto.seconds) {
            return Check("drill", .fail, "Last restore drill took \(DrillRecord.seconds(seconds)) s, over the RTO of \(rto)",
                         hint: "a restore would take longer than allowed: faster storage or compute for restores, or a physical backup")
        }
        let objective = options.rto.map { " (RTO \($0))" } ?? "; no RTO given"
        return Check("drill", .ok, "Last restore drill \(Self.age(age)) ago: \(last.backupID) restored in \(DrillRecord.seconds(seconds)) s\(objective)")
    }

    func chain(_ catalog: BackupCatalog) async -> Check {
        let links: [BackupCatalog.ChainLink]
        do { links = try await catalog.chain() } catch {
            return Check("chain", .fail, "Cannot follow the hash chain: \(error.message)", hint: "check the storage's read permission")
        }
        let problems = links.compactMap { link -> String? in
            switch link.status {
            case .broken(let why), .damaged(let why): "\(link.id): \(why)"
            case .first, .linked, .predecessorPruned: nil
            }
        }
        guard problems.isEmpty else {
            return Check("chain", .fail, "Hash chain broken: \(problems.joined(separator: "; "))",
                         hint: "a manifest was deleted or altered outside Backstop: `backstop verify --chain` names each; restore from a backup the chain vouches for")
        }
        return Check("chain", .ok, "Hash chain intact over \(links.count) backup\(links.count == 1 ? "" : "s")")
    }

    func key(_ manifest: BackupManifest) -> Check {
        guard let encryption = manifest.encryption else {
            return Check("key", .info, "Backups are not encrypted", hint: "anyone who can read the storage can read the data: set spec.encryption (or --encryption-key-file)")
        }
        if case .none = options.encryption {
            return Check("key", .info, "Backups are encrypted (\(encryption.keyFingerprint.prefix(20))…); no key given, so it is not checked",
                         hint: "pass --encryption-key-file or --passphrase-file to prove the key you would restore with")
        }
        do {
            _ = try options.encryption.key(for: manifest)
            return Check("key", .ok, "The encryption key matches the backups' fingerprint")
        } catch {
            return Check("key", .fail, "The encryption key does not open the newest backup: \(error.message)",
                         hint: "a restore with this key would fail: find the key the policy's Secret held when the backup was taken")
        }
    }

    /// Folders without a manifest and unfinished uploads that no running backup owns, of any
    /// age (prune removes them once idle past its grace).
    func leftovers(_ contents: BackupCatalog.Contents) async -> Check {
        let found: Leftovers
        do {
            let objects = try await context.storage.list(prefix: context.location.backupsPrefix)
            found = try await Leftovers.find(context, objects: objects, contents: contents, grace: FixedDuration(seconds: 0), now: context.now())
        } catch {
            return Check("leftovers", .fail, "Cannot look for leftovers: \(EngineError.wrapping(error).message)", hint: "check the storage's list permission")
        }
        let named = found.orphans.map { "folder \($0) (no manifest)" }
            + found.unfinishedUploads.map { "unfinished upload of \($0.key.dropFirst(context.location.environmentPrefix.count))" }
        guard named.isEmpty else {
            return Check("leftovers", .fail, "\(named.count) leftover\(named.count == 1 ? "" : "s") of killed runs: \(named.prefix(3).joined(separator: "; "))",
                         hint: "`backstop prune` removes them once idle past --orphan-grace (24h); they cost storage, not safety")
        }
        return Check("leftovers", .ok, "No leftovers or unfinished uploads")
    }

    // MARK: PostgreSQL

    func database() async -> Check {
        guard let settings = options.database else {
            return Check("postgres", .info, "PostgreSQL not checked", hint: "pass --database (or -f with the policy) to check it is reachable and pg_dump can dump it")
        }
        do {
            let version = try await PostgresConnection.with(settings) { try await $0.serverVersion() }
            let tools = try await PostgresTools.locate(binDirectory: context.postgresBinDirectory)
            do {
                try tools.checkCanDump(serverVersionNumber: version.number, serverVersion: version.text)
            } catch {
                return Check("postgres", .fail, "PostgreSQL \(version.text) is newer than pg_dump \(tools.version)", hint: error.message)
            }
            return Check("postgres", .ok, "PostgreSQL \(version.text) reachable at \(settings.description); pg_dump \(tools.version) can dump it")
        } catch let error as PostgresError {
            return Check("postgres", .fail, "PostgreSQL at \(settings.description) is not reachable: \(error.message)",
                         hint: "check the host, port and database name, and the credentials (PGUSER, PGPASSWORD or --password-file; the policy's credentialsSecret)")
        } catch {
            return Check("postgres", .fail, "PostgreSQL at \(settings.description) is not reachable: \(error)", hint: "check --database")
        }
    }

    /// `5m`, `3h`, `2d`.
    static func age(_ seconds: Double) -> String {
        let seconds = max(0, Int(seconds))
        return switch seconds {
        case ..<120: "\(seconds)s"
        case ..<7_200: "\(seconds / 60)m"
        case ..<172_800: "\(seconds / 3_600)h"
        default: "\(seconds / 86_400)d"
        }
    }
}
