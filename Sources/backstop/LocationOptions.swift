import ArgumentParser
import BackstopAPI
import Engine
import Foundation
import Logging
import Storage

/// Options every command shares: where the backups are. Each falls back to its
/// `BACKSTOP_*` variable from `WorkerOption`, the table the CronJob builder uses too.
struct LocationOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.storage.flag),
            help: "Where backups live: file:///path or s3://bucket/folder (env \(WorkerOption.storage.environmentVariable)).")
    var storage: String?

    @OptionGroup(title: "S3")
    var s3: S3Options

    @Option(name: .customLong(WorkerOption.namespace.flag),
            help: "Kubernetes namespace of the policy (env \(WorkerOption.namespace.environmentVariable); default default).")
    var namespace: String?

    @Option(name: .customLong(WorkerOption.policy.flag),
            help: "BackupPolicy name (env \(WorkerOption.policy.environmentVariable); default default).")
    var policy: String?

    @Option(name: .customLong(WorkerOption.environment.flag),
            help: "Environment of the policy, e.g. production (env \(WorkerOption.environment.environmentVariable); default default).")
    var environment: String?

    @Option(name: .customLong(WorkerOption.pgBin.flag),
            help: "Folder with pg_dump and pg_restore (env \(WorkerOption.pgBin.environmentVariable); default: the newest installed).")
    var pgBin: String?

    /// Builds the context, or fails with a usage error naming the option.
    func context(logger: Logger) throws -> WorkerContext {
        let environment = ProcessInfo.processInfo.environment
        guard let storageURL = WorkerOption.storage.resolve(flag: storage, environment: environment) else {
            throw ValidationError("missing --storage (or \(WorkerOption.storage.environmentVariable)): where backups live, e.g. --storage file:///var/backups")
        }
        let location: BackupLocation
        do {
            location = try BackupLocation(
                namespace: WorkerOption.namespace.resolve(flag: namespace, environment: environment) ?? "default",
                policy: WorkerOption.policy.resolve(flag: policy, environment: environment) ?? "default",
                environment: WorkerOption.environment.resolve(flag: self.environment, environment: environment) ?? "default")
        } catch {
            throw ValidationError("--\(error.field): \(error.problem); \(error.fix)")
        }
        let storage: any ObjectStorage
        let s3Settings = try s3.settings(environment: environment)
        do { storage = try StorageLocation.open(storageURL, s3: s3Settings, environment: environment) } catch {
            throw ValidationError(error.message)
        }
        return WorkerContext(storage: storage, location: location, logger: logger,
                             postgresBinDirectory: WorkerOption.pgBin.resolve(flag: pgBin, environment: environment))
    }
}

/// `--s3-*`: how an `s3://` location is reached. Credentials come from the standard AWS
/// variables, a mounted Secret folder, or web identity; never from a flag.
struct S3Options: ParsableArguments {
    @Option(name: .customLong(WorkerOption.s3Endpoint.flag),
            help: "S3-compatible endpoint URL, e.g. https://minio.storage:9000 (env \(WorkerOption.s3Endpoint.environmentVariable); default AWS).")
    var endpoint: String?

    @Option(name: .customLong(WorkerOption.s3Region.flag),
            help: "Region (env \(WorkerOption.s3Region.environmentVariable), then AWS_REGION, AWS_DEFAULT_REGION; default us-east-1).")
    var region: String?

    @Flag(name: .customLong(WorkerOption.s3PathStyle.flag),
          help: "Address the bucket in the path, not the host name (MinIO, Ceph) (env \(WorkerOption.s3PathStyle.environmentVariable)=true).")
    var pathStyle = false

    @Option(name: .customLong(WorkerOption.s3CAFile.flag),
            help: "PEM file of a CA to trust for the endpoint (env \(WorkerOption.s3CAFile.environmentVariable)).")
    var caFile: String?

    @Option(name: .customLong(WorkerOption.s3SSE.flag),
            help: "Server-side encryption: AES256 or aws:kms (env \(WorkerOption.s3SSE.environmentVariable)).")
    var sse: String?

    @Option(name: .customLong(WorkerOption.s3KMSKeyID.flag),
            help: "KMS key for --s3-sse aws:kms (env \(WorkerOption.s3KMSKeyID.environmentVariable); default: the bucket's).")
    var kmsKeyID: String?

    @Option(name: .customLong(WorkerOption.s3StorageClass.flag),
            help: "Storage class of new objects, e.g. STANDARD_IA (env \(WorkerOption.s3StorageClass.environmentVariable)).")
    var storageClass: String?

    @Option(name: .customLong(WorkerOption.s3CredentialsDir.flag),
            help: "Folder with files AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY [, AWS_SESSION_TOKEN] from a mounted Secret (env \(WorkerOption.s3CredentialsDir.environmentVariable)).")
    var credentialsDirectory: String?

    func settings(environment: [String: String]) throws -> StorageLocation.S3Settings {
        var settings = StorageLocation.S3Settings()
        settings.endpoint = WorkerOption.s3Endpoint.resolve(flag: endpoint, environment: environment)
        settings.region = WorkerOption.s3Region.resolve(flag: region, environment: environment)
        let pathStyleText = WorkerOption.s3PathStyle.resolve(flag: pathStyle ? "true" : nil, environment: environment) ?? "false"
        guard let pathStyle = Bool(pathStyleText) else {
            throw ValidationError("\(WorkerOption.s3PathStyle.environmentVariable)=\(pathStyleText): use true or false")
        }
        settings.pathStyle = pathStyle
        settings.caFile = WorkerOption.s3CAFile.resolve(flag: caFile, environment: environment)
        settings.serverSideEncryption = WorkerOption.s3SSE.resolve(flag: sse, environment: environment)
        settings.kmsKeyID = WorkerOption.s3KMSKeyID.resolve(flag: kmsKeyID, environment: environment)
        settings.storageClass = WorkerOption.s3StorageClass.resolve(flag: storageClass, environment: environment)
        settings.credentialsDirectory = WorkerOption.s3CredentialsDir.resolve(flag: credentialsDirectory, environment: environment)
        return settings
    }
}

/// `--encryption-key-file` / `--passphrase-file`.
struct EncryptionOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.encryptionKeyFile.flag),
            help: "File with a 32-byte key, raw or base64 (env \(WorkerOption.encryptionKeyFile.environmentVariable)).")
    var encryptionKeyFile: String?

    @Option(name: .customLong(WorkerOption.passphraseFile.flag),
            help: "File with a passphrase, stretched with scrypt (env \(WorkerOption.passphraseFile.environmentVariable)).")
    var passphraseFile: String?

    func source() throws -> EncryptionSource {
        let environment = ProcessInfo.processInfo.environment
        do {
            return try EncryptionSource(
                keyFile: WorkerOption.encryptionKeyFile.resolve(flag: encryptionKeyFile, environment: environment),
                passphraseFile: WorkerOption.passphraseFile.resolve(flag: passphraseFile, environment: environment))
        } catch {
            throw ValidationError(error.message)
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
}
