import ArgumentParser
import BackstopAPI
import BlockingCalls
import Engine
import Foundation
import KubeObjects
import Postgres
import Storage
import Workloads

/// `backstop doctor`: the seeds' `/doctor` for one environment's backups.
struct DoctorCommandLine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Audit one environment's backups: storage, RPO, verification, drills and RTO, hash chain, key, PostgreSQL, leftovers.",
        discussion: """
            Examples:
              backstop doctor --storage s3://acme-backups/k8s --namespace shop \\
                --policy orders --environment production --rpo 24h --rto 1h \\
                --encryption-key-file /secrets/backup-key/key
              kubectl get bp orders -o yaml | backstop doctor -f - --environment production
            With -f the policy gives the location, the database and the objectives;
            credentials still come from flags, variables or files (a policy names
            Secrets it cannot read). One line per check: ✓ passed, ✗ failed (with
            what to do under it), ℹ information. Exits 1 if any check failed;
            -o json prints {"healthy": …, "checks": […]}.
            """)

    @Option(name: [.customShort("f"), .customLong("filename")], help: "A BackupPolicy (YAML or JSON; - reads stdin) to take the location, database and objectives from.")
    var file: String?

    @Option(help: "The recovery point objective, e.g. 24h: the newest backup must be younger.")
    var rpo: String?

    @Option(help: "The recovery time objective, e.g. 1h: the last drill's restore must have been faster.")
    var rto: String?

    @OptionGroup(title: "Doctor") var storage: StorageOption
    @OptionGroup(title: "Doctor") var scope: ScopeOptions
    @OptionGroup(title: "Doctor") var database: DatabaseOptions
    @OptionGroup(title: "Doctor") var encryption: EncryptionOptions
    @OptionGroup(title: "Doctor") var tools: ToolOptions
    @OptionGroup(title: "Doctor") var output: OutputOption
    @OptionGroup(title: "S3") var s3: S3AccessOptions

    func run() async throws {
        let format = try output.format(allowing: [.text, .json])
        var storage = storage
        var scope = scope
        var database = database
        var s3 = s3
        var rpo = rpo
        var rto = rto
        if let file {
            try Self.take(try Self.policyEnvironment(file, environment: scope.environment),
                          storage: &storage, scope: &scope, database: &database, s3: &s3, rpo: &rpo, rto: &rto)
        }
        let context = try WorkerSetup.context(storage: storage, s3: s3, scope: scope, tools: tools)
        let given = WorkerOption.database.resolved(database.database)
        let options = DoctorCommand.Options(
            database: given == nil ? nil : try database.settings(), encryption: try encryption.source(),
            rpo: try rpo.map { text throws(CommandLineError) in try Self.duration(text, flag: "--rpo") },
            rto: try rto.map { text throws(CommandLineError) in try Self.duration(text, flag: "--rto") })
        let checks = try await runInterruptibly { await DoctorCommand(context: context, options: options).run() }
        let failures = checks.filter { $0.status == .fail }.count
        switch format {
        case .json, .yaml:
            struct Document: Encodable {
                let healthy: Bool
                let checks: [DoctorCommand.Check]
            }
            try format.print(Document(healthy: failures == 0, checks: checks))
        case .text:
            print("Checking the backups of \(context.location.environmentPrefix.dropLast()) in \(context.storage.displayName)…\n")
            for check in checks {
                let mark = switch check.status {
                case .ok: "✓"
                case .fail: "✗"
                case .info: "ℹ"
                }
                print("\(mark) \(check.message)")
                if let hint = check.hint, check.status != .ok { print("  └─ \(hint)") }
            }
            print(failures == 0 ? "\nAll checks passed." : "\n\(failures) issue\(failures == 1 ? "" : "s") found.")
        }
        if failures > 0 { throw ExitCode(1) }
    }

    static func duration(_ text: String, flag: String) throws(CommandLineError) -> FixedDuration {
        do { return try FixedDuration(parsing: text, field: flag) } catch { throw .usage(error.description) }
    }

    /// The policy of `file` and the environment named (or its only one).
    static func policyEnvironment(_ file: String, environment: String?) throws(CommandLineError) -> (BackupPolicy, BackupPolicy.ResolvedEnvironment) {
        let documents = try PolicyFile.read(file)
        guard documents.count == 1, let document = documents.first else {
            throw .usage("-f \(file) holds \(documents.count) policies; give a file with one (kubectl get bp NAME -o yaml)")
        }
        let environments: [BackupPolicy.ResolvedEnvironment]
        do { environments = try document.policy.resolvedEnvironments() } catch { throw .usage("\(document.source): \(error.description)") }
        // The flag or the variable; not the option's default ("default"), which names no
        // environment of a policy.
        let variable = ProcessInfo.processInfo.environment[WorkerOption.environment.environmentVariable].flatMap { $0.isEmpty ? nil : $0 }
        let wanted = environment ?? variable
        if let wanted {
            guard let found = environments.first(where: { $0.name == wanted }) else {
                throw .usage("--environment \(wanted): the policy has \(environments.map(\.name).joined(separator: ", "))")
            }
            return (document.policy, found)
        }
        guard environments.count == 1, let only = environments.first else {
            throw .usage("the policy has several environments (\(environments.map(\.name).joined(separator: ", "))); say which with --environment")
        }
        return (document.policy, only)
    }

    /// Fills what the flags leave open from the policy, as its CronJob would set the worker's
    /// variables: the location, the database and the objectives. Paths of mounted Secrets
    /// exist only in the pod, so credentials are not taken.
    static func take(_ chosen: (BackupPolicy, BackupPolicy.ResolvedEnvironment), storage: inout StorageOption, scope: inout ScopeOptions,
                     database: inout DatabaseOptions, s3: inout S3AccessOptions, rpo: inout String?, rto: inout String?) throws(CommandLineError) {
        let (policy, environment) = chosen
        let cronJob: CronJob
        do {
            guard let built = try CronJobBuilder(settings: .init(workerImage: "unused")).cronJobs(for: policy)
                .first(where: { $0.metadata.labels?[CronJobBuilder.environmentLabel] == environment.name }) else { return }
            cronJob = built
        } catch {
            throw .usage(error.description)
        }
        var values: [String: String] = [:]
        for variable in cronJob.spec.jobTemplate.spec.template.spec.containers.first?.env ?? [] {
            if let value = variable.value { values[variable.name] = value }
        }
        func value(_ option: WorkerOption) -> String? { values[option.environmentVariable] }
        storage.storage = storage.storage ?? value(.storage)
        scope.namespace = scope.namespace ?? policy.metadata.namespace
        scope.policy = scope.policy ?? policy.metadata.name
        scope.environment = scope.environment ?? environment.name
        database.database = database.database ?? value(.database)
        s3.endpoint = s3.endpoint ?? value(.s3Endpoint)
        s3.region = s3.region ?? value(.s3Region)
        s3.pathStyle = s3.pathStyle || value(.s3PathStyle) == "true"
        rpo = rpo ?? environment.rpo?.description
        rto = rto ?? policy.spec.environments.first { $0.name == environment.name }?.objectives?.rto
    }
}
