public import BackstopAPI
internal import BlockingCalls
internal import Foundation
internal import Logging
internal import Pipeline
internal import Postgres
#if canImport(Glibc)
internal import Glibc
#endif

/// `backstop verify`: re-reads a backup's objects, checks sizes and every block's SHA-256,
/// decrypts and decompresses to the end, has `pg_restore --list` read the archive, and
/// records the result in `verified.json`.
public struct VerifyCommand: Sendable {
    let context: WorkerContext
    let encryption: EncryptionSource
    /// `--deep`: a physical base backup is also unpacked under this folder and checked file by
    /// file against its backup_manifest by pg_verifybackup; `nil` for the usual read-back.
    let deepScratch: String?

    public init(context: WorkerContext, encryption: EncryptionSource, deepScratch: String? = nil) {
        self.context = context
        self.encryption = encryption
        self.deepScratch = deepScratch
    }

    /// Verifies `latest` or an id. Throws the first problem after recording it.
    public func run(_ reference: String) async throws(EngineError) -> VerificationRecord {
        let catalog = BackupCatalog(context: context)
        let id = try await catalog.resolve(reference)
        let manifest = try await catalog.load(id).manifest
        if deepScratch != nil, !manifest.isPhysical {
            throw EngineError(.invalidOption, "--deep checks a physical base backup with pg_verifybackup; \(id) is a logical dump, which verify already lists with pg_restore: leave --deep out")
        }
        let key = try encryption.key(for: manifest)
        return try await verify(manifest, key: key)
    }

    /// Verifies a loaded manifest and records the outcome in `verified.json`: a success, or a
    /// finding about the backup (a missing tool says nothing about it and is not recorded).
    func verify(_ manifest: BackupManifest, key: EncryptionKey?) async throws(EngineError) -> VerificationRecord {
        let catalog = BackupCatalog(context: context)
        let tools: PostgresTools
        do { tools = try await PostgresTools.locate(binDirectory: context.postgresBinDirectory) }
        catch { throw EngineError.wrapping(error) }
        var outcome = await check(manifest, key: key, tools: tools)
        if outcome.failure == nil, let deepScratch {
            outcome = await deepCheck(manifest, key: key, tools: tools, scratch: deepScratch, after: outcome.record)
        }
        guard let failure = outcome.failure else {
            try await catalog.record(outcome.record)
            context.logger.info("\(Self.summary(of: outcome.record))")
            return outcome.record
        }
        if failure.kind == .integrity { try? await catalog.record(outcome.record) }
        throw failure
    }

    static func summary(of record: VerificationRecord) -> String {
        "verified \(record.backupID): \(record.checks.joined(separator: ", ")); \(record.archiveEntries ?? 0) archive entries"
    }

    /// The outcome of one read-back: the record to store and, on failure, the error to throw.
    struct Outcome: Sendable {
        let record: VerificationRecord
        let failure: EngineError?
    }

    /// Unpacks the base backup into a folder of its own under `scratch` and has pg_verifybackup
    /// check every file against pg_basebackup's backup_manifest (sizes and checksums); the
    /// WAL is not in the backup, so pg_verifybackup does not look for it. The folder goes
    /// afterwards, whatever the outcome.
    private func deepCheck(_ manifest: BackupManifest, key: EncryptionKey?, tools: PostgresTools, scratch: String,
                           after previous: VerificationRecord) async -> Outcome {
        let folder = scratch + "/backstop-verify-\(manifest.id)-\(UInt32.random(in: 0...UInt32.max))"
        let outcome = await deepCheck(manifest, key: key, tools: tools, folder: folder, after: previous)
        // A cluster's worth of files: removed off the cooperative pool.
        _ = try? await runBlocking(name: "verify-cleanup") { try FileManager.default.removeItem(atPath: folder) }
        return outcome
    }

    private func deepCheck(_ manifest: BackupManifest, key: EncryptionKey?, tools: PostgresTools, folder: String,
                           after previous: VerificationRecord) async -> Outcome {
        var checks = previous.checks
        do throws(EngineError) {
            let verifier: String
            do { verifier = try tools.program("pg_verifybackup") } catch { throw EngineError.wrapping(error) }
            guard mkdir(folder, 0o700) == 0 else {
                throw EngineError(.invalidOption, "cannot create \(folder) for --deep: \(String(cString: strerror(errno))); point --scratch-dir at a writable folder with room for the cluster")
            }
            let stream = PlaintextStream(storage: context.storage, location: context.location, manifest: manifest, key: key)
            let digest = try await stream.run(into: nil, consumerMayStopEarly: false, baseBackup: .extract(into: folder, durable: false), progress: TransferProgress())
            try stream.check(digest)
            let result: ChildProcess.Outcome
            do { result = try await ChildProcess(executable: verifier, arguments: ["--no-parse-wal", "--quiet", folder], standardOutput: .collect).wait() }
            catch { throw EngineError.wrapping(error) }
            guard result.termination.succeeded else {
                let detail = (result.standardError + result.standardOutput).split(separator: "\n").prefix(3).joined(separator: "; ")
                throw EngineError(.integrity, "pg_verifybackup finds base backup \(manifest.id) damaged: \(detail); restore from another backup")
            }
            checks.append("pg_verifybackup")
            return Outcome(record: VerificationRecord(
                backupID: manifest.id, verifiedAt: context.timestamp, succeeded: true, checks: checks,
                archiveEntries: previous.archiveEntries, failure: nil, toolVersion: WorkerContext.toolVersion), failure: nil)
        } catch {
            return Outcome(record: VerificationRecord(
                backupID: manifest.id, verifiedAt: context.timestamp, succeeded: false, checks: checks,
                archiveEntries: nil, failure: error.message, toolVersion: WorkerContext.toolVersion), failure: error)
        }
    }

