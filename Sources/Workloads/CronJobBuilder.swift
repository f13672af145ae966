public import BackstopAPI
internal import Foundation
public import KubeObjects

/// Policy in, CronJobs out: one per environment, running the worker with its options as the
/// `BACKSTOP_*` variables of BackstopAPI's one table. Pure: the controller and
/// `backstop render` get the same objects.
public struct CronJobBuilder: Sendable {
    public struct Settings: Sendable {
        /// The worker image when the policy names none.
        public var workerImage: String
        /// Numeric, as the restricted Pod Security profile wants.
        public var userID: Int

        public init(workerImage: String, userID: Int = 65_532) {
            self.workerImage = workerImage
            self.userID = userID
        }
    }

    public static let managedBy = "backstop"
    public static let policyLabel = "backstop.dev/policy"
    public static let environmentLabel = "backstop.dev/environment"
    /// Secrets are mounted here, never copied into the CronJob.
    static let secretsRoot = "/var/run/secrets/backstop"

    let settings: Settings

    public init(settings: Settings) {
        self.settings = settings
    }

    /// The annotation on each CronJob that names its desired state: a hash of everything
    /// the builder set. The controller compares it, not the object, with what it wants: the
    /// API server fills defaults in, rewrites quantities and drops fields it does not serve.
    public static let specHashAnnotation = "backstop.dev/spec-hash"

    /// A CronJob as built, with the configuration a server-side apply sends for it (the same
    /// object as JSON, encoded once for both the hash and the apply).
    public struct Built: Sendable {
        public let cronJob: CronJob
        public let configuration: JSONValue
    }

    /// One CronJob per environment, in the policy's order. `cronJobTimeZone` is false for an
    /// API server that does not serve `spec.timeZone` (before 1.25): the field is left out.
    public func cronJobs(for policy: BackupPolicy, cronJobTimeZone: Bool = true) throws(BackstopAPIError) -> [CronJob] {
        try build(for: policy, cronJobTimeZone: cronJobTimeZone).map(\.cronJob)
    }

    /// The same, each with its apply configuration.
    public func build(for policy: BackupPolicy, cronJobTimeZone: Bool = true) throws(BackstopAPIError) -> [Built] {
        var cronJobs: [CronJob] = []
        var owners: [String: String] = [:]
        for (index, environment) in try policy.resolvedEnvironments().enumerated() {
            for cronJob in [cronJob(policy, environment), drillCronJob(policy, environment), archivingCronJob(policy, environment)].compactMap({ $0 }) {
                // `a` with a drill and `a-drill` would both want the CronJob <policy>-a-drill.
                if let other = owners.updateValue(environment.name, forKey: cronJob.metadata.name) {
                    throw BackstopAPIError(field: "spec.environments[\(index)].name",
                                           problem: "environment \(environment.name) and environment \(other) would both have the CronJob \(cronJob.metadata.name)",
                                           fix: "rename one of them (a name ending in -drill or -archiving collides with another environment's drill or archiving check)")
                }
                cronJobs.append(cronJob)
            }
        }
        return cronJobs.map { cronJob in
            var built = cronJob
            if !cronJobTimeZone { built.spec.timeZone = nil }
            var configuration = built.jsonValue
            // The hash of everything else (keys sorted), stable across processes.
            let hash = FNV1a.hex(of: configuration.encodedBytes())
            built.metadata.annotations = [Self.specHashAnnotation: hash]
            configuration["metadata"]?["annotations"] = [Self.specHashAnnotation: .string(hash)]
            return Built(cronJob: built, configuration: configuration)
        }
    }

    /// `<policy>-<environment>`, shortened with a hash when over the 52 characters a CronJob
    /// name may have (its Jobs append 11).
    public static func name(policy: String, environment: String) -> String {
        let full = "\(policy)-\(environment)"
        guard full.count > 52 else { return full }
        return String(full.prefix(43)) + "-" + String(FNV1a.hex(of: full).prefix(8))
    }

