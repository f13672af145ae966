public import BackstopAPI
internal import Foundation
internal import KubeObjects
internal import Logging
internal import Pipeline
public import Postgres
#if canImport(Glibc)
internal import Glibc
#endif

/// `backstop restore`: checks the backup before touching anything, holds it against prunes
/// while reading it (`BackupReadLease`), streams the checked dump into
/// `pg_restore --single-transaction --exit-on-error`, then compares row counts with the
/// manifest. On any failure it drops the database it created; it never touches the source.
///
/// `replace` restores into a temporary database, checks it, and only then swaps it in for
/// the target by renames (the old database renamed aside, the new one into place, the old one
/// dropped last): a failed restore leaves the target as it was. Sessions connected to the old
/// database are ended at the swap, not before.
public struct RestoreCommand: Sendable {
    public enum Mode: Sendable, Equatable {
        /// Into a database this restore creates, or an existing empty one.
        case newDatabase
        /// Into an existing database, dropping its objects first (`pg_restore --clean`), in
        /// one transaction; `confirmed` is the user's yes.
        case clean(confirmed: Bool)
        /// Into a temporary database, swapped in for the target once checked; `confirm` must
        /// equal the target database's name.
        case replace(confirm: String?)
    }

    public struct Options: Sendable {
        public var target: ConnectionSettings
        public var encryption: EncryptionSource
        public var mode: Mode
        /// pg_restore --no-owner: objects belong to the restoring user (roles are not in a dump).
        public var noOwner: Bool

        public init(target: ConnectionSettings, encryption: EncryptionSource, mode: Mode = .newDatabase, noOwner: Bool) {
            self.target = target
            self.encryption = encryption
            self.mode = mode
            self.noOwner = noOwner
        }
    }

    public struct Result: Sendable {
        public let backupID: BackupID
        public let database: String
        public let createdDatabase: Bool
        /// `replace` swapped the restored database in for an existing one.
        public let replacedDatabase: Bool
        public let durationSeconds: Double
        /// Tables whose restored row count differs from the manifest: "schema.table: 10 in backup, 9 restored".
        public let rowCountDifferences: [String]
        public let tablesCompared: Int
        /// The backup's stored size and its dump's size, as the manifest records them.
        public let storedBytes: Int64
        public let dumpBytes: Int64
    }

    let context: WorkerContext
    let options: Options

    public init(context: WorkerContext, options: Options) {
        self.context = context
        self.options = options
    }

    static let templateDatabases: Set<String> = ["template0", "template1"]

    public func run(_ reference: String) async throws(EngineError) -> Result {
        let started = context.now()
        guard let database = options.target.value(of: "dbname"), !database.isEmpty else {
            throw EngineError(.invalidOption, "\(options.target.option) must name the database to restore into, like postgres://user@host:5432/orders_restored")
        }
        // Every new database on the server is a copy of template1 (and template0 is its clean
        // spare): a restore into either would reach all of them.
        guard !Self.templateDatabases.contains(database) else {
            throw EngineError(.invalidOption, "\(options.target.option) names \(database), a template every new database is copied from; restore into a database of its own, e.g. orders_restored")
        }
        switch options.mode {
        case .newDatabase: break
        case .clean(let confirmed):
            guard confirmed else { throw EngineError(.invalidOption, "--clean drops the objects of \(database) before restoring; add --yes to confirm") }
        case .replace(let confirm):
            guard confirm == database else {
                throw EngineError(.invalidOption, "--replace swaps a restored copy in for \(database) and drops the old one; confirm with --confirm \(database)")
            }
        }
        let id = try await BackupCatalog(context: context).resolve(reference)
        return try await BackupReadLease(context: context).holding(id) { () throws(EngineError) in
            try await restore(try await load(id), into: database, started: started)
        }
    }

    /// A backup ready to restore: checked against its manifest before anything is touched.
    struct Source: Sendable {
        let id: BackupID
        let manifest: BackupManifest
        let key: EncryptionKey?
        let tools: PostgresTools
    }

