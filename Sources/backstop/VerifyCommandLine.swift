import ArgumentParser
import BackstopAPI
import Engine
import Foundation

struct VerifyCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-read a backup, check every block, decrypt, decompress and list it with pg_restore.",
        discussion: """
            Example:
              backstop verify latest --storage file:///var/backups --environment production
            Exits non-zero naming the first mismatch (object, block, offset).
            """)

    @Argument(help: "A backup id from `backstop list`, or latest.")
    var backup: String = "latest"

    @OptionGroup var location: LocationOptions
    @OptionGroup var encryption: EncryptionOptions
    @OptionGroup var report: ReportOptions

    func run() async throws {
        let context = try location.context(logger: Backstop.makeLogger())
        let source = try encryption.source()
        let run = CommandRun(command: "verify", reportPath: report.reportPath)
        let reference = backup
        do {
            let record = try await runInterruptibly { try await VerifyCommand(context: context, encryption: source).run(reference) }
            run.succeeded { report in
                report.backupID = record.backupID
                report.verified = true
                report.message = "\(record.checks.joined(separator: ", ")); \(record.archiveEntries ?? 0) archive entries"
            }
        } catch {
            throw run.failed(error, verified: false)
        }
    }
}