    func cronJob(_ policy: BackupPolicy, _ environment: BackupPolicy.ResolvedEnvironment) -> CronJob {
        let labels = Self.labels(policy, environment)
        let template = policy.spec.jobTemplate
        let owner = Self.controllerReference(apiVersion: BackupPolicy.apiVersion, kind: BackupPolicy.kind, metadata: policy.metadata)
        var (variables, mounts, volumes) = worker(policy, environment, database: databaseVariables(environment.database, option: .database))
        variables += retentionVariables(environment)
        if environment.method == .physical { variables.append(.plain(WorkerOption.physical.environmentVariable, "true")) }
        for kind in NamespaceObjects.Kind.allCases {
            if let selector = environment.objects?.selectors[kind] { variables.append(.plain(kind.workerOption.environmentVariable, selector)) }
        }
        return CronJob(
            metadata: ObjectMeta(name: Self.name(policy: policy.metadata.name, environment: environment.name),
                                     namespace: policy.metadata.namespace, labels: labels, ownerReferences: owner),
            spec: .init(schedule: environment.schedule, timeZone: environment.timeZone, suspend: environment.suspend,
                        concurrencyPolicy: policy.spec.concurrencyPolicy ?? "Forbid",
                        startingDeadlineSeconds: policy.spec.startingDeadlineSeconds,
                        successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 3,
                        jobTemplate: .init(metadata: .init(labels: labels), spec: .init(
                            // One retry at most: a failing dump is not worth six.
                            backoffLimit: template?.backoffLimit ?? 1,
                            activeDeadlineSeconds: template?.activeDeadlineSeconds ?? 6 * 3_600,
                            ttlSecondsAfterFinished: nil,
                            template: podTemplate(policy, labels: labels, container: "backup", arguments: ["backup"],
                                                  variables: variables, mounts: mounts, volumes: volumes,
                                                  apiAccount: environment.objects?.serviceAccountName)))))
    }

    /// The `app.kubernetes.io/name` of backup Jobs: the policy controller watches only these.
    public static let backupWorkerName = "backstop-worker"

    /// The labels of an environment's CronJobs, their Jobs and pods: how the controller finds them.
    static func labels(_ policy: BackupPolicy, _ environment: BackupPolicy.ResolvedEnvironment) -> [String: String] {
        ["app.kubernetes.io/managed-by": managedBy, "app.kubernetes.io/name": backupWorkerName,
         policyLabel: policy.metadata.name, environmentLabel: environment.name]
    }

    /// The owner reference that makes an object its owner's to control (and to garbage-collect
    /// with it); none before the owner has a uid (`backstop render` of a file).
    static func controllerReference(apiVersion: String, kind: String, metadata: ObjectMeta) -> [OwnerReference]? {
        metadata.uid.map { [OwnerReference(apiVersion: apiVersion, kind: kind, name: metadata.name, uid: $0, controller: true, blockOwnerDeletion: true)] }
    }