    /// The backup's manifest and key (checked against its fingerprint), its objects' sizes
    /// checked, and the tools to restore it with. The caller holds a read lease on it.
    func load(_ id: BackupID) async throws(EngineError) -> Source {
        let manifest = try await BackupCatalog(context: context).load(id).manifest
        guard !manifest.isPhysical else {
            throw EngineError(.invalidOption, "\(id) is a physical base backup of the whole cluster, not a database dump: recover it with `backstop restore --physical \(id) --data-dir DIR` (optionally with a --target-*), or pick a logical backup from `backstop list`")
        }
        let key = try options.encryption.key(for: manifest)
        try await PlaintextStream(storage: context.storage, location: context.location, manifest: manifest, key: key).checkSizes()
        do { return Source(id: id, manifest: manifest, key: key, tools: try await PostgresTools.locate(binDirectory: context.postgresBinDirectory)) }
        catch { throw EngineError.wrapping(error) }
    }

    /// Restores a loaded backup into `database` as `options.mode` says.
    func restore(_ source: Source, into database: String, started: Double) async throws(EngineError) -> Result {
        let (id, manifest, tools) = (source.id, source.manifest, source.tools)
        let stream = PlaintextStream(storage: context.storage, location: context.location, manifest: manifest, key: source.key)

        // `replace` restores beside the target; the other modes into it.
        let replacing = if case .replace = options.mode { true } else { false }
        let restoreInto = replacing ? Self.stagingName(for: database) : database
        let created = replacing ? try await createStaging(restoreInto) : try await prepareTarget(database)
        var replaced = false
        do throws(EngineError) {
            let target = options.target.withDatabase(restoreInto)
            try await restore(stream, tools: tools, target: target, clean: options.mode != .newDatabase && !replacing)
            let differences = try await compareRowCounts(manifest, target: target)
            if replacing {
                guard differences.isEmpty else {
                    throw EngineError(.restoreFailed, "the restored copy's row counts differ from the backup (\(differences.joined(separator: "; "))); \(database) was not touched")
                }
                replaced = try await swap(restoreInto, into: database)
            }
            let result = Result(backupID: id, database: database, createdDatabase: created && !replaced, replacedDatabase: replaced,
                                durationSeconds: max(0, context.now() - started), rowCountDifferences: differences,
                                tablesCompared: manifest.tables.count, storedBytes: manifest.storedBytes, dumpBytes: manifest.plaintext.size)
            if differences.isEmpty {
                context.logger.info("restored \(id) into \(database)\(replaced ? " (replacing the old database)" : ""): \(manifest.tables.count) tables, row counts match the backup")
            } else {
                context.logger.warning("restored \(id) into \(database), but row counts differ: \(differences.joined(separator: "; "))")
            }
            return result
        } catch {
            if created { await dropCreatedDatabase(restoreInto) }
            throw error
        }
    }

    /// `<target>_restoring_<hash>`: the temporary database of a replace, within PostgreSQL's
    /// 63-byte names; the same for the same target, so a killed replace's leftover is found.
    static func stagingName(for database: String) -> String {
        derivedName(database, "restoring")
    }

    /// `<target>_replaced_<hash>`: the old database between the two renames of a swap.
    static func asideName(for database: String) -> String {
        derivedName(database, "replaced")
    }

    private static func derivedName(_ database: String, _ role: String) -> String {
        "\(BackupRestore.prefix(database, bytes: 40))_\(role)_\(FNV1a.hex(of: database).prefix(8))"
    }

