internal import BlockingCalls
internal import CChildProcess
internal import Foundation
internal import Synchronization
#if canImport(Glibc)
internal import Glibc
#endif

/// A child process (pg_dump, pg_restore) tied to the worker's life: it gets SIGKILL if the
/// worker dies. A thread of its own starts it, collects its stderr and waits for it — the
/// parent-death signal follows the thread that forked, so that thread outlives the child.
public final class ChildProcess: Sendable {
    public enum Stream: Sendable {
        /// The child inherits the worker's descriptor.
        case inherit
        /// A pipe; the worker's end is in `standardInput` / `standardOutput`.
        case pipe
        /// /dev/null.
        case null
        /// stdout only: read to the end by the worker and returned by `wait()` (bounded).
        case collect
    }

    /// How the child ended and what it said.
    public struct Outcome: Sendable {
        public let termination: Termination
        /// The collected stdout (`.collect`), else empty.
        public let standardOutput: String
        /// The tail of stderr.
        public let standardError: String
    }

    public struct Termination: Sendable, Equatable {
        /// The exit code, or `nil` when a signal ended the child.
        public let exitCode: Int32?
        public let signal: Int32?
        public var succeeded: Bool { exitCode == 0 }

        public var description: String {
            if let exitCode { return "exit code \(exitCode)" }
            return "signal \(signal ?? 0)"
        }
    }

    public let pid: Int32
    public let executable: String
    /// The worker's end of the child's stdin when `.pipe` was asked for; close it to send EOF.
    public let standardInput: Int32?
    /// The worker's end of the child's stdout when `.pipe` was asked for.
    public let standardOutput: Int32?
    private let outcome = OneShot<Outcome>()
    private let inputClosed = Atomic<Bool>(false)

    /// The last bytes of stderr kept for error messages.
    static let stderrTail = 16 * 1024
    /// The most stdout `.collect` keeps (its tail).
    public static let collectLimit = 4 * 1024 * 1024

    /// Starts `executable` with `arguments`; `environment` is added to the worker's own.
    public init(executable: String, arguments: [String], environment: [String: String] = [:],
                standardInput stdinMode: Stream = .null, standardOutput stdoutMode: Stream = .inherit) throws(PostgresError) {
        Self.ignoreBrokenPipes
        var merged = ProcessInfo.processInfo.environment
        for (key, value) in environment { merged[key] = value }
        let environmentLines = merged.map { "\($0.key)=\($0.value)" }

        var stdinPipe: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        func makePipe(_ fds: inout [Int32]) throws(PostgresError) {
            guard backstop_pipe_cloexec(&fds) == 0 else {
                throw PostgresError(.processFailed, "cannot create a pipe for \(executable): \(String(cString: strerror(errno)))")
            }
        }
        let nullDevice = open("/dev/null", O_RDWR | O_CLOEXEC)
        defer { if nullDevice >= 0 { close(nullDevice) } }
        if stdinMode == .pipe { try makePipe(&stdinPipe) }
        if stdoutMode == .pipe || stdoutMode == .collect { try makePipe(&stdoutPipe) }
        try makePipe(&stderrPipe)
        // Larger pipes let the child run ahead while the worker compresses (Linux only).
        if stdoutMode == .pipe { _ = backstop_set_pipe_size(stdoutPipe[0], 1 << 20) }
        if stdinMode == .pipe { _ = backstop_set_pipe_size(stdinPipe[1], 1 << 20) }

        let childStdin = stdinMode == .pipe ? stdinPipe[0] : (stdinMode == .null ? nullDevice : -1)
        let childStdout = stdoutMode == .pipe || stdoutMode == .collect
            ? stdoutPipe[1] : (stdoutMode == .null ? nullDevice : -1)
        let childStderr = stderrPipe[1]
        let parentEnds = [stdinPipe[1], stdoutPipe[0], stderrPipe[0]].filter { $0 >= 0 }
        let stderrReadEnd = stderrPipe[0]
        let argv = [executable] + arguments

        let started = OneShot<Result<Int32, PostgresError>>()
        let outcome = outcome
        let collectedStdout = OneShot<String>()
        let stdoutReadEnd = stdoutPipe[0]
        if stdoutMode != .collect { collectedStdout.fulfill("") }
        let thread = Thread {
            let pid = Self.spawn(argv: argv, environment: environmentLines, stdin: childStdin, stdout: childStdout,
                                 stderr: childStderr, closing: parentEnds)
            guard pid > 0 else {
                started.fulfill(.failure(PostgresError(
                    errno == ENOENT ? .toolMissing : .processFailed,
                    "cannot start \(executable): \(String(cString: strerror(errno)))")))
                return
            }
            started.fulfill(.success(pid))
            // The child's ends belong to the child now.
            for fd in [childStdin, childStdout, childStderr] where fd >= 0 && fd != nullDevice { close(fd) }
            if stdoutMode == .collect {
                Thread.detachNewThread {
                    collectedStdout.fulfill(ChildProcess.readTail(stdoutReadEnd, limit: ChildProcess.collectLimit))
                    close(stdoutReadEnd)
                }
            }
            let stderrText = ChildProcess.readTail(stderrReadEnd, limit: ChildProcess.stderrTail)
            close(stderrReadEnd)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
            let exited = status & 0x7F == 0
            outcome.fulfill(Outcome(
                termination: Termination(exitCode: exited ? (status >> 8) & 0xFF : nil, signal: exited ? nil : status & 0x7F),
                standardOutput: collectedStdout.waitBlocking(), standardError: stderrText))
        }
        thread.name = "child-\((executable as NSString).lastPathComponent)"
        thread.start()
        switch started.waitBlocking() {
        case .success(let pid):
            self.pid = pid
        case .failure(let error):
            for fd in parentEnds + [childStdin, childStdout, childStderr] where fd >= 0 && fd != nullDevice { close(fd) }
            throw error
        }
        self.executable = executable
        standardInput = stdinMode == .pipe ? stdinPipe[1] : nil
        standardOutput = stdoutMode == .pipe ? stdoutPipe[0] : nil
    }

