public import KubeObjects

/// The conditions a BackupPolicy's status carries.
extension Condition.ConditionType {
    /// The CronJobs match the policy (or why they cannot).
    public static let ready: Self = "Ready"
    public static let lastBackupSucceeded: Self = "LastBackupSucceeded"
    /// Every environment with an RPO has a recent enough backup.
    public static let rpoMet: Self = "RPOMet"
    /// The prune after each environment's last backup worked.
    public static let retentionApplied: Self = "RetentionApplied"
    /// The API server honours the policy's time zone in its CronJobs.
    public static let scheduleTimeZone: Self = "ScheduleTimeZone"
    /// The last restore drill of every environment with drills succeeded.
    public static let restoreVerified: Self = "RestoreVerified"
    /// Every drilled restore took no longer than its environment's RTO.
    public static let rtoMet: Self = "RTOMet"
    /// Every environment with walArchiving archives within its RPO, and archive_command is
    /// not failing.
    public static let continuousArchiving: Self = "ContinuousArchiving"
}

extension Condition.Reason {
    public static let reconciled: Self = "Reconciled"
    public static let invalidSpec: Self = "InvalidSpec"
    public static let cronJobConflict: Self = "CronJobConflict"
    public static let applyFailed: Self = "ApplyFailed"
    public static let withinObjective: Self = "WithinObjective"
    public static let rpoBreached: Self = "RPOBreached"
    public static let backupSucceeded: Self = "BackupSucceeded"
    public static let backupFailed: Self = "BackupFailed"
    public static let pruned: Self = "Pruned"
    public static let pruneFailed: Self = "PruneFailed"
    public static let supported: Self = "Supported"
    public static let unsupported: Self = "Unsupported"
    public static let drillSucceeded: Self = "DrillSucceeded"
    public static let drillFailed: Self = "DrillFailed"
    public static let noDrillYet: Self = "NoDrillYet"
    public static let sidecarUnsupported: Self = "SidecarUnsupported"
    public static let rtoBreached: Self = "RTOBreached"
    public static let archivingCurrent: Self = "ArchivingCurrent"
    public static let archiveFailing: Self = "ArchiveFailing"
    public static let archiveLagging: Self = "ArchiveLagging"
    public static let noArchiveCheckYet: Self = "NoArchiveCheckYet"
}