    /// The worker's pod as every Backstop Job runs it: restricted security, no API token, the
    /// user's `jobTemplate` settings, one container with the worker's `arguments`.
    /// `apiAccount` is the exception: a pod that reads or writes Secrets and ConfigMaps runs as
    /// that ServiceAccount with its token mounted.
    func podTemplate(_ policy: BackupPolicy, labels: [String: String], container name: String, arguments: [String],
                     variables: [EnvVar], mounts: [VolumeMount], volumes: [Volume], apiAccount: String? = nil) -> PodTemplate {
        let template = policy.spec.jobTemplate
        // The user's pod labels and annotations first, Backstop's own over them: its labels
        // are how the controller finds its Jobs.
        let podLabels = (template?.labels ?? [:]).merging(labels) { _, ours in ours }
        let pod = PodSpec(
            serviceAccountName: apiAccount ?? template?.serviceAccountName,
            // Otherwise the worker needs no Kubernetes API access: it reads the database and
            // storage only.
            automountServiceAccountToken: apiAccount != nil,
            restartPolicy: "Never",
            securityContext: .init(runAsNonRoot: true, runAsUser: settings.userID, runAsGroup: settings.userID, fsGroup: settings.userID,
                                   seccompProfile: .init(type: "RuntimeDefault")),
            imagePullSecrets: template?.imagePullSecrets.map { $0.map { .init(name: $0.name) } },
            nodeSelector: template?.nodeSelector,
            tolerations: template?.tolerations,
            affinity: template?.affinity,
            priorityClassName: template?.priorityClassName,
            containers: [Container(
                name: name, image: template?.image ?? settings.workerImage, args: arguments, env: variables,
                resources: template?.resources.map { .init(requests: $0["requests"], limits: $0["limits"]) },
                securityContext: .init(allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true,
                                       capabilities: .init(drop: ["ALL"])),
                // The worker writes its report there; if it dies first, the log's tail stands in.
                terminationMessagePolicy: "FallbackToLogsOnError",
                volumeMounts: mounts)],
            volumes: volumes)
        return PodTemplate(metadata: .init(labels: podLabels, annotations: template?.annotations), spec: pod)
    }

    /// A database's connection as the worker's `option` (`BACKSTOP_DATABASE`, `BACKSTOP_TARGET`),
    /// with the user and password from its Secret.
    func databaseVariables(_ database: BackupPolicy.Database, option: WorkerOption) -> [EnvVar] {
        var variables: [EnvVar] = [.plain(option.environmentVariable, "host=\(database.host ?? "") port=\(database.port ?? 5432) dbname=\(database.name ?? "") sslmode=\(database.sslMode ?? "require")")]
        if let secret = database.credentialsSecret {
            variables.append(.secret("PGUSER", secret: secret, key: "username"))
            variables.append(.secret("PGPASSWORD", secret: secret, key: "password"))
        }
        return variables
    }

    /// The prune after each backup: the environment's retention rules and tiers.
    func retentionVariables(_ environment: BackupPolicy.ResolvedEnvironment) -> [EnvVar] {
        guard let retention = environment.retention else { return [] }
        func option(_ option: WorkerOption, _ value: String) -> EnvVar { .plain(option.environmentVariable, value) }
        var variables: [EnvVar] = []
        let keep = retention.keep
        if let within = keep.within { variables.append(option(.keepWithin, within.description)) }
        for (rule, value) in [(WorkerOption.keepLast, keep.last), (.keepHourly, keep.hourly), (.keepDaily, keep.daily),
                              (.keepWeekly, keep.weekly), (.keepMonthly, keep.monthly), (.keepYearly, keep.yearly)] {
            if let value { variables.append(option(rule, "\(value)")) }
        }
        variables.append(option(.minAge, retention.minAge.description))
        variables.append(option(.timeZone, retention.timeZone))
        if !environment.tiers.isEmpty {
            variables.append(option(.tier, environment.tiers.map(\.description).joined(separator: ",")))
        }
        return variables
    }

