public import Foundation
public import HTTP
public import KubeClient
public import KubeRuntime
public import Logging
internal import Workloads

extension PolicyReconciler {
    /// The BackupPolicy controller for one scope (a namespace, or all when nil): the policy
    /// watch, the watches of the CronJobs and Jobs it made (by label, into the caches the
    /// reconciler reads), and `workers` reconcilers.
    public static func controller(client: KubeClient, namespace: String?, workerImage: String, workers: Int = 2,
                                  logger: Logger, metrics: Metrics = Metrics(), backoff: Backoff = Backoff(),
                                  capabilities: ServerCapabilities = ServerCapabilities(), notifications: NotificationOutbox? = nil,
                                  now: @escaping @Sendable () -> Date = { Date() }) -> Controller<ObservedPolicy> {
        let owned = OwnedObjects()
        let reconciler = PolicyReconciler(client: client, workerImage: workerImage, owned: owned, logger: logger, metrics: metrics,
                                          capabilities: capabilities, notifications: notifications, now: now)
        // Backup CronJobs and Jobs only: restore Jobs have a controller of their own.
        let ours = "app.kubernetes.io/managed-by=\(CronJobBuilder.managedBy),app.kubernetes.io/name=\(CronJobBuilder.backupWorkerName)"
        let controller = Controller(
            watcher: Watcher(client: client, resource: .backupPolicies, namespace: namespace, backoff: backoff),
            owned: [
                .init(Watcher(client: client, resource: .cronJobs, namespace: namespace, labelSelector: ours, backoff: backoff),
                      cache: owned.cronJobs, owner: { OwnedObjects.ownerKey(of: $0.metadata) },
                      needsReconcile: { !reconciler.memo.isEcho(of: $0) }),
                .init(Watcher(client: client, resource: .jobs, namespace: namespace, labelSelector: ours, backoff: backoff),
                      cache: owned.jobs, owner: { OwnedObjects.ownerKey(of: $0.metadata) }),
            ],
            workers: workers, logger: logger, needsReconcile: needsReconcile, errorPolicy: errorPolicy) { key, object in
                try await reconciler.reconcile(key: key, object: object)
            }
        // A finished delivery asks for a pass, which writes its outcome into the status.
        notifications?.setWake { [queue = controller.queue] key in Task { await queue.add(key) } }
        return controller
    }
}
