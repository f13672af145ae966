import ArgumentParser
import BackstopAPI
import Engine
import Foundation
import Logging
import Postgres
import Storage

// The options several commands share. Each falls back to its `BACKSTOP_*` variable from
// `WorkerOption`, the table the CronJob builder uses too; a bad value is reported under the
// name it was given by (`--compression lz4`, or `BACKSTOP_COMPRESSION=lz4`).

extension WorkerOption {
    /// The value from the flag, else the variable, else the default, with where it came from.
    func resolved(_ flag: String?) -> Resolved? {
        resolved(flag: flag, environment: ProcessInfo.processInfo.environment)
    }

    /// A boolean flag, or its variable set to `true` or `false`.
    func resolvedSwitch(_ flag: Bool) throws(CommandLineError) -> Bool {
        guard let value = resolved(flag ? "true" : nil) else { return false }
        guard let on = Bool(value.value.lowercased()) else { throw .usage("\(value.shown) is not true or false; set it to true or false") }
        return on
    }
}

/// `--storage`: where the backups live.
struct StorageOption: ParsableArguments {
    @Option(name: .customLong(WorkerOption.storage.flag),
            help: "Where backups live: file:///path or s3://bucket/folder (env \(WorkerOption.storage.environmentVariable)).")
    var storage: String?
}

/// `--namespace`, `--policy`, `--environment`: whose backups, in the storage path.
struct ScopeOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.namespace.flag),
            help: "Kubernetes namespace of the policy (env \(WorkerOption.namespace.environmentVariable); default default).")
    var namespace: String?

    @Option(name: .customLong(WorkerOption.policy.flag),
            help: "BackupPolicy name (env \(WorkerOption.policy.environmentVariable); default default).")
    var policy: String?

    @Option(name: .customLong(WorkerOption.environment.flag),
            help: "Environment of the policy, e.g. production (env \(WorkerOption.environment.environmentVariable); default default).")
    var environment: String?

    func location() throws(CommandLineError) -> BackupLocation {
        let values = [(WorkerOption.namespace, namespace), (.policy, policy), (.environment, environment)].map { $0.0.resolved($0.1) }
        do {
            return try BackupLocation(namespace: values[0]?.value ?? "default", policy: values[1]?.value ?? "default",
                                      environment: values[2]?.value ?? "default")
        } catch {
            let given = values.compactMap { $0 }.first { $0.name.lowercased().hasSuffix(error.field) }
            throw .usage("\(given?.shown ?? "--\(error.field)"): \(error.problem); \(error.fix)")
        }
    }
}

/// `--s3-*` that say how an `s3://` location is reached. Credentials come from the standard
/// AWS variables, a mounted Secret folder or web identity; never from a flag.
struct S3AccessOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.s3Endpoint.flag),
            help: "S3-compatible endpoint URL, e.g. https://minio.storage:9000 (env \(WorkerOption.s3Endpoint.environmentVariable); default AWS).")
    var endpoint: String?

    @Option(name: .customLong(WorkerOption.s3Region.flag),
            help: "Region (env \(WorkerOption.s3Region.environmentVariable), then AWS_REGION, AWS_DEFAULT_REGION; default us-east-1).")
    var region: String?

    @Flag(name: .customLong(WorkerOption.s3PathStyle.flag),
          help: "Address the bucket in the path, not the host name: MinIO, Ceph (env \(WorkerOption.s3PathStyle.environmentVariable)=true).")
    var pathStyle = false

    @Option(name: .customLong(WorkerOption.s3CAFile.flag),
            help: "PEM file of a CA to trust for the endpoint (env \(WorkerOption.s3CAFile.environmentVariable)).")
    var caFile: String?

    @Option(name: .customLong(WorkerOption.s3CredentialsDir.flag),
            help: "Folder with files AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN] from a mounted Secret (env \(WorkerOption.s3CredentialsDir.environmentVariable)).")
    var credentialsDirectory: String?
}

