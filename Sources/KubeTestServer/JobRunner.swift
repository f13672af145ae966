internal import Foundation
internal import KubeClient

/// What runs a Job's Pod in the test server: a Swift handler, or real local executables
/// standing in for the container's command.
public enum JobRunner: Sendable {
    /// Called with the Pod's container; returns the exit code and the termination message.
    case handler(@Sendable (JobRun) async -> JobResult)
    /// Runs `command + args` of the first container with its env, mapping the command's first
    /// word to a local path (e.g. `sh` → `/bin/sh`). `/dev/termination-log` in env values
    /// becomes a temporary file, read back as the termination message.
    case executables([String: String])
    /// Runs every container as the worker image would: the local `binary` (its entrypoint)
    /// with the container's args and env; mounted Secrets become files in a temporary folder
    /// (paths in env values rewritten to it); stdout and stderr become the pod's log.
    case worker(binary: String)
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
    /// Mounted Secret volumes: mount path → file name → content.
    public let secretFiles: [String: [String: String]]
    /// The pod's ServiceAccount token and where to use it, when one is mounted.
    public let apiAccess: APIAccess?

    public struct APIAccess: Sendable {
        public let server: String
        public let token: String
        public let namespace: String
    }
}

public struct JobResult: Sendable {
    public var exitCode: Int32
    public var terminationMessage: String
    /// What `kubectl logs` shows for the pod.
    public var log: String

    public init(exitCode: Int32, terminationMessage: String = "", log: String = "") {
        self.exitCode = exitCode
        self.terminationMessage = terminationMessage
        self.log = log
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
            return await Self.runProcess(path, arguments: Array((job.command + job.args).dropFirst()), for: job)
        case .worker(let binary):
            return await Self.runProcess(binary, arguments: job.args, for: job)
        }
    }

    /// Runs a local executable for a pod: its env, its Secrets as files, its termination
    /// message from the file the report path names, its output as the log.
    private static func runProcess(_ path: String, arguments: [String], for job: JobRun) async -> JobResult {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pod-\(job.podName)").path
        try? FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let log = folder + "/termination-log"
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        var rewrites = [("/dev/termination-log", log)]
        for (index, (mountPath, files)) in job.secretFiles.sorted(by: { $0.key < $1.key }).enumerated() {
            let local = folder + "/secret-\(index)"
            try? FileManager.default.createDirectory(atPath: local, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            for (name, content) in files {
                _ = FileManager.default.createFile(atPath: local + "/" + name, contents: Data(content.utf8), attributes: [.posixPermissions: 0o400])
            }
            rewrites.append((mountPath, local))
        }
        var environment = job.environment.mapValues { value in
            rewrites.reduce(value) { text, rewrite in text.hasPrefix(rewrite.0) ? rewrite.1 + text.dropFirst(rewrite.0.count) : text }
        }
        // A pod sees the API only through a mounted token: here a kubeconfig in its folder,
        // where a real pod would use the token file and KUBERNETES_SERVICE_HOST.
        var inherited = ProcessInfo.processInfo.environment
        inherited["KUBECONFIG"] = nil
        if let access = job.apiAccess, let kubeconfig = try? TestAPIServer.writeKubeconfig(server: access.server, token: access.token, namespace: access.namespace) {
            environment["KUBECONFIG"] = kubeconfig
        }
        defer { if let kubeconfig = environment["KUBECONFIG"] { try? FileManager.default.removeItem(atPath: kubeconfig) } }
        let output = folder + "/output"
        _ = FileManager.default.createFile(atPath: output, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.environment = inherited.merging(environment) { _, job in job }
        guard let handle = FileHandle(forWritingAtPath: output) else {
            return JobResult(exitCode: 126, terminationMessage: "cannot open \(output)")
        }
        defer { try? handle.close() }
        process.standardOutput = handle
        process.standardError = handle
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
        let text = FileManager.default.contents(atPath: output).map { String(decoding: $0, as: UTF8.self) } ?? ""
        return JobResult(exitCode: process.terminationStatus, terminationMessage: message, log: text)
    }
}
