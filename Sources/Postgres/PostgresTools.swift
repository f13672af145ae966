internal import Foundation
#if canImport(Glibc)
internal import Glibc
#endif

/// The PostgreSQL client programs the worker runs, and their version.
public struct PostgresTools: Sendable {
    public let pgDump: String
    public let pgRestore: String
    /// e.g. `15.18`
    public let version: String
    public let majorVersion: Int

    /// Another PostgreSQL program beside pg_dump (pg_basebackup, pg_ctl, pg_controldata,
    /// pg_verifybackup): the same release, so versions agree.
    public func program(_ name: String) throws(PostgresError) -> String {
        let path = (pgDump as NSString).deletingLastPathComponent + "/" + name
        guard access(path, X_OK) == 0 else {
            let package = ["pg_ctl", "pg_controldata"].contains(name) ? "the PostgreSQL server package (postgresql-\(majorVersion))" : "postgresql-client-\(majorVersion)"
            throw PostgresError(.toolMissing, "\(path) is not installed: install \(package), or point --pg-bin at a folder holding it")
        }
        return path
    }

    /// Finds pg_dump and pg_restore in `binDirectory` (`--pg-bin`), else in the newest
    /// `/usr/lib/postgresql/<major>/bin` (Debian's layout, which skips the version-picking
    /// wrapper in /usr/bin), else on `PATH`.
    public static func locate(binDirectory: String?) async throws(PostgresError) -> PostgresTools {
        let directory = binDirectory ?? newestDebianBinDirectory()
        func find(_ name: String) throws(PostgresError) -> String {
            if let directory {
                let path = directory + "/" + name
                guard access(path, X_OK) == 0 else {
                    throw PostgresError(.toolMissing, "\(path) is not an executable; point --pg-bin at the folder holding pg_dump and pg_restore")
                }
                return path
            }
            let searchPath = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            for folder in searchPath.split(separator: ":") where access("\(folder)/\(name)", X_OK) == 0 {
                return "\(folder)/\(name)"
            }
            throw PostgresError(.toolMissing, "\(name) is not installed; install postgresql-client (the same major version as the server or newer) or set --pg-bin")
        }
        let pgDump = try find("pg_dump")
        let pgRestore = try find("pg_restore")
        let output = try await runForOutput(pgDump, ["--version"])
        // "pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)"
        let words = output.split(separator: " ")
        guard let versionIndex = words.firstIndex(where: { $0.first?.isNumber == true }),
              let major = Int(words[versionIndex].split(separator: ".").first ?? "") else {
            throw PostgresError(.toolMissing, "cannot read the version of \(pgDump) from \"\(output)\"")
        }
        return PostgresTools(pgDump: pgDump, pgRestore: pgRestore, version: String(words[versionIndex]), majorVersion: major)
    }

    /// pg_dump refuses servers newer than itself; say so before starting it.
    public func checkCanDump(serverVersionNumber: Int, serverVersion: String) throws(PostgresError) {
        let serverMajor = serverVersionNumber >= 100_000 ? serverVersionNumber / 10_000 : serverVersionNumber / 100
        guard serverMajor <= majorVersion else {
            throw PostgresError(
                .versionMismatch,
                "the server runs PostgreSQL \(serverVersion) but pg_dump is \(version): pg_dump cannot dump a newer server; use an image with pg_dump \(serverMajor) or newer, or point --pg-bin at one")
        }
    }

    private static func newestDebianBinDirectory() -> String? {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql") else { return nil }
        return entries.compactMap(Int.init).sorted().reversed()
            .map { "/usr/lib/postgresql/\($0)/bin" }
            .first { access($0 + "/pg_dump", X_OK) == 0 }
    }

    private static func runForOutput(_ executable: String, _ arguments: [String]) async throws(PostgresError) -> String {
        let child = try ChildProcess(executable: executable, arguments: arguments, standardOutput: .collect)
        let outcome = await child.wait()
        guard outcome.termination.succeeded else {
            throw PostgresError(.processFailed, "\(executable) \(arguments.joined(separator: " ")) failed (\(outcome.termination.description)): \(outcome.standardError)")
        }
        return outcome.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