    /// Re-reads the stored objects of `manifest` and proves them against it, recording nothing.
    /// The backup command runs this before its commit, without `hashPlaintext` (see
    /// `PlaintextStream.run`); `verify` records what it finds.
    func check(_ manifest: BackupManifest, key: EncryptionKey?, tools: PostgresTools, hashPlaintext: Bool = true) async -> Outcome {
        var checks: [String] = []
        do throws(EngineError) {
            let stream = PlaintextStream(storage: context.storage, location: context.location, manifest: manifest, key: key)
            try await stream.checkSizes()
            checks.append("object sizes")
            if let info = manifest.namespaceObjects {
                let items = try await NamespaceObjectsArchive.load(manifest, context: context, key: key)
                guard NamespaceObjectsArchive.counts(items) == info.counts.filter({ $0.value > 0 }) else {
                    throw EngineError(.integrity, "the Secrets and ConfigMaps of \(manifest.id) are not the ones its manifest counts; restore them from another backup")
                }
                checks.append("Secrets and ConfigMaps")
            }
            if manifest.isPhysical {
                let digest = try await stream.run(into: nil, consumerMayStopEarly: false, hashPlaintext: hashPlaintext,
                                                  baseBackup: .check, progress: TransferProgress())
                checks.append("block hashes")
                if key != nil { checks.append("decryption") }
                checks.append("decompression")
                try stream.check(digest)
                checks.append(digest.sha256 == nil ? "plaintext size" : "plaintext hash")
                let contents = digest.baseBackup ?? BaseBackupContents()
                try contents.checkComplete("base backup \(manifest.id)")
                guard let range = contents.walRange, let physical = manifest.physical,
                      range.start == physical.startLSN, range.end == physical.stopLSN, range.timeline == physical.timeline else {
                    throw EngineError(.integrity, "the backup_manifest inside \(manifest.id) names another WAL range than its manifest.json: the backup is damaged or mixed up; restore from another backup")
                }
                checks.append("tar read to its end")
                checks.append("backup_label and backup_manifest")
                return Outcome(record: VerificationRecord(
                    backupID: manifest.id, verifiedAt: context.timestamp, succeeded: true, checks: checks,
                    archiveEntries: contents.entryCount, failure: nil, toolVersion: WorkerContext.toolVersion), failure: nil)
            }
            let lister: ChildProcess
            do {
                lister = try ChildProcess(executable: tools.pgRestore, arguments: ["--list"],
                                          standardInput: .pipe, standardOutput: .collect)
            } catch { throw EngineError.wrapping(error) }
            let progress = TransferProgress()
            let digest: PlaintextStream.Digest
            do {
                digest = try await stream.run(into: lister.standardInput, consumerMayStopEarly: true, hashPlaintext: hashPlaintext, progress: progress)
            } catch {
                _ = await lister.killAndWait()
                throw error
            }
            let listing = await lister.closeInputAndWait()
            checks.append("block hashes")
            if key != nil { checks.append("decryption") }
            checks.append("decompression")
            try stream.check(digest)
            checks.append(digest.sha256 == nil ? "plaintext size" : "plaintext hash")
            guard listing.termination.succeeded else {
                throw EngineError(.integrity, "pg_restore --list cannot read the dump of \(manifest.id) (\(listing.termination.description)): \(listing.standardError)")
            }
            let entries = listing.standardOutput.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }.count
            checks.append("pg_restore --list")
            return Outcome(record: VerificationRecord(
                backupID: manifest.id, verifiedAt: context.timestamp, succeeded: true, checks: checks,
                archiveEntries: entries, failure: nil, toolVersion: WorkerContext.toolVersion), failure: nil)
        } catch {
            return Outcome(record: VerificationRecord(
                backupID: manifest.id, verifiedAt: context.timestamp, succeeded: false, checks: checks,
                archiveEntries: nil, failure: error.message, toolVersion: WorkerContext.toolVersion), failure: error)
        }
    }
}
