internal import BlockingCalls
internal import Foundation

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

    /// `executable` is a path, or a name looked up on PATH.
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil,
                           mergingErrors: Bool = false) async throws -> Output {
        try await runBlocking(name: (executable as NSString).lastPathComponent) {
            let process = Process()
            if executable.hasPrefix("/") {
                process.executableURL = URL(fileURLWithPath: executable)
                process.arguments = arguments
            } else {
                process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                process.arguments = [executable] + arguments
            }
            let output = Pipe()
            let errors = mergingErrors ? output : Pipe()
            process.standardOutput = output
            process.standardError = errors
            let stdin = Pipe()
            process.standardInput = input == nil ? FileHandle.nullDevice : stdin
            try process.run()
            if let input {
                stdin.fileHandleForWriting.write(Data(input.utf8))
                try stdin.fileHandleForWriting.close()
            }
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            let errorText = mergingErrors ? "" : String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            return Output(status: process.terminationStatus, output: text, errors: errorText)
        }
    }
}
