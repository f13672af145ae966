/// The one table of worker options. The CLI derives its flag names from it and reads the
/// environment variables it names; the CronJob builder sets the same variables. Keeping
/// both on this table means a renamed option cannot drift between the two planes.
public enum WorkerOption: String, CaseIterable, Sendable {
    case storage
    case namespace
    case policy
    case environment
    case database
    case passwordFile = "password-file"
    case compression
    case level
    /// `backstop backup --physical` (`BACKSTOP_PHYSICAL=true`): a base backup of the cluster.
    case physical
    case encryptionKeyFile = "encryption-key-file"
    case passphraseFile = "passphrase-file"
    case target
    /// `backstop drill`: the server on which the drill creates (and drops) its own database.
    case scratch
    case output
    case reportPath = "report-path"
    case pgBin = "pg-bin"
    case s3Endpoint = "s3-endpoint"
    case s3Region = "s3-region"
    case s3PathStyle = "s3-path-style"
    case s3CAFile = "s3-ca-file"
    case s3SSE = "s3-sse"
    case s3KMSKeyID = "s3-kms-key-id"
    case s3StorageClass = "s3-storage-class"
    case s3CredentialsDir = "s3-credentials-dir"
    case keepWithin = "keep-within"
    case keepLast = "keep-last"
    case keepHourly = "keep-hourly"
    case keepDaily = "keep-daily"
    case keepWeekly = "keep-weekly"
    case keepMonthly = "keep-monthly"
    case keepYearly = "keep-yearly"
    case minAge = "min-age"
    case timeZone = "time-zone"
    case orphanGrace = "orphan-grace"
    /// Comma-separated in the variable: `30d:STANDARD_IA,90d:GLACIER_IR`.
    case tier
    /// `wal-push`: how many other ready segments a push archives ahead, and where it notes them.
    case pushAhead = "push-ahead"
    case spoolDir = "spool-dir"
    /// `wal-fetch`: how many following segments a fetch restores ahead into the spool.
    case prefetch
    /// `backup`: label selectors of the namespace's Secrets and ConfigMaps stored beside the dump.
    case secrets
    case configMaps = "config-maps"

    /// The long flag, without dashes: `encryption-key-file`.
    public var flag: String { rawValue }

    /// `BACKSTOP_ENCRYPTION_KEY_FILE`.
    public var environmentVariable: String {
        "BACKSTOP_" + rawValue.uppercased().replacingDashes()
    }

    /// Names a default where the option has one; `nil` means the option is required or
    /// optional without a default.
    public var defaultValue: String? {
        switch self {
        case .namespace: "default"
        case .policy: "default"
        case .environment: "default"
        case .compression: CompressionAlgorithm.zstd.rawValue
        case .output: "text"
        case .minAge: RetentionPolicy.defaultMinAge.description
        case .timeZone: "Etc/UTC"
        case .orphanGrace: "24h"
        default: nil
        }
    }

    /// Resolves an option: the flag wins over the environment variable, which wins over the
    /// default. Empty environment values count as unset, as Kubernetes often renders them.
    public func resolve(flag value: String?, environment: [String: String]) -> String? {
        resolved(flag: value, environment: environment)?.value
    }

    /// An option's value and where it came from, so a message about a bad value names what the
    /// user wrote: `--compression lz4`, or `BACKSTOP_COMPRESSION=lz4`.
    public struct Resolved: Sendable, Equatable {
        public let value: String
        /// `--compression`, or `BACKSTOP_COMPRESSION` when the value came from the environment.
        public let name: String
        public let fromEnvironment: Bool

        /// The value as the user wrote it.
        public var shown: String { fromEnvironment ? "\(name)=\(value)" : "\(name) \(value)" }
    }

    public func resolved(flag value: String?, environment: [String: String]) -> Resolved? {
        if let value { return Resolved(value: value, name: "--" + flag, fromEnvironment: false) }
        if let fromEnvironment = environment[environmentVariable], !fromEnvironment.isEmpty {
            return Resolved(value: fromEnvironment, name: environmentVariable, fromEnvironment: true)
        }
        return defaultValue.map { Resolved(value: $0, name: "--" + flag, fromEnvironment: false) }
    }
}

extension String {
    fileprivate func replacingDashes() -> String {
        String(map { $0 == "-" ? "_" : $0 })
    }
}