    /// The worker's environment, mounts and volumes for reaching an environment's backups:
    /// options from the one table, Secrets as files. The database and retention come apart
    /// (`databaseVariables`, `retentionVariables`): a restore needs neither the source's.
    func worker(_ policy: BackupPolicy, _ environment: BackupPolicy.ResolvedEnvironment, database: [EnvVar]) -> ([EnvVar], [VolumeMount], [Volume]) {
        func option(_ option: WorkerOption, _ value: String) -> EnvVar { .plain(option.environmentVariable, value) }
        var variables: [EnvVar] = [
            .field(WorkerOption.namespace.environmentVariable, "metadata.namespace"),
            option(.policy, policy.metadata.name),
            option(.environment, environment.name),
            option(.reportPath, "/dev/termination-log"),
        ] + database
        var mounts = [VolumeMount(name: "scratch", mountPath: "/tmp")]
        var volumes = [Volume(name: "scratch", emptyDir: .init(sizeLimit: "64Mi"))]
        func mountSecret(_ volume: String, secret: String, at path: String) {
            mounts.append(VolumeMount(name: volume, mountPath: path, readOnly: true))
            volumes.append(Volume(name: volume, secret: .init(secretName: secret, defaultMode: 0o400)))
        }

        if let s3 = policy.spec.storage.s3 {
            let prefix = (s3.prefix ?? "").split(separator: "/").joined(separator: "/")
            variables.append(option(.storage, "s3://\(s3.bucket)" + (prefix.isEmpty ? "" : "/\(prefix)")))
            if let region = s3.region { variables.append(option(.s3Region, region)) }
            if let endpoint = s3.endpoint, !endpoint.isEmpty { variables.append(option(.s3Endpoint, endpoint)) }
            if s3.forcePathStyle == true { variables.append(option(.s3PathStyle, "true")) }
            if let sse = s3.serverSideEncryption, !sse.isEmpty { variables.append(option(.s3SSE, sse)) }
            if let key = s3.kmsKeyId, !key.isEmpty { variables.append(option(.s3KMSKeyID, key)) }
            if let storageClass = s3.storageClass, !storageClass.isEmpty { variables.append(option(.s3StorageClass, storageClass)) }
            if let secret = s3.credentialsSecret {
                mountSecret("s3-credentials", secret: secret, at: "\(Self.secretsRoot)/s3")
                variables.append(option(.s3CredentialsDir, "\(Self.secretsRoot)/s3"))
            }
            if let secret = s3.caSecret {
                mountSecret("s3-ca", secret: secret, at: "\(Self.secretsRoot)/s3-ca")
                variables.append(option(.s3CAFile, "\(Self.secretsRoot)/s3-ca/ca.crt"))
            }
        } else if let file = policy.spec.storage.file {
            variables.append(option(.storage, "file://" + file.path))
            if let claim = file.claimName {
                mounts.append(VolumeMount(name: "backups", mountPath: file.path))
                volumes.append(Volume(name: "backups", persistentVolumeClaim: .init(claimName: claim)))
            }
        }

        if let compression = policy.spec.compression {
            if let algorithm = compression.algorithm { variables.append(option(.compression, algorithm.rawValue)) }
            if let level = compression.level { variables.append(option(.level, "\(level)")) }
        }
        if let key = policy.spec.encryption?.keySecret {
            mountSecret("encryption-key", secret: key.name, at: "\(Self.secretsRoot)/encryption")
            variables.append(option(.encryptionKeyFile, "\(Self.secretsRoot)/encryption/\(key.key ?? "key")"))
        } else if let passphrase = policy.spec.encryption?.passphraseSecret {
            mountSecret("encryption-passphrase", secret: passphrase.name, at: "\(Self.secretsRoot)/encryption")
            variables.append(option(.passphraseFile, "\(Self.secretsRoot)/encryption/\(passphrase.key ?? "passphrase")"))
        }

        return (variables, mounts, volumes)
    }
}


extension CronJobBuilder {
    public static let runNowAnnotation = "backstop.dev/run-now"
    public static let runNowEnvironmentAnnotation = "backstop.dev/run-now-environment"

    /// A Job from an environment's CronJob, started now for the `run-now` annotation `value`.
    /// Its name derives from the value, so asking twice for the same value makes one Job.
    public static func runNowJob(from cronJob: CronJob, value: String) -> Job {
        var labels = cronJob.spec.jobTemplate.metadata.labels
        labels["backstop.dev/trigger"] = "run-now"
        let name = String(cronJob.metadata.name.prefix(43)) + "-now-" + String(FNV1a.hex(of: value).prefix(6))
        return Job(metadata: ObjectMeta(name: name, namespace: cronJob.metadata.namespace, labels: labels,
                                            annotations: [runNowAnnotation: value], ownerReferences: cronJob.metadata.ownerReferences),
                   spec: cronJob.spec.jobTemplate.spec)
    }
}
