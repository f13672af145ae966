public import BackstopAPI
internal import KubeObjects

/// A BackupRestore in, its one Job out: the environment's worker pod (the same Secrets,
/// security context, storage and encryption options, `jobTemplate` settings as its backup
/// CronJob) running `backstop restore` into the resolved target. Never retried: a restore
/// that failed is looked at, not repeated.
extension CronJobBuilder {
    /// The `app.kubernetes.io/name` of restore Jobs (the policy controller does not watch them).
    public static let restoreWorkerName = "backstop-restore"
    /// The label naming a restore Job's BackupRestore.
    public static let restoreLabel = "backstop.dev/restore"

    /// `<restore>-restore`, shortened with a hash when over 63 characters (a Job's name is a
    /// label value on its pods).
    public static func restoreJobName(_ restore: String) -> String {
        let full = "\(restore)-restore"
        guard full.count > 63 else { return full }
        return String(full.prefix(54)) + "-" + String(FNV1a.hex(of: full).prefix(8))
    }

    public func restoreJob(for restore: BackupRestore, policy: BackupPolicy) throws(BackstopAPIError) -> Job {
        let resolved = try restore.resolve(against: policy)
        let labels = [
            "app.kubernetes.io/managed-by": Self.managedBy,
            "app.kubernetes.io/name": Self.restoreWorkerName,
            Self.restoreLabel: restore.metadata.name,
        ]
        let owner = Self.controllerReference(apiVersion: BackupRestore.apiVersion, kind: BackupRestore.kind, metadata: restore.metadata)
        var (variables, mounts, volumes) = worker(policy, resolved.environment,
                                                  database: resolved.pointInTime == nil ? databaseVariables(resolved.target, option: .target) : [])
        var arguments = ["restore", resolved.backup]
        if let pointInTime = resolved.pointInTime {
            // The data directory for a new server, written as the server's user so its files
            // are the server's without a chown (which the restricted profile forbids).
            arguments += ["--physical", "--data-dir", pointInTime.dataDirectory, "--wal-fetch-path", pointInTime.walFetchPath]
                + pointInTime.target.arguments
            mounts.append(VolumeMount(name: "recovery", mountPath: pointInTime.mountPath))
            volumes.append(Volume(name: "recovery", persistentVolumeClaim: .init(claimName: pointInTime.claimName)))
        }
        if resolved.mode == .replace { arguments += ["--replace", "--confirm", resolved.target.name ?? ""] }
        if resolved.noOwner { arguments.append("--no-owner") }
        if resolved.objects { arguments.append("--with-objects") }
        var template = podTemplate(policy, labels: labels, container: "restore", arguments: arguments,
                                   variables: variables, mounts: mounts, volumes: volumes,
                                   apiAccount: resolved.objects ? resolved.environment.objects?.serviceAccountName : nil)
        if let user = resolved.pointInTime?.runAsUser {
            template.spec.securityContext.runAsUser = user
            template.spec.securityContext.runAsGroup = user
            template.spec.securityContext.fsGroup = user
        }
        return Job(
            metadata: ObjectMeta(name: Self.restoreJobName(restore.metadata.name), namespace: restore.metadata.namespace,
                                 labels: labels, ownerReferences: owner),
            spec: .init(backoffLimit: 0, activeDeadlineSeconds: resolved.activeDeadlineSeconds, ttlSecondsAfterFinished: nil,
                        template: template))
    }
}
