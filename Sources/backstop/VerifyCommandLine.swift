import ArgumentParser
import BackstopAPI
import BlockingCalls
import Engine
import Foundation

struct VerifyCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Re-read a backup, check every block, decrypt, decompress and list it with pg_restore.",
        discussion: """
            Examples:
              backstop verify latest --storage file:///var/backups \\
                --environment production \\
                --encryption-key-file /secrets/backup-key/key
              backstop verify --chain --storage s3://acme-backups/k8s
            Exits 1 naming the first mismatch (object, block, offset). --chain
            follows the manifests' hash chain instead: it names a damaged or
            altered manifest and checks the rest. A physical base backup is read
            as a tar to its end (backup_label and backup_manifest present); --deep
            also unpacks it under --scratch-dir and runs pg_verifybackup.
            """)

    @Argument(help: "A backup id from `backstop list`, or latest.")
    var backup: String = "latest"

    @OptionGroup(title: "Verify") var mode: ChainOption

    @Flag(help: "For a physical base backup: also unpack it into a scratch folder and run pg_verifybackup on it.")
    var deep = false

    @Option(help: ArgumentHelp("Where --deep unpacks (needs room for the whole cluster; default the temporary folder).", valueName: "directory"))
    var scratchDir: String?

    @OptionGroup(title: "Verify") var storage: StorageOption
    @OptionGroup(title: "Verify") var scope: ScopeOptions
    @OptionGroup(title: "Verify") var encryption: EncryptionOptions
    @OptionGroup(title: "Verify") var report: ReportOptions
    @OptionGroup(title: "Verify") var tools: ToolOptions
    @OptionGroup(title: "S3") var s3: S3AccessOptions
    @OptionGroup(title: "S3 objects written (verified.json)") var s3Write: S3WriteOptions

    func run() async throws {
        let context = try WorkerSetup.context(storage: storage, s3: s3, write: s3Write, scope: scope, tools: tools)
        if mode.chain { return try await checkChain(context) }
        let source = try encryption.source()
        let run = CommandRun(command: "verify", reportPath: report.reportPath)
        let reference = backup
        do {
            let scratch = deep ? (scratchDir ?? FileManager.default.temporaryDirectory.path) : nil
            let record = try await runInterruptibly { try await VerifyCommand(context: context, encryption: source, deepScratch: scratch).run(reference) }
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
            var problems = 0
            for link in links {
                switch link.status {
                case .first: print("\(link.id)  first backup of the chain")
                case .linked: print("\(link.id)  linked to its predecessor")
                case .predecessorPruned(let prune): print("\(link.id)  predecessor deleted by retention (\(prune))")
                case .broken(let problem):
                    problems += 1
                    print("\(link.id)  BROKEN: \(problem)")
                case .damaged(let problem):
                    problems += 1
                    print("\(link.id)  DAMAGED: \(problem)")
                }
            }
            if problems > 0 {
                throw EngineError(.integrity, "the hash chain of \(context.location.environmentPrefix) has \(problems) problem\(problems == 1 ? "" : "s") among \(links.count) backups (see the lines above); a damaged or altered manifest means that backup cannot be trusted: restore from another one")
            }
            run.succeeded { report in report.message = "hash chain intact over \(links.count) backups" }
        } catch {
            throw run.failed(error)
        }
    }
}

/// `--chain`.
struct ChainOption: ParsableArguments {
    @Flag(name: .customLong("chain"), help: "Check the manifests' hash chain, oldest to newest, instead of one backup's data.")
    var chain = false
}
