public import BackstopAPI
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

    public init(context: WorkerContext, encryption: EncryptionSource) {
        self.context = context
        self.encryption = encryption
    }

    /// Verifies `latest` or an id. Throws the first problem after recording it.
    public func run(_ reference: String) async throws(EngineError) -> VerificationRecord {
        let catalog = BackupCatalog(context: context)
        let id = try await catalog.resolve(reference)
        let manifest = try await catalog.load(id).manifest
        let key = try encryption.key(for: manifest)
        return try await verify(manifest, key: key)
    }

    /// Verifies a loaded manifest with a key already derived (the backup command's own check).
    func verify(_ manifest: BackupManifest, key: EncryptionKey?) async throws(EngineError) -> VerificationRecord {
        let catalog = BackupCatalog(context: context)
        var checks: [String] = []
        do throws(EngineError) {
            let stream = PlaintextStream(storage: context.storage, location: context.location, manifest: manifest, key: key)
            try await stream.checkSizes()
            checks.append("object sizes")
            let tools: PostgresTools
            do { tools = try await PostgresTools.locate(binDirectory: context.postgresBinDirectory) }
            catch { throw EngineError.wrapping(error) }
            let lister: ChildProcess
            do {
                lister = try ChildProcess(executable: tools.pgRestore, arguments: ["--list"],
                                          standardInput: .pipe, standardOutput: .collect)
            } catch { throw EngineError.wrapping(error) }
            let progress = TransferProgress()
            let digest: PlaintextStream.Digest
            do {
                digest = try await stream.run(into: lister.standardInput, consumerMayStopEarly: true, progress: progress)
            } catch {
                _ = await lister.killAndWait()
                throw error
            }
            let listing = await lister.closeInputAndWait()
            checks.append("block hashes")
            if key != nil { checks.append("decryption") }
            checks.append("decompression")
            try stream.check(digest)
            checks.append("plaintext hash")
            guard listing.termination.succeeded else {
                throw EngineError(.integrity, "pg_restore --list cannot read the dump of \(manifest.id) (\(listing.termination.description)): \(listing.standardError)")
            }
            let entries = listing.standardOutput.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }.count
            checks.append("pg_restore --list")
            let record = VerificationRecord(
                backupID: manifest.id, verifiedAt: context.timestamp, succeeded: true, checks: checks,
                archiveEntries: entries, failure: nil, toolVersion: WorkerContext.toolVersion)
            try await catalog.record(record)
            context.logger.info("verified \(manifest.id): \(checks.joined(separator: ", ")); \(entries) archive entries")
            return record
        } catch {
            // Only findings about the backup are recorded; a missing tool says nothing about it.
            if error.kind == .integrity {
                let record = VerificationRecord(
                    backupID: manifest.id, verifiedAt: context.timestamp, succeeded: false, checks: checks,
                    archiveEntries: nil, failure: error.message, toolVersion: WorkerContext.toolVersion)
                try? await catalog.record(record)
            }
            throw error
        }
    }
}