    /// Waits for the child to end.
    public func wait() async -> Outcome {
        await outcome.value
    }

    /// Blocks until the child ends; only for dedicated threads.
    public func waitBlocking() -> Outcome {
        outcome.waitBlocking()
    }

    /// Closes the child's stdin (it sees EOF) and waits for it to end.
    public func closeInputAndWait() async -> Outcome {
        closeInput()
        return await wait()
    }

    /// For a child whose input is abandoned mid-stream: SIGKILL, close its stdin, wait.
    public func killAndWait() async -> Outcome {
        kill(SIGKILL)
        closeInput()
        return await wait()
    }

    /// Closes the worker's end of the stdin pipe, once.
    private func closeInput() {
        guard let standardInput, !inputClosed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        close(standardInput)
    }

    /// Asks the child to stop (SIGTERM).
    public func terminate() { kill(SIGTERM) }

    /// Sends `signal` unless the child has already been reaped (its pid may be reused).
    public func kill(_ signal: Int32) {
        guard outcome.current == nil else { return }
        _ = Glibc.kill(pid, signal)
    }

    /// A write to a pipe whose reader died must fail with EPIPE, not kill the worker.
    private static let ignoreBrokenPipes: Void = {
        signal(SIGPIPE, SIG_IGN)
    }()

    private static func spawn(argv: [String], environment: [String], stdin: Int32, stdout: Int32,
                              stderr: Int32, closing: [Int32]) -> pid_t {
        let cArguments = argv.map { strdup($0) } + [nil]
        let cEnvironment = environment.map { strdup($0) } + [nil]
        defer {
            cArguments.forEach { free($0) }
            cEnvironment.forEach { free($0) }
        }
        return backstop_spawn(argv[0], cArguments, cEnvironment, stdin, stdout, stderr, closing, Int32(closing.count))
    }

    private static func readTail(_ fd: Int32, limit: Int) -> String {
        var kept: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let got = read(fd, &buffer, buffer.count)
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            kept.append(contentsOf: buffer[0..<got])
            if kept.count > limit * 2 { kept.removeFirst(kept.count - limit) }
        }
        if kept.count > limit { kept.removeFirst(kept.count - limit) }
        return String(decoding: kept, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
