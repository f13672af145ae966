import ArgumentParser
import BlockingCalls
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

    @Flag(name: .customLong("chain"), help: "Check the manifests' hash chain, oldest to newest, instead of one backup's data.")
    var chain = false

    @OptionGroup var location: LocationOptions
    @OptionGroup var encryption: EncryptionOptions
    @OptionGroup var report: ReportOptions

    func run() async throws {
        let context = try location.context(logger: Backstop.makeLogger())
        if chain { return try await checkChain(context) }
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

    private func checkChain(_ context: WorkerContext) async throws {
        let run = CommandRun(command: "verify", reportPath: report.reportPath)
        do {
            let links = try await BackupCatalog(context: context).chain()
            var broken = 0
            for link in links {
                switch link.status {
                case .first: print("\(link.id)  first backup of the chain")
                case .linked: print("\(link.id)  linked to its predecessor")
                case .predecessorPruned(let prune): print("\(link.id)  predecessor deleted by retention (\(prune))")
                case .broken(let problem):
                    broken += 1
                    print("\(link.id)  BROKEN: \(problem)")
                }
            }
            if broken > 0 {
                throw EngineError(.integrity, "the hash chain of \(context.location.environmentPrefix) is broken at \(broken) of \(links.count) backups; see the lines above")
            }
            run.succeeded { report in report.message = "hash chain intact over \(links.count) backups" }
        } catch {
            throw run.failed(error)
        }
    }
}
