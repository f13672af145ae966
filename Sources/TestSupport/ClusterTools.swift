internal import Foundation
internal import Postgres

/// Runs a PostgreSQL cluster of a test's own as the postgres user (tests that need archive
/// settings, which take a restart): the tools, SQL through psql, `pg_ctl start` and stop.
/// Needs root, for runuser.
public enum ClusterTools {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public static let bin = ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
        .compactMap(Int.init).max().map { "/usr/lib/postgresql/\($0)/bin" } ?? "/usr/bin"

    /// Runs a PostgreSQL tool as the postgres user, from `/` (which it can always enter).
    @discardableResult
    public static func asPostgres(_ tool: String, _ arguments: [String]) async throws -> String {
        let result = try await ToolProcess.run("/usr/sbin/runuser", ["-u", "postgres", "--", "\(bin)/\(tool)"] + arguments)
        guard result.status == 0 else { throw Failure(description: "\(tool) \(arguments.joined(separator: " ")) failed: \(result.errors)") }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    @discardableResult
    public static func sql(_ port: Int, _ statement: String, database: String = "postgres") async throws -> String {
        try await asPostgres("psql", ["-h", "127.0.0.1", "-p", "\(port)", "-U", "postgres", "-d", database, "-tA", "-v", "ON_ERROR_STOP=1", "-c", statement])
    }

    public static func freePort() -> Int {
        let socket = Foundation.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(socket, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// `pg_ctl start`, through the worker's own child process runner: Foundation's `Process`
    /// does not see the end of a child that leaves a daemon behind (`waitUntilExit` hangs).
    public static func start(_ data: String, log: String) async throws {
        let starter = try ChildProcess(executable: "/bin/sh", arguments: [
            "-c", "cd / && exec runuser -u postgres -- '\(bin)/pg_ctl' -D '\(data)' -l '\(log)' -w -t 120 start",
        ], standardOutput: .null)
        guard await starter.wait().termination.succeeded else {
            throw Failure(description: "pg_ctl start of \(data) failed: \((try? String(contentsOfFile: log, encoding: .utf8))?.suffix(2_000) ?? "")")
        }
    }

    public static func append(_ lines: [String], to file: String) throws {
        guard let handle = FileHandle(forWritingAtPath: file) else { throw Failure(description: "cannot open \(file)") }
        handle.seekToEndOfFile()
        handle.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        try handle.close()
    }

    /// An immediate stop, for cleanup: never fails.
    public static func stop(_ data: String) {
        _ = try? Process.run(URL(fileURLWithPath: "/usr/sbin/runuser"),
                             arguments: ["-u", "postgres", "--", "\(bin)/pg_ctl", "-D", data, "-m", "immediate", "-w", "stop"]).waitUntilExit()
    }
}
