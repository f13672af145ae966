import ArgumentParser
import BlockingCalls
import CAllocator  // tunes glibc for a small steady footprint before main: see CAllocator.h
import Reconcilers
import Foundation
import KubeClient
import KubeRuntime
import Logging
import Workloads

/// The controller: keeps each BackupPolicy's CronJobs and status, and runs each BackupRestore
/// as one Job, one leader at a time.
@main
struct BackstopController: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backstop-controller",
        abstract: "Reconcile BackupPolicies into CronJobs and status, and BackupRestores into restore Jobs.",
        discussion: """
            Example (in a Deployment, with the ServiceAccount's token):
              backstop-controller --worker-image ghcr.io/backstop/backstop:0.1.0 --namespace shop --namespace billing
            Serves /healthz, /readyz and /metrics on --health-address.
            """)

    @Option(name: .customLong("namespace"), help: "Namespace to watch; repeat for several (env BACKSTOP_WATCH_NAMESPACES, comma-separated; default: all).")
    var namespaces: [String] = []

    @Option(help: "The worker image for CronJobs whose policy names none (env BACKSTOP_WORKER_IMAGE).")
    var workerImage: String?

    @Option(help: "host:port for /healthz, /readyz and /metrics (env BACKSTOP_HEALTH_ADDRESS).")
    var healthAddress: String?

    @Option(help: "true or false: elect one leader among replicas through a Lease (env BACKSTOP_LEADER_ELECTION).")
    var leaderElection: String?

    @Option(help: "kubeconfig context (default: the current one, else in-cluster).")
    var context: String?

    @Option(help: "Reconcile workers.")
    var workers = 2

    @Option(help: "text, json or logfmt (env BACKSTOP_LOG_FORMAT).")
    var logFormat: String?

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        let level = Logger.Level(rawValue: environment["BACKSTOP_LOG_LEVEL"] ?? "") ?? .info
        let formatName = logFormat ?? environment["BACKSTOP_LOG_FORMAT"] ?? "text"
        if formatName == "text" {
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        } else if let format = LineLogHandler.Format(rawValue: formatName) {
            LoggingSystem.bootstrap { label in LineLogHandler(label: label, format: format, level: level) }
        } else {
            throw ValidationError("--log-format \(formatName): use text, json or logfmt")
        }
        let logger = Logger(label: "backstop-controller")
        let watched = namespaces.isEmpty
            ? (environment["BACKSTOP_WATCH_NAMESPACES"] ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            : namespaces
        let image = workerImage ?? environment["BACKSTOP_WORKER_IMAGE"] ?? "ghcr.io/backstop/backstop:0.1.0"
        let address = healthAddress ?? environment["BACKSTOP_HEALTH_ADDRESS"] ?? "0.0.0.0:8081"
        let electing = (leaderElection ?? environment["BACKSTOP_LEADER_ELECTION"] ?? "true") == "true"
        guard let colon = address.lastIndex(of: ":"), let port = Int(address[address.index(after: colon)...]) else {
            throw ValidationError("--health-address \(address): write host:port, e.g. 0.0.0.0:8081")
        }
        let connection: KubeConnection
        do { connection = try KubeConnection.resolve(context: context) } catch { throw ValidationError(error.message) }
        let client = try KubeClient(connection: connection)
        let metrics = Metrics()
        let health = try HealthServer(host: String(address[..<colon]), port: port, metrics: metrics)
        logger.info("health and metrics on \(address.prefix(upTo: colon)):\(health.port); watching \(watched.isEmpty ? "all namespaces" : watched.joined(separator: ", "))")

        let scopes: [String?] = watched.isEmpty ? [nil] : watched.map { Optional($0) }
        let capabilities = await ServerCapabilities.discover(client: client, logger: logger)
        // Notification webhooks' Secrets are read in the controller's own namespace only.
        let ownNamespace = environment["POD_NAMESPACE"] ?? connection.namespace
        let policyControllers = try scopes.map { namespace in
            PolicyReconciler.controller(client: client, namespace: namespace, workerImage: image, workers: workers,
                                        logger: logger, metrics: metrics, capabilities: capabilities,
                                        notifications: try NotificationOutbox(client: client, secretNamespace: ownNamespace, metrics: metrics, logger: logger))
        }
        let restoreControllers = scopes.map { namespace in
            RestoreReconciler.controller(client: client, namespace: namespace, workerImage: image, logger: logger, metrics: metrics)
        }
        let controllers: [any RunnableController] = policyControllers + restoreControllers
        let elector: LeaderElector? = electing
            ? LeaderElector(client: client, namespace: ownNamespace, name: "backstop-controller",
                            identity: environment["HOSTNAME"] ?? "backstop-controller-\(getpid())", logger: logger)
            : nil
        let lead: @Sendable () async -> Void = {
            await withTaskGroup(of: Void.self) { group in
                for controller in controllers { group.addTask { await controller.run() } }
                await group.waitForAll()
            }
        }
        try await runInterruptibly {
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    if let elector { await elector.run(lead) } else { await lead() }
                }
                group.addTask {
                    // Not ready while API access the controller needs is refused (a 403 names
                    // the missing RBAC rule); a replica that is not leading is otherwise ready
                    // to take over; the leader once every cache has its first list. The
                    // queue depth feeds /metrics.
                    while !Task.isCancelled {
                        let problems = (elector?.health.problems ?? []) + controllers.flatMap { $0.health.problems }
                        if let problem = problems.first {
                            health.setReady(false, reason: problem)
                        } else if let elector, !elector.isLeading {
                            health.setReady(true)
                        } else {
                            health.setReady(controllers.allSatisfy { $0.hasSynced })
                        }
                        var depth = 0
                        for controller in controllers { depth += await controller.queue.length }
                        metrics.setQueueDepth(depth)
                        try? await Task.sleep(for: .milliseconds(500))
                    }
                }
                // The elector (or the controllers) return when cancelled: stop the other task.
                await group.next()
                group.cancelAll()
            }
        }
        health.stop()
        logger.info("stopped")
    }
}
