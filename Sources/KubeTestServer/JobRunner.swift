internal import Foundation
internal import KubeClient

/// What runs a Job's Pod in the test server: a Swift handler, or real local executables
/// standing in for the container's command.
public enum JobRunner: Sendable {
    /// Called with the Pod's container; returns the exit code and the termination message.
    case handler(@Sendable (JobRun) async -> JobResult)
    /// Runs `command + args` of the first container with its env, mapping the command's first
    /// word to a local path (e.g. `backstop` → `.build/debug/backstop`). `/dev/termination-log`
    /// in env values becomes a temporary file, read back as the termination message.
    case executables([String: String])
}

public struct JobRun: Sendable {
    public let namespace: String
    public let jobName: String
    public let podName: String
    /// 1 for a Job's first Pod, 2 for the one started after it failed, …
    public let attempt: Int
    public let command: [String]
    public let args: [String]
    /// Plain values and `secretKeyRef`s resolved from stored Secrets.
    public let environment: [String: String]
}

public struct JobResult: Sendable {
    public var exitCode: Int32
    public var terminationMessage: String

    public init(exitCode: Int32, terminationMessage: String = "") {
        self.exitCode = exitCode
        self.terminationMessage = terminationMessage
    }
}

extension JobRunner {
    func run(_ job: JobRun) async -> JobResult {
        switch self {
        case .handler(let body):
            return await body(job)
        case .executables(let paths):
            guard let word = (job.command + job.args).first, let path = paths[word] else {
                return JobResult(exitCode: 127, terminationMessage: "no local executable for \((job.command + job.args).first ?? "an empty command")")
            }
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("termination-\(job.podName)").path
            _ = FileManager.default.createFile(atPath: log, contents: nil)
            defer { try? FileManager.default.removeItem(atPath: log) }
            let process = Process()
            process.executableURL = URL(fileURLWithPath: path)
            process.arguments = Array((job.command + job.args).dropFirst())
            process.environment = ProcessInfo.processInfo.environment.merging(
                job.environment.mapValues { $0.replacingOccurrences(of: "/dev/termination-log", with: log) }) { _, job in job }
            process.standardOutput = FileHandle.nullDevice
            process.standardError = FileHandle.nullDevice
            do { try process.run() } catch {
                return JobResult(exitCode: 126, terminationMessage: "cannot start \(path): \(error)")
            }
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                DispatchQueue.global().async {
                    process.waitUntilExit()
                    done.resume()
                }
            }
            let message = FileManager.default.contents(atPath: log).map { String(decoding: $0.prefix(4096), as: UTF8.self) } ?? ""
            return JobResult(exitCode: process.terminationStatus, terminationMessage: message)
        }
    }
}