    /// Creates a replace's temporary database, first dropping one a killed replace left.
    private func createStaging(_ name: String) async throws(EngineError) -> Bool {
        do {
            try await PostgresConnection.with(options.target.withDatabase("postgres")) { server in
                if try await server.databaseExists(name) {
                    context.logger.info("dropping \(name), left by an earlier replace that did not finish")
                    try await server.dropDatabase(name)
                }
                try await server.createDatabase(name, template: "template0")
            }
        } catch {
            throw EngineError.wrapping(error, context: "creating the temporary database \(name)")
        }
        context.logger.info("restoring into the temporary database \(name); the target is swapped only once it checks out")
        return true
    }

    /// Puts the checked copy in the target's place: the old database renamed aside (its
    /// sessions ended first, new ones refused), the copy renamed into place, the old one
    /// dropped last. A failed rename puts the old database back. Returns whether an old
    /// database was replaced (false when there was none: the copy is simply renamed).
    private func swap(_ staging: String, into database: String) async throws(EngineError) -> Bool {
        let aside = Self.asideName(for: database)
        let logger = context.logger
        do {
            return try await PostgresConnection.with(options.target.withDatabase("postgres")) { server in
                guard let owner = try await server.databaseOwner(database) else {
                    try await server.renameDatabase(staging, to: database)
                    return false
                }
                if try await server.databaseExists(aside) {
                    // Perhaps the only copy of the old data, from a swap cut short: never dropped here.
                    throw EngineError(.conflict, "a database \(aside) exists, left by an earlier replace of \(database) that did not finish; look at it, then drop or rename it and run the restore again")
                }
                try await server.setAllowConnections(database, false)
                do {
                    var attempt = 0
                    while true {
                        let ended = try await server.terminateSessions(of: database)
                        if ended > 0 { logger.info("ended \(ended) sessions connected to \(database) for the swap") }
                        do {
                            try await server.renameDatabase(database, to: aside)
                            break
                        } catch let error as PostgresError where error.sqlState == "55006" && attempt < 10 {
                            // A session still closing ("being accessed by other users").
                            attempt += 1
                            try await Task.sleep(for: .milliseconds(200))
                        }
                    }
                } catch {
                    try? await server.setAllowConnections(database, true)
                    throw error
                }
                do {
                    try await server.renameDatabase(staging, to: database)
                } catch {
                    try? await server.renameDatabase(aside, to: database)
                    try? await server.setAllowConnections(database, true)
                    throw error
                }
                if try await server.databaseOwner(database) != owner {
                    do { try await server.setDatabaseOwner(database, to: owner) }
                    catch { logger.warning("\(database) now belongs to the restoring user, not \(owner) as before: \(error); run ALTER DATABASE \(database) OWNER TO \(owner) as a superuser") }
                }
                do {
                    try await server.dropDatabase(aside)
                } catch {
                    logger.warning("replaced \(database), but could not drop the old database, kept as \(aside): \(error); drop it when you no longer need it")
                }
                return true
            }
        } catch let error as EngineError {
            throw error
        } catch {
            throw EngineError.wrapping(error, context: "swapping the restored copy in for \(database) (the old database is still in place)")
        }
    }

    /// Creates the database unless it exists; an existing one must be empty unless --clean --yes.
    /// Returns whether this restore created it.
    private func prepareTarget(_ database: String) async throws(EngineError) -> Bool {
        let maintenance = options.target.withDatabase("postgres")
        let target = options.target
        do {
            let created = try await PostgresConnection.with(maintenance) { server in
                if try await server.databaseExists(database) {
                    return false
                }
                try await server.createDatabase(database, template: "template0")
                return true
            }
            if created {
                context.logger.info("created database \(database)")
                return true
            }
            let occupied = try await PostgresConnection.with(target) { try await $0.hasUserObjects() }
            if occupied && options.mode == .newDatabase {
                throw EngineError(.invalidOption, "database \(database) already holds tables or other objects; restore into a new database name, or pass --replace --confirm \(database) to swap a restored copy in for it")
            }
            return false
        } catch {
            throw EngineError.wrapping(error)
        }
    }

