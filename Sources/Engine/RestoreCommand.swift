public import BackstopAPI
internal import Foundation
internal import Logging
public import Postgres
#if canImport(Glibc)
internal import Glibc
#endif

/// `backstop restore`: checks the backup before touching anything, creates the target
/// database, streams the checked dump into `pg_restore --single-transaction --exit-on-error`,
/// then compares row counts with the manifest. On any failure it drops the database it
/// created; it never touches the source.
public struct RestoreCommand: Sendable {
    public struct Options: Sendable {
        public var target: ConnectionSettings
        public var encryption: EncryptionSource
        /// Restore into an existing, non-empty database, dropping its objects first.
        public var clean: Bool
        /// Confirms `clean`.
        public var confirmed: Bool
        /// pg_restore --no-owner: objects belong to the restoring user (roles are not in a dump).
        public var noOwner: Bool

        public init(target: ConnectionSettings, encryption: EncryptionSource, clean: Bool, confirmed: Bool, noOwner: Bool) {
            self.target = target
            self.encryption = encryption
            self.clean = clean
            self.confirmed = confirmed
            self.noOwner = noOwner
        }
    }

    public struct Result: Sendable {
        public let backupID: BackupID
        public let database: String
        public let createdDatabase: Bool
        public let durationSeconds: Double
        /// Tables whose restored row count differs from the manifest: "schema.table: 10 in backup, 9 restored".
        public let rowCountDifferences: [String]
        public let tablesCompared: Int
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
        if options.clean && !options.confirmed {
            throw EngineError(.invalidOption, "--clean drops the objects of \(database) before restoring; add --yes to confirm")
        }
        let catalog = BackupCatalog(context: context)
        let id = try await catalog.resolve(reference)
        let manifest = try await catalog.load(id).manifest
        let key = try options.encryption.key(for: manifest)
        let stream = PlaintextStream(storage: context.storage, location: context.location, manifest: manifest, key: key)
        try await stream.checkSizes()
        let tools: PostgresTools
        do { tools = try await PostgresTools.locate(binDirectory: context.postgresBinDirectory) }
        catch { throw EngineError.wrapping(error) }

        let created = try await prepareTarget(database)
        do throws(EngineError) {
            try await restore(stream, tools: tools, database: database)
            let differences = try await compareRowCounts(manifest)
            let result = Result(backupID: id, database: database, createdDatabase: created,
                                durationSeconds: max(0, context.now() - started),
                                rowCountDifferences: differences, tablesCompared: manifest.tables.count)
            if differences.isEmpty {
                context.logger.info("restored \(id) into \(database): \(manifest.tables.count) tables, row counts match the backup")
            } else {
                context.logger.warning("restored \(id) into \(database), but row counts differ: \(differences.joined(separator: "; "))")
            }
            return result
        } catch {
            if created { await dropCreatedDatabase(database) }
            throw error
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
            if occupied && !options.clean {
                throw EngineError(.invalidOption, "database \(database) already holds tables or other objects; restore into a new database name, or pass --clean --yes to replace its contents")
            }
            return false
        } catch {
            throw EngineError.wrapping(error)
        }
    }

    private func restore(_ stream: PlaintextStream, tools: PostgresTools, database: String) async throws(EngineError) {
        var arguments = ["--single-transaction", "--exit-on-error", "--no-password",
                         "--dbname=\(options.target.connectionString)"]
        if options.noOwner { arguments.append("--no-owner") }
        if options.clean { arguments += ["--clean", "--if-exists"] }
        let restorer: ChildProcess
        do {
            restorer = try ChildProcess(executable: tools.pgRestore, arguments: arguments,
                                        environment: options.target.childEnvironment,
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

    private func compareRowCounts(_ manifest: BackupManifest) async throws(EngineError) -> [String] {
        do {
            let restored = try await PostgresConnection.with(options.target) { try await $0.tableRowCounts() }
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
