public import BackstopAPI
internal import Foundation
internal import Logging
internal import Pipeline
public import Postgres
internal import Storage

/// `backstop drill`: proves a backup restores. Restores it into a database of its own on a
/// scratch server, compares the restored schema with the schema inside the archive (both
/// printed by this worker's own pg_dump and pg_restore, owners and privileges ignored) and
/// every table's row count with the manifest, drops the database, and records the outcome and
/// the measured restore time in `drills/<time>-<run>.json`, beside the backups, where
/// `backstop doctor` and the controller read it.
public struct DrillCommand: Sendable {
    public struct Options: Sendable {
        /// A server the drill may create and drop a database on (never the source).
        public var scratch: ConnectionSettings
        public var encryption: EncryptionSource

        public init(scratch: ConnectionSettings, encryption: EncryptionSource) {
            self.scratch = scratch
            self.encryption = encryption
        }
    }

    let context: WorkerContext
    let options: Options

    public init(context: WorkerContext, options: Options) {
        self.context = context
        self.options = options
    }

    /// Drills `latest` or an id. Returns the record when the drill succeeded; throws after
    /// recording a failed one (a drill that could not start — a wrong option, no backup —
    /// records nothing).
    public func run(_ reference: String) async throws(EngineError) -> DrillRecord {
        let id = try await BackupCatalog(context: context).resolve(reference)
        // One lease over both reads of the backup (the restore and the schema's printing).
        return try await BackupReadLease(context: context).holding(id) { () throws(EngineError) in try await drill(id) }
    }

    private func drill(_ id: BackupID) async throws(EngineError) -> DrillRecord {
        let started = context.now()
        let runID = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let database = "backstop_drill_\(runID)"
        let target = options.scratch.withDatabase(database)
        context.logger.info("drill: restoring \(id) into \(database), a scratch database")

        var restoreSeconds: Double?
        var tablesChecked: Int?
        var schemaMatches: Bool?
        var failure: EngineError?
        do throws(EngineError) {
            let restorer = RestoreCommand(context: context, options: .init(target: target, encryption: options.encryption, mode: .newDatabase, noOwner: true))
            let source = try await restorer.load(id)
            let restored = try await restorer.restore(source, into: database, started: context.now())
            restoreSeconds = (restored.durationSeconds * 1000).rounded() / 1000
            tablesChecked = restored.tablesCompared
            if !restored.rowCountDifferences.isEmpty {
                throw EngineError(.restoreFailed, "row counts differ from the backup: \(restored.rowCountDifferences.joined(separator: "; "))")
            }
            let differences = try await schemaDifferences(source, restoredInto: target)
            schemaMatches = differences.isEmpty
            if !differences.isEmpty {
                throw EngineError(.restoreFailed, "the restored schema differs from the archive's: \(differences.prefix(5).joined(separator: "; "))")
            }
        } catch {
            failure = error
        }
        await drop(database)

        let message = failure.map { "drill of \(id) failed: \($0.message)" }
            ?? "restored \(id) in \(DrillRecord.seconds(restoreSeconds ?? 0)) s; schema and row counts of \(tablesChecked ?? 0) tables match the backup"
        let record = DrillRecord(
            backupID: id, startedAt: UTCTimestamp(secondsSince1970: Int64(started)), completedAt: context.timestamp, runID: runID,
            restoreSeconds: restoreSeconds, outcome: failure == nil ? .succeeded : .failed, message: message,
            tablesChecked: tablesChecked, schemaMatches: schemaMatches, toolVersion: WorkerContext.toolVersion)
        do {
            try await context.storage.put(context.location.drillRecordKey(record), bytes: [UInt8](try BackupCatalog.encoder.encode(record)))
        } catch {
            throw EngineError.wrapping(error, context: "cannot write the drill record")
        }
        if let failure { throw EngineError(failure.kind, message, underlying: failure) }
        context.logger.info("\(message)")
        return record
    }

    /// Lines of schema found on one side only: the archive's DDL (`pg_restore --schema-only`
    /// from the stored backup) against the restored database's (`pg_dump --schema-only`).
    private func schemaDifferences(_ source: RestoreCommand.Source, restoredInto target: ConnectionSettings) async throws(EngineError) -> [String] {
        let tools = source.tools
        let ignored = ["--schema-only", "--no-owner", "--no-privileges"]

        let archiveSchema: String
        let printer: ChildProcess
        do {
            printer = try ChildProcess(executable: tools.pgRestore, arguments: ignored + ["--file=-"], standardInput: .pipe, standardOutput: .collect)
        } catch { throw EngineError.wrapping(error) }
        let stream = PlaintextStream(storage: context.storage, location: context.location, manifest: source.manifest, key: source.key)
        do {
            _ = try await stream.run(into: printer.standardInput, consumerMayStopEarly: true, hashPlaintext: false, progress: TransferProgress())
        } catch {
            _ = await printer.killAndWait()
            throw error
        }
        let printed = await printer.closeInputAndWait()
        guard printed.termination.succeeded else {
            throw EngineError(.restoreFailed, "pg_restore --schema-only cannot print the archive's schema (\(printed.termination.description)): \(printed.standardError)")
        }
        archiveSchema = printed.standardOutput

        let dumper: ChildProcess
        do {
            dumper = try ChildProcess(executable: tools.pgDump, arguments: ignored + ["--no-password", "--dbname=\(target.connectionString)"],
                                      environment: target.childEnvironment, standardOutput: .collect)
        } catch { throw EngineError.wrapping(error) }
        let dumped = await dumper.wait()
        guard dumped.termination.succeeded else {
            throw EngineError(.restoreFailed, "pg_dump --schema-only cannot print the restored schema (\(dumped.termination.description)): \(dumped.standardError)")
        }
        if max(archiveSchema.utf8.count, dumped.standardOutput.utf8.count) >= ChildProcess.collectLimit {
            context.logger.warning("drill: the schema is larger than \(ChildProcess.collectLimit / 1_048_576) MiB; only its last part was compared")
        }
        return Self.differences(Self.statements(archiveSchema), Self.statements(dumped.standardOutput))
    }

    /// A schema script without what differs between two printings of the same schema:
    /// comments, session settings, and the random `\restrict` key of newer pg_dump releases.
    static func statements(_ script: String) -> [String] {
        script.split(separator: "\n", omittingEmptySubsequences: true).map(String.init).filter { line in
            !line.hasPrefix("--") && !line.hasPrefix("SET ") && !line.hasPrefix("SELECT pg_catalog.set_config(")
                && !line.hasPrefix("\\restrict") && !line.hasPrefix("\\unrestrict") && !line.allSatisfy(\.isWhitespace)
        }
    }

    /// `only in the archive: CREATE TABLE …` for each line one side lacks (as many times as it
    /// lacks it), archive first.
    static func differences(_ archive: [String], _ restored: [String]) -> [String] {
        var counts: [String: Int] = [:]
        for line in archive { counts[line, default: 0] += 1 }
        for line in restored { counts[line, default: 0] -= 1 }
        var found: [String] = []
        for line in archive where (counts[line] ?? 0) > 0 {
            counts[line, default: 0] -= 1
            found.append("only in the archive: \(line)")
        }
        for line in restored where (counts[line] ?? 0) < 0 {
            counts[line, default: 0] += 1
            found.append("only in the restored database: \(line)")
        }
        return found
    }

    private func drop(_ database: String) async {
        do {
            try await PostgresConnection.with(options.scratch.withDatabase("postgres")) { try await $0.dropDatabase(database) }
        } catch {
            context.logger.error("drill: could not drop the scratch database \(database): \(error); drop it by hand")
        }
    }
}
