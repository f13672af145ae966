internal import BlockingCalls
internal import Foundation
internal import Synchronization

/// Runs a command-line tool for a test (psql, kubectl, the aws CLI, python scripts) on a thread
/// of its own — it blocks, and Swift's cooperative pool must stay free — and returns what it
/// printed.
public enum ToolProcess {
    public struct Output: Sendable {
        public let status: Int32
        /// stdout, or stdout and stderr interleaved when run `mergingErrors`.
        public let output: String
        public let errors: String
    }

    /// `executable` is a path, or a name looked up on PATH. `environment` is added to (and
    /// overrides) this process's.
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil,
                           mergingErrors: Bool = false, environment: [String: String] = [:]) async throws -> Output {
        try await runBlocking(name: (executable as NSString).lastPathComponent) {
            let process = Process()
            if executable.hasPrefix("/") {
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
            } else {
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = [executable] + arguments
            }
            if !environment.isEmpty {
                process.environment = ProcessInfo.processInfo.environment.merging(environment) { _, given in given }
            }
            let output = Pipe()
            let errors = mergingErrors ? output : Pipe()
            process.standardOutput = output
            process.standardError = errors
            let stdin = Pipe()
            process.standardInput = input == nil ? FileHandle.nullDevice : stdin
            try process.run()
            // Input is written and stderr read on threads of their own: a tool that fills one
            // pipe while we wait on another would otherwise block forever.
            let writing = input.map { input in
                Background {
                    stdin.fileHandleForWriting.write(Data(input.utf8))
                    try? stdin.fileHandleForWriting.close()
                    return Data()
                }
            }
            let errorData = mergingErrors ? nil : Background { errors.fileHandleForReading.readDataToEndOfFile() }
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let errorText = String(decoding: errorData?.wait() ?? Data(), as: UTF8.self)
            _ = writing?.wait()
            process.waitUntilExit()
            return Output(status: process.terminationStatus, output: text, errors: errorText)
        }
    }
}

/// A blocking piece of work on a thread of its own, waited for with `wait()`.
private final class Background: Sendable {
    private let result = Mutex(Data())
    private let finished = DispatchSemaphore(value: 0)

    init(_ work: @escaping @Sendable () -> Data) {
        Thread.detachNewThread { [self] in
            let data = work()
            result.withLock { $0 = data }
            finished.signal()
        }
    }

    func wait() -> Data {
        finished.wait()
        return result.withLock { $0 }
    }
}
