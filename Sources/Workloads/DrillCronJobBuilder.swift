internal import BackstopAPI
internal import KubeObjects

/// An environment's restore drill as a CronJob `<policy>-<environment>-drill`: the
/// environment's worker pod running `backstop drill`, into a named scratch server or into a
/// PostgreSQL sidecar of the backup's major version that lives and dies with the pod.
extension CronJobBuilder {
    /// Set to `drill` on drill CronJobs, their Jobs and pods (absent on backups).
    public static let taskLabel = "backstop.dev/task"
    public static let drillTask = "drill"
    /// The sidecar's image when the backup's server version is not known yet.
    static let defaultScratchMajorVersion = 17
    /// Where the sidecar listens: inside the pod only.
    static let sidecarConnection = "host=127.0.0.1 port=5432 dbname=postgres user=postgres sslmode=disable"

    public static func drillName(policy: String, environment: String) -> String {
        name(policy: policy, environment: environment + "-drill")
    }

    func drillCronJob(_ policy: BackupPolicy, _ environment: BackupPolicy.ResolvedEnvironment) -> CronJob? {
        guard let drill = environment.drill else { return nil }
        let labels = Self.labels(policy, environment).merging([Self.taskLabel: Self.drillTask]) { _, task in task }
        let owner = Self.controllerReference(apiVersion: BackupPolicy.apiVersion, kind: BackupPolicy.kind, metadata: policy.metadata)
        let scratch: [EnvVar]
        switch drill.scratch {
        case .server(let database): scratch = databaseVariables(database, option: .scratch)
        case .sidecar: scratch = [.plain(WorkerOption.scratch.environmentVariable, Self.sidecarConnection)]
        }
        let (variables, mounts, baseVolumes) = worker(policy, environment, database: scratch)
        var volumes = baseVolumes
        var sidecars: [Container]?
        if case .sidecar(let image) = drill.scratch {
            let major = policy.status?.environments?.first { $0.name == environment.name }?.serverMajorVersion ?? Self.defaultScratchMajorVersion
            sidecars = [scratchPostgres(image: image ?? "postgres:\(major)")]
            volumes += ["scratch-pgdata", "scratch-pgrun", "scratch-pgtmp"].map { Volume(name: $0, emptyDir: .init(sizeLimit: nil)) }
        }
        var template = podTemplate(policy, labels: labels, container: "drill", arguments: ["drill"],
                                   variables: variables, mounts: mounts, volumes: volumes)
        template.spec.initContainers = sidecars
        return CronJob(
            metadata: ObjectMeta(name: Self.drillName(policy: policy.metadata.name, environment: environment.name),
                                 namespace: policy.metadata.namespace, labels: labels, ownerReferences: owner),
            spec: .init(schedule: drill.schedule, timeZone: environment.timeZone, suspend: drill.suspend, concurrencyPolicy: "Forbid",
                        startingDeadlineSeconds: policy.spec.startingDeadlineSeconds, successfulJobsHistoryLimit: 3, failedJobsHistoryLimit: 3,
                        jobTemplate: .init(metadata: .init(labels: labels), spec: .init(
                            // A failed drill is news, not something to retry until it passes.
                            backoffLimit: 0,
                            activeDeadlineSeconds: policy.spec.jobTemplate?.activeDeadlineSeconds ?? 6 * 3_600,
                            ttlSecondsAfterFinished: nil, template: template))))
    }

    /// The official `postgres` image as a native sidecar under the restricted Pod Security
    /// profile: the pod's non-root user (the image's entrypoint copes with any uid), a
    /// read-only root with its data, socket and temporary folders on emptyDirs, trust
    /// authentication because it listens on 127.0.0.1 only, started once `pg_isready` says so.
    func scratchPostgres(image: String) -> Container {
        Container(
            name: "scratch-postgres", image: image, args: ["-c", "listen_addresses=127.0.0.1"],
            env: [.plain("POSTGRES_HOST_AUTH_METHOD", "trust"), .plain("PGDATA", "/var/lib/postgresql/data/pgdata")],
            resources: nil,
            securityContext: .init(allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, runAsNonRoot: true,
                                   capabilities: .init(drop: ["ALL"])),
            terminationMessagePolicy: "FallbackToLogsOnError",
            volumeMounts: [VolumeMount(name: "scratch-pgdata", mountPath: "/var/lib/postgresql/data"),
                           VolumeMount(name: "scratch-pgrun", mountPath: "/var/run/postgresql"),
                           VolumeMount(name: "scratch-pgtmp", mountPath: "/tmp")],
            restartPolicy: "Always",
            startupProbe: .init(exec: .init(command: ["pg_isready", "-h", "127.0.0.1", "-U", "postgres"]), periodSeconds: 2, failureThreshold: 90))
    }
}
