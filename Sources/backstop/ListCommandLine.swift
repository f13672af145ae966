import ArgumentParser
import BackstopAPI
import Engine
import Foundation
import Storage
import Logging

struct ListCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show the backups of an environment, with holds and damage.",
        discussion: """
            Examples:
              backstop list --storage file:///var/backups --environment production
              backstop list --storage s3://acme-backups/k8s -o yaml
            A backup whose manifest cannot be read is listed as DAMAGED with the
            reason, and the rest are still listed.
            """)

    @OptionGroup(title: "List") var storage: StorageOption
    @OptionGroup(title: "List") var scope: ScopeOptions
    @OptionGroup(title: "List") var output: OutputOption
    @OptionGroup(title: "S3") var s3: S3AccessOptions

    /// One backup in `-o json` or `-o yaml`.
    struct Row: Encodable {
        var id: String
        var time: String
        var storedBytes: Int64?
        var dumpBytes: Int64?
        var durationSeconds: Double?
        var compression: String?
        var encrypted: Bool?
        /// ok, FAILED, never; or DAMAGED when the manifest cannot be read.
        var verified: String
        var verifiedAt: String?
        var tables: Int?
        /// Secrets and ConfigMaps stored beside the dump, by kind.
        var namespaceObjects: [String: Int]?
        var storageClass: String?
        var held = false
        var heldSince: String?
        var holdReason: String?
        /// What is wrong with a damaged backup.
        var damaged: String?
    }

    func run() async throws {
        let format = try output.format()
        let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope)
        let contents: BackupCatalog.Contents
        let holds: [BackupID: BackupHold]
        do {
            let catalog = BackupCatalog(context: context)
            contents = try await catalog.contents()
            holds = try await catalog.holds()
        } catch { throw CommandLineError(error) }
        var rows = contents.entries.map { entry in
            Row(id: entry.manifest.id.rawValue, time: entry.manifest.startedAt.rfc3339,
                storedBytes: entry.manifest.storedBytes, dumpBytes: entry.manifest.plaintext.size,
                durationSeconds: entry.manifest.durationSeconds,
                compression: "\(entry.manifest.compression.algorithm.rawValue)-\(entry.manifest.compression.level)",
                encrypted: entry.manifest.encryption != nil,
                verified: entry.verification.map { $0.succeeded ? "ok" : "FAILED" } ?? "never",
                verifiedAt: entry.verification?.verifiedAt.rfc3339, tables: entry.manifest.tables.count,
                namespaceObjects: entry.manifest.namespaceObjects?.counts, storageClass: entry.storageClass ?? "STANDARD")
        }
        rows += contents.damaged.map { damage in
            Row(id: damage.id.rawValue, time: damage.id.secondsSince1970.map { UTCTimestamp(secondsSince1970: $0).rfc3339 } ?? "",
                verified: "DAMAGED", damaged: damage.problem)
        }
        rows.sort { $0.id > $1.id }
        for index in rows.indices {
            guard let id = try? BackupID(rows[index].id), let hold = holds[id] else { continue }
            rows[index].held = true
            rows[index].heldSince = hold.heldAt.rfc3339
            rows[index].holdReason = hold.reason
        }
        if !contents.damaged.isEmpty {
            context.logger.warning("\(contents.damaged.count) backup\(contents.damaged.count == 1 ? " is" : "s are") damaged (\(contents.damaged.map(\.id.rawValue).joined(separator: ", "))); restore from another one, and look at the damaged manifests")
        }
        if format != .text {
            struct Document: Encodable { let backups: [Row] }
            return try format.print(Document(backups: rows))
        }
        if rows.isEmpty {
            print("no backups in \(context.storage.displayName)/\(context.location.environmentPrefix)")
            return
        }
        let header = ["ID", "TIME", "STORED", "DUMP", "DURATION", "COMPRESSION", "ENCRYPTED", "VERIFIED", "OBJECTS", "TIER", "HELD"]
        printTable(header, rows.map { row in
            [row.id, row.time, row.storedBytes.map(bytes) ?? "-", row.dumpBytes.map(bytes) ?? "-",
             row.durationSeconds.map { String(format: "%.1fs", $0) } ?? "-", row.compression ?? "-",
             row.encrypted.map { $0 ? "yes" : "no" } ?? "-", row.verified, row.namespaceObjects.map(Self.objectsCell) ?? "-",
             row.storageClass ?? "-", row.held ? "held" : ""]
        })
        let notes = rows.compactMap { row -> String? in
            if let damage = row.damaged { return "\(row.id)  DAMAGED: \(damage)" }
            guard row.held else { return nil }
            return "\(row.id)  held since \(row.heldSince ?? "?")" + (row.holdReason.map { ": \($0)" } ?? "")
        }
        if !notes.isEmpty {
            print("")
            notes.forEach { print($0) }
        }
    }

    /// `4 Secret, 1 ConfigMap`
    static func objectsCell(_ counts: [String: Int]) -> String {
        counts.isEmpty ? "none" : counts.sorted { $0.key > $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    }

    private func bytes(_ count: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: count, countStyle: .binary)
    }
}