/// `--s3-*` that say how new objects are written: only for commands that write.
struct S3WriteOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.s3SSE.flag),
            help: "Server-side encryption: AES256 or aws:kms (env \(WorkerOption.s3SSE.environmentVariable)).")
    var sse: String?

    @Option(name: .customLong(WorkerOption.s3KMSKeyID.flag),
            help: "KMS key for --s3-sse aws:kms (env \(WorkerOption.s3KMSKeyID.environmentVariable); default: the bucket's).")
    var kmsKeyID: String?

    @Option(name: .customLong(WorkerOption.s3StorageClass.flag),
            help: "Storage class of new objects: STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING or GLACIER_IR (env \(WorkerOption.s3StorageClass.environmentVariable)).")
    var storageClass: String?
}

/// `--pg-bin`: for the commands that run pg_dump or pg_restore.
struct ToolOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.pgBin.flag),
            help: "Folder with pg_dump and pg_restore (env \(WorkerOption.pgBin.environmentVariable); default: the newest installed).")
    var pgBin: String?
}

/// `--report-path`.
struct ReportOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.reportPath.flag),
            help: "Also write the JSON report line to this file (env \(WorkerOption.reportPath.environmentVariable)).")
    var reportPath: String?
}

/// `--encryption-key-file` / `--passphrase-file`.
struct EncryptionOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.encryptionKeyFile.flag),
            help: "File with a 32-byte key, raw or base64 (env \(WorkerOption.encryptionKeyFile.environmentVariable)).")
    var encryptionKeyFile: String?

    @Option(name: .customLong(WorkerOption.passphraseFile.flag),
            help: "File with a passphrase, stretched with scrypt (env \(WorkerOption.passphraseFile.environmentVariable)).")
    var passphraseFile: String?

    /// The source, with its file read once now: a missing, empty or malformed file is a usage
    /// error before any work starts.
    func source() throws(CommandLineError) -> EncryptionSource {
        let key = WorkerOption.encryptionKeyFile.resolved(encryptionKeyFile)
        let passphrase = WorkerOption.passphraseFile.resolved(passphraseFile)
        do {
            let source = try EncryptionSource(keyFile: key.map { ($0.value, $0.name) }, passphraseFile: passphrase.map { ($0.value, $0.name) })
            try source.check()
            return source
        } catch {
            throw CommandLineError(error)
        }
    }
}

/// `--database` and `--password-file`.
struct DatabaseOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.database.flag),
            help: "libpq URL or key=value string; empty uses PGHOST, PGDATABASE, … (env \(WorkerOption.database.environmentVariable)). Put no password here: use PGPASSWORD or --password-file.")
    var database: String?

    @Option(name: .customLong(WorkerOption.passwordFile.flag),
            help: "File holding the database password (env \(WorkerOption.passwordFile.environmentVariable)).")
    var passwordFile: String?

    func settings() throws(CommandLineError) -> ConnectionSettings {
        try connectionSettings(WorkerOption.database.resolved(database), passwordFile: passwordFile)
    }
}

/// Connection settings from `--database` or `--target` (whichever `given` is), with the
/// password file; both named as given in messages.
func connectionSettings(_ given: WorkerOption.Resolved?, passwordFile: String?) throws(CommandLineError) -> ConnectionSettings {
    let passwordFile = WorkerOption.passwordFile.resolved(passwordFile)
    do {
        return try ConnectionSettings(given?.value ?? "", passwordFile: passwordFile?.value, option: given?.name ?? "--database",
                                      passwordFileOption: passwordFile?.name ?? "--password-file")
    } catch {
        throw CommandLineError(error)
    }
}

/// `-o`/`--output`: how results print.
struct OutputOption: ParsableArguments {
    @Option(name: [.customShort("o"), .customLong(WorkerOption.output.flag)],
            help: "text, json or yaml (env \(WorkerOption.output.environmentVariable); default text).")
    var output: String?