    private func restore(_ stream: PlaintextStream, tools: PostgresTools, target: ConnectionSettings, clean: Bool) async throws(EngineError) {
        var arguments = ["--single-transaction", "--exit-on-error", "--no-password",
                         "--dbname=\(target.connectionString)"]
        if options.noOwner { arguments.append("--no-owner") }
        if clean { arguments += ["--clean", "--if-exists"] }
        let restorer: ChildProcess
        do {
            restorer = try ChildProcess(executable: tools.pgRestore, arguments: arguments,
                                        environment: target.childEnvironment,
                                        standardInput: .pipe, standardOutput: .null)
        } catch { throw EngineError.wrapping(error) }
        let progress = TransferProgress()
        let reporter = Task { [context] in
            await TransferProgress.report(progress, label: "restore \(stream.manifest.id)",
                                          expectedBytes: stream.dumpObject.size,
                                          interval: context.progressInterval, logger: context.logger)
        }
        defer { reporter.cancel() }
        let digest: PlaintextStream.Digest
        do {
            digest = try await withTaskCancellationHandler {
                try await stream.run(into: restorer.standardInput, consumerMayStopEarly: false, progress: progress)
            } onCancel: {
                progress.cancel()
            }
        } catch {
            // Killing pg_restore rolls its single transaction back.
            let outcome = await restorer.killAndWait()
            let wrapped = EngineError.wrapping(error)
            if wrapped.kind == .restoreFailed, !outcome.standardError.isEmpty {
                // pg_restore stopped on an error of its own before reading everything: that error is the news.
                throw EngineError(.restoreFailed, "pg_restore failed: \(Self.lastLines(outcome.standardError)); nothing was committed" + Self.hint(for: outcome.standardError))
            }
            let detail = outcome.standardError.isEmpty ? "" : " (pg_restore said: \(Self.lastLines(outcome.standardError)))"
            throw EngineError(wrapped.kind, wrapped.message + detail, underlying: wrapped.underlying)
        }
        let outcome = await restorer.closeInputAndWait()
        guard outcome.termination.succeeded else {
            throw EngineError(.restoreFailed, "pg_restore failed (\(outcome.termination.description)): \(Self.lastLines(outcome.standardError)); nothing was committed" + Self.hint(for: outcome.standardError))
        }
        try stream.check(digest)
    }

    private func compareRowCounts(_ manifest: BackupManifest, target: ConnectionSettings) async throws(EngineError) -> [String] {
        do {
            let restored = try await PostgresConnection.with(target) { try await $0.tableRowCounts() }
            var counts: [String: Int64] = [:]
            for table in restored { counts["\(table.schema).\(table.name)"] = table.rows }
            return manifest.tables.compactMap { table in
                let actual = counts[table.qualifiedName]
                guard actual != table.rows else { return nil }
                return "\(table.qualifiedName): \(table.rows) in backup, \(actual.map(String.init) ?? "missing") restored"
            }
        } catch {
            throw EngineError.wrapping(error, context: "comparing row counts")
        }
    }

    private func dropCreatedDatabase(_ database: String) async {
        do {
            try await PostgresConnection.with(options.target.withDatabase("postgres")) { try await $0.dropDatabase(database) }
            context.logger.info("dropped database \(database), which this failed restore had created")
        } catch {
            context.logger.error("could not drop database \(database) after the failed restore: \(error); drop it by hand")
        }
    }

    /// What to do about pg_restore's most common refusal: roles are not in a database dump.
    static func hint(for standardError: String) -> String {
        guard let range = standardError.range(of: #"role "[^"]+" does not exist"#, options: .regularExpression) else { return "" }
        let role = standardError[range].split(separator: "\"").dropFirst().first.map(String.init) ?? "?"
        return "; roles are not part of a database dump: create the role \(role) on the target server first, or pass --no-owner so the restored objects belong to the restoring user"
    }

    private static func lastLines(_ text: String) -> String {
        text.split(separator: "\n").suffix(3).joined(separator: " ")
    }
}
