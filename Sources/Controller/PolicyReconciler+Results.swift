internal import BackstopAPI
internal import Foundation
internal import KubeClient
internal import KubeRuntime
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

    /// The newest finished run of each environment, from the policy's Jobs (as cached) and
    /// their pods' termination messages — read only for a run newer than any the status
    /// already records, so a converged policy costs no request.
    func newResults(key: String, namespace: String, status: BackupPolicy.Status?) async throws -> [String: Result] {
        var newest: [String: (job: ObservedJob, finished: ObservedJob.Status.Condition, time: String)] = [:]
        for job in owned.jobs.objects(inGroup: key) {
            guard let environment = job.metadata.labels?[CronJobBuilder.environmentLabel], let finished = job.finished else { continue }
            let time = finished.lastTransitionTime ?? job.status?.completionTime ?? ""
            if let known = newest[environment], known.time >= time { continue }
            newest[environment] = (job, finished, time)
        }
        var results: [String: Result] = [:]
        for (environment, run) in newest {
            let recorded = status?.environments?.first { $0.name == environment }
            guard run.time > max(recorded?.lastSuccessfulBackup?.time ?? "", recorded?.lastFailure?.time ?? "") else { continue }
            let pods = try await client.listAll(.pods, namespace: namespace, labelSelector: "job-name=\(run.job.metadata.name)", as: GenericObject.self).items
            let message = pods.compactMap { $0.fields["status"]?[path: "containerStatuses"]?.array?.first?[path: "state.terminated.message"]?.string }.last ?? ""
            let report = message.split(separator: "\n").last.flatMap { try? JSONDecoder().decode(WorkerReport.self, from: Data($0.utf8)) }
            results[environment] = Result(
                environment: environment, time: run.time, succeeded: run.finished.type == "Complete" && report?.outcome != .failed, report: report,
                message: report?.message ?? (message.isEmpty ? (run.finished.message ?? "the Job failed") : String(message.suffix(300))))
        }
        return results
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
