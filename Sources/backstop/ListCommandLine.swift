import ArgumentParser
import BackstopAPI
import Engine
import Foundation
import Storage

struct ListCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "Show the backups of an environment.",
        discussion: """
            Example:
              backstop list --storage file:///var/backups --environment production --output json
            """)

    @OptionGroup var location: LocationOptions

    @Option(name: .customLong(WorkerOption.output.flag),
            help: "text or json (env \(WorkerOption.output.environmentVariable)).")
    var output: String?

    /// One backup in `--output json`.
    struct Row: Encodable {
        let id: String
        let time: String
        let storedBytes: Int64
        let dumpBytes: Int64
        let durationSeconds: Double
        let compression: String
        let encrypted: Bool
        let verified: String
        let verifiedAt: String?
        let tables: Int
        let storageClass: String
        let held: Bool
    }

    func run() async throws {
        let context = try location.context(logger: Backstop.makeLogger())
        let format = WorkerOption.output.resolve(flag: output, environment: ProcessInfo.processInfo.environment) ?? "text"
        guard format == "text" || format == "json" else {
            throw ValidationError("--output \(format) is unknown; use text or json")
        }
        let entries: [BackupCatalog.Entry]
        let holds: Set<BackupID>
        do {
            entries = try await BackupCatalog(context: context).entries()
            holds = try await BackupCatalog(context: context).holds()
        } catch { throw fail(error) }
        let rows = entries.reversed().map { entry in
            Row(id: entry.manifest.id.rawValue, time: entry.manifest.startedAt.rfc3339,
                storedBytes: entry.manifest.storedBytes, dumpBytes: entry.manifest.plaintext.size,
                durationSeconds: entry.manifest.durationSeconds,
                compression: "\(entry.manifest.compression.algorithm.rawValue)-\(entry.manifest.compression.level)",
                encrypted: entry.manifest.encryption != nil,
                verified: entry.verification.map { $0.succeeded ? "ok" : "FAILED" } ?? "never",
                verifiedAt: entry.verification?.verifiedAt.rfc3339, tables: entry.manifest.tables.count,
                storageClass: entry.storageClass ?? "STANDARD", held: holds.contains(entry.manifest.id))
        }
        if format == "json" {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(["backups": rows]), as: UTF8.self))
            return
        }
        if rows.isEmpty {
            print("no backups in \(context.storage.displayName)/\(context.location.environmentPrefix)")
            return
        }
        let header = ["ID", "TIME", "STORED", "DUMP", "DURATION", "COMPRESSION", "ENCRYPTED", "VERIFIED", "TIER", "HELD"]
        let table = rows.map { row in
            [row.id, row.time, bytes(row.storedBytes), bytes(row.dumpBytes), String(format: "%.1fs", row.durationSeconds),
             row.compression, row.encrypted ? "yes" : "no", row.verified, row.storageClass, row.held ? "held" : ""]
        }
        let widths = header.indices.map { column in ([header] + table).map { $0[column].count }.max() ?? 0 }
        for line in [header] + table {
            print(line.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }
                .joined(separator: "  ").trimmingCharacters(in: .whitespaces))
        }
    }

    private func bytes(_ count: Int64) -> String {
        ByteCountFormatter.string(fromByteCount: count, countStyle: .binary)
    }
}
