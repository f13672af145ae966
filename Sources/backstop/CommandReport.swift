import BackstopAPI
import Engine
import Foundation

/// Times one command and writes its report line (`WorkerReport`), on success or failure alike:
/// on stdout, and where `--report-path` says (a Job's `/dev/termination-log`, which the
/// controller reads).
struct CommandRun {
    let command: String
    let reportPath: String?
    /// False when stdout carries a document of its own (`-o json`): the report then goes only
    /// to the report path.
    var reportOnStandardOutput = true
    let started = Date().timeIntervalSince1970

    /// Emits a success report that `fill` completes (backup id, sizes, message).
    func succeeded(_ fill: (inout WorkerReport) -> Void) {
        var report = base(.succeeded)
        fill(&report)
        emit(report)
    }

    /// Emits the failure report; returns the error for `main` to print and exit with.
    func failed(_ error: any Error, verified: Bool? = nil) -> CommandLineError {
        let failure = CommandLineError(error)
        var report = base(.failed)
        report.verified = verified
        report.message = failure.message
        emit(report)
        return failure
    }

    private func base(_ outcome: WorkerReport.Outcome) -> WorkerReport {
        let now = Date().timeIntervalSince1970
        return WorkerReport(command: command, outcome: outcome, startedAt: UTCTimestamp(secondsSince1970: Int64(started)),
                            completedAt: UTCTimestamp(secondsSince1970: Int64(now)), durationSeconds: now - started)
    }

    private func emit(_ report: WorkerReport) {
        let line = report.encodedLine()
        if reportOnStandardOutput { print(line) }
        guard let path = WorkerOption.reportPath.resolve(flag: reportPath, environment: ProcessInfo.processInfo.environment) else { return }
        do { try Data(line.utf8).write(to: URL(fileURLWithPath: path)) } catch {
            FileHandle.standardError.write(Data("backstop: warning: cannot write the report to \(path): \(error.localizedDescription)\n".utf8))
        }
    }
}
