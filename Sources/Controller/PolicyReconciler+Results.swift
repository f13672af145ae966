internal import BackstopAPI
internal import Foundation
internal import KubeClient
internal import Workloads

/// Backup results: each finished Job's pod says how the run went in its termination message
/// (the worker's `WorkerReport` line). Status only moves forward: a garbage-collected Job or a
/// controller restart never erases a recorded success or failure.
extension PolicyReconciler {
    struct Result {
        let environment: String
        let time: String
        let succeeded: Bool
        let report: WorkerReport?
        let message: String
    }

    /// The newest finished run of each environment, from the policy's Jobs and their pods.
    func latestResults(of policy: BackupPolicy, namespace: String) async throws -> [String: Result] {
        let jobs = try await client.listAll(.jobs, namespace: namespace,
                                            labelSelector: "\(CronJobBuilder.policyLabel)=\(policy.metadata.name)", as: GenericObject.self).items
        var latest: [String: Result] = [:]
        for job in jobs {
            guard let environment = job.metadata.labels?[CronJobBuilder.environmentLabel],
                  let finished = job.fields["status"]?["conditions"]?.array?.first(where: {
                      ($0["type"] == .string("Complete") || $0["type"] == .string("Failed")) && $0["status"] == .string("True")
                  }) else { continue }
            let succeeded = finished["type"] == .string("Complete")
            let time = finished["lastTransitionTime"]?.string ?? job.fields["status"]?["completionTime"]?.string ?? ""
            let pods = try await client.listAll(.pods, namespace: namespace, labelSelector: "job-name=\(job.metadata.name)", as: GenericObject.self).items
            let message = pods.compactMap { $0.fields["status"]?[path: "containerStatuses"]?.array?.first?[path: "state.terminated.message"]?.string }.last ?? ""
            let report = message.split(separator: "\n").last.flatMap { try? JSONDecoder().decode(WorkerReport.self, from: Data($0.utf8)) }
            let result = Result(environment: environment, time: time, succeeded: succeeded && report?.outcome != .failed, report: report,
                                message: report?.message ?? (message.isEmpty ? (finished["message"]?.string ?? "the Job failed") : String(message.suffix(300))))
            if let known = latest[environment], known.time >= time { continue }
            latest[environment] = result
        }
        return latest
    }

    /// Folds new results into the environments' status; returns the events to record.
    static func apply(_ results: [String: Result], to environments: inout [BackupPolicy.EnvironmentStatus]) -> [(type: String, reason: String, message: String)] {
        var events: [(String, String, String)] = []
        for index in environments.indices {
            guard let result = results[environments[index].name] else { continue }
            let name = environments[index].name
            if result.succeeded {
                guard result.time > (environments[index].lastSuccessfulBackup?.time ?? "") else { continue }
                environments[index].lastSuccessfulBackup = .init(
                    id: result.report?.backupID?.rawValue ?? "", time: result.time, bytes: result.report?.storedBytes,
                    durationSeconds: result.report?.durationSeconds)
                events.append(("Normal", "BackupSucceeded", "\(name): backup \(result.report?.backupID?.rawValue ?? "") succeeded"))
            } else {
                guard result.time > (environments[index].lastFailure?.time ?? "") else { continue }
                environments[index].lastFailure = .init(time: result.time, reason: "BackupFailed", message: result.message)
                events.append(("Warning", "BackupFailed", "\(name): \(result.message)"))
            }
        }
        return events
    }
}
