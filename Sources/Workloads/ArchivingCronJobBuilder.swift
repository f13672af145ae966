internal import BackstopAPI
internal import KubeObjects

/// The check of an environment's WAL archiving as a CronJob `<policy>-<environment>-archiving`:
/// every few minutes the environment's worker pod runs `backstop wal-status` (the archive's
/// newest file, the server's pg_stat_archiver) and reports; the controller turns the reports
/// into the condition ContinuousArchiving and the WAL metrics.
extension CronJobBuilder {
    public static let archivingTask = "archiving"
    /// Often enough for an RPO of minutes, rarely enough to cost nothing.
    public static let archivingSchedule = "*/5 * * * *"

    public static func archivingName(policy: String, environment: String) -> String {
        name(policy: policy, environment: environment + "-archiving")
    }

    func archivingCronJob(_ policy: BackupPolicy, _ environment: BackupPolicy.ResolvedEnvironment) -> CronJob? {
        guard environment.walArchiving else { return nil }
        let labels = Self.labels(policy, environment).merging([Self.taskLabel: Self.archivingTask]) { _, task in task }
        let owner = Self.controllerReference(apiVersion: BackupPolicy.apiVersion, kind: BackupPolicy.kind, metadata: policy.metadata)
        let (variables, mounts, volumes) = worker(policy, environment, database: databaseVariables(environment.database, option: .database))
        let template = podTemplate(policy, labels: labels, container: "wal-status", arguments: ["wal-status"],
                                   variables: variables, mounts: mounts, volumes: volumes)
        return CronJob(
            metadata: ObjectMeta(name: Self.archivingName(policy: policy.metadata.name, environment: environment.name),
                                 namespace: policy.metadata.namespace, labels: labels, ownerReferences: owner),
            spec: .init(schedule: Self.archivingSchedule, timeZone: environment.timeZone, suspend: environment.suspend,
                        concurrencyPolicy: "Forbid", startingDeadlineSeconds: 240, successfulJobsHistoryLimit: 1, failedJobsHistoryLimit: 1,
                        jobTemplate: .init(metadata: .init(labels: labels), spec: .init(
                            // The next check comes in minutes: no retries, and never two at once.
                            backoffLimit: 0, activeDeadlineSeconds: 240, ttlSecondsAfterFinished: nil, template: template))))
    }
}
