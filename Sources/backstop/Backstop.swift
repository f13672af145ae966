import ArgumentParser
import BlockingCalls
import BackstopAPI
import Engine
import Foundation
import Logging

@main
struct Backstop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backstop",
        abstract: "PostgreSQL backups you can prove: dump, compress, encrypt, store, verify, restore.",
        discussion: """
            Every option can also be set by its BACKSTOP_* environment variable (a flag wins).
            Example, a backup to a local folder and its restore:
              backstop backup  --storage file:///var/backups --database postgres://backup@localhost:5432/orders
              backstop restore latest --storage file:///var/backups --target postgres://backup@localhost:5432/orders_copy
            """,
        version: WorkerContext.toolVersion,
        subcommands: [BackupCommandLine.self, VerifyCommandLine.self, ListCommandLine.self, RestoreCommandLine.self,
                      PruneCommandLine.self, HoldCommandLine.self, ReleaseCommandLine.self, RenderCommandLine.self])

    /// Logs go to stderr; stdout carries only results (the report line, the list).
    static func makeLogger() -> Logger {
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = Logger.Level(rawValue: ProcessInfo.processInfo.environment["BACKSTOP_LOG_LEVEL"] ?? "") ?? .info
            return handler
        }
        return Logger(label: "backstop")
    }
}

/// Prints the report line on stdout and writes it where `--report-path` says (the pod's
/// termination message in a Job).
func emit(_ report: WorkerReport, reportPath: String?, toStandardOutput: Bool = true) {
    let line = report.encodedLine()
    if toStandardOutput { print(line) }
    let path = WorkerOption.reportPath.resolve(flag: reportPath, environment: ProcessInfo.processInfo.environment)
    if let path {
        do { try Data(line.utf8).write(to: URL(fileURLWithPath: path)) } catch {
            FileHandle.standardError.write(Data("backstop: cannot write the report to \(path): \(error.localizedDescription)\n".utf8))
        }
    }
}

/// Times one command and writes its report line, on success or failure alike.
struct CommandRun {
    let command: String
    let reportPath: String?
    /// False when stdout carries a JSON document of its own (`--output json`): the report then
    /// goes only to the report path.
    var reportOnStandardOutput = true
    let started = Date().timeIntervalSince1970

    /// Emits a success report that `fill` completes (backup id, sizes, message).
    func succeeded(_ fill: (inout WorkerReport) -> Void) {
        var report = base(.succeeded)
        fill(&report)
        emit(report, reportPath: reportPath, toStandardOutput: reportOnStandardOutput)
    }

    /// Emits the failure report, prints the one-line error and returns exit code 1.
    func failed(_ error: any Error, verified: Bool? = nil) -> ExitCode {
        var report = base(.failed)
        report.verified = verified
        report.message = oneLine(error)
        emit(report, reportPath: reportPath)
        return fail(error)
    }

    private func base(_ outcome: WorkerReport.Outcome) -> WorkerReport {
        let now = Date().timeIntervalSince1970
        return WorkerReport(command: command, outcome: outcome, startedAt: UTCTimestamp(secondsSince1970: Int64(started)),
                            completedAt: UTCTimestamp(secondsSince1970: Int64(now)), durationSeconds: now - started)
    }
}

/// What an error says to the user: engine errors carry their own message with the fix.
func oneLine(_ error: any Error) -> String {
    (error as? EngineError)?.message ?? "\(error)"
}

/// One line on stderr, then exit 1 (runtime failures; usage errors exit 64 through ArgumentParser).
func fail(_ error: any Error) -> ExitCode {
    FileHandle.standardError.write(Data("error: \(oneLine(error))\n".utf8))
    return ExitCode.failure
}

struct ReportOptions: ParsableArguments {
    @Option(name: .customLong(WorkerOption.reportPath.flag),
            help: "Also write the JSON report line to this file (env \(WorkerOption.reportPath.environmentVariable)).")
    var reportPath: String?
}
