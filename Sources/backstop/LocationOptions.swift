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
            help: "Where backups live: file:///path (env \(WorkerOption.storage.environmentVariable)).")
    var storage: String?

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
        do { storage = try StorageLocation.open(storageURL) } catch {
            throw ValidationError(error.message)
        }
        return WorkerContext(storage: storage, location: location, logger: logger,
                             postgresBinDirectory: WorkerOption.pgBin.resolve(flag: pgBin, environment: environment))
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