    func format(allowing formats: [OutputFormat] = OutputFormat.allCases) throws(CommandLineError) -> OutputFormat {
        guard let given = WorkerOption.output.resolved(output) else { return .text }
        guard let format = OutputFormat(rawValue: given.value), formats.contains(format) else {
            throw .usage("\(given.shown) is not an output format; use \(formats.map(\.rawValue).joined(separator: ", "))")
        }
        return format
    }
}

/// Everything a worker command needs to reach its backups, validated before any work starts.
enum WorkerSetup {
    /// The logger every command uses: progress and warnings on stderr, so stdout carries only
    /// results (the report line, a listing).
    static func logger() -> Logger {
        LoggingSystem.bootstrap { _ in
            let level = Logger.Level(rawValue: ProcessInfo.processInfo.environment["BACKSTOP_LOG_LEVEL"] ?? "") ?? .info
            return WorkerLogHandler(logLevel: level)
        }
        return Logger(label: "backstop")
    }

    /// Opens the storage and checks the names. `write` is given by commands that write new
    /// objects (their class and encryption at rest); reading commands do not offer those flags.
    static func context(storage: StorageOption, s3: S3AccessOptions, write: S3WriteOptions? = nil, scope: ScopeOptions,
                        tools: ToolOptions? = nil) throws(CommandLineError) -> WorkerContext {
        guard let url = WorkerOption.storage.resolved(storage.storage) else {
            throw .usage("missing --storage (or \(WorkerOption.storage.environmentVariable)); say where backups live, e.g. --storage file:///var/backups or s3://bucket/folder")
        }
        let location = try scope.location()
        var settings = StorageLocation.S3Settings()
        settings.origins.storage = url.name
        func take(_ option: WorkerOption, _ flag: String?, into keyPath: WritableKeyPath<StorageLocation.S3Settings, String?>,
                  origin: WritableKeyPath<StorageLocation.Origins, String>? = nil) {
            guard let value = option.resolved(flag) else { return }
            settings[keyPath: keyPath] = value.value
            if let origin { settings.origins[keyPath: origin] = value.name }
        }
        take(.s3Endpoint, s3.endpoint, into: \.endpoint, origin: \.endpoint)
        take(.s3Region, s3.region, into: \.region)
        take(.s3CAFile, s3.caFile, into: \.caFile, origin: \.caFile)
        take(.s3CredentialsDir, s3.credentialsDirectory, into: \.credentialsDirectory, origin: \.credentialsDirectory)
        settings.pathStyle = try WorkerOption.s3PathStyle.resolvedSwitch(s3.pathStyle)
        if let write {
            take(.s3SSE, write.sse, into: \.serverSideEncryption, origin: \.serverSideEncryption)
            take(.s3KMSKeyID, write.kmsKeyID, into: \.kmsKeyID, origin: \.kmsKeyID)
            if let storageClass = WorkerOption.s3StorageClass.resolved(write.storageClass) {
                // Refused now: S3 would refuse an unknown class only after the whole dump went up.
                do { try StorageTier.checkReadable(storageClass.value, field: storageClass.shown) }
                catch { throw .usage(error.description) }
                settings.storageClass = storageClass.value
            }
        }
        let opened: any ObjectStorage
        do { opened = try StorageLocation.open(url.value, s3: settings, environment: ProcessInfo.processInfo.environment) }
        catch { throw .usage(error.message) }
        let binDirectory = tools.flatMap { WorkerOption.pgBin.resolved($0.pgBin) }
        if let binDirectory, !FileManager.default.isExecutableFile(atPath: binDirectory.value + "/pg_dump") {
            throw .usage("\(binDirectory.shown): no pg_dump there; point it at the folder holding pg_dump and pg_restore, e.g. /usr/lib/postgresql/17/bin")
        }
        return WorkerContext(storage: opened, location: location, logger: logger(), postgresBinDirectory: binDirectory?.value)
    }
}
