public import BackstopAPI
internal import Foundation
public import Postgres
internal import Storage

/// How an environment's WAL archiving stands: the newest file in the archive and, when the
/// server can be asked, whether archive_command is failing (`pg_stat_archiver`). Read by
/// `doctor` and by `backstop wal-status`, the check the controller schedules every few minutes
/// for environments with walArchiving.
public struct WALArchiveStatus: Sendable, Equatable {
    /// The newest archived segment's record, or nil when the archive is empty.
    public var newest: WALRecord?
    /// pg_stat_archiver, when a database was given and answered.
    public var archiver: PostgresConnection.ArchiverState?

    /// Reads the archive and, with `database`, the server. An unreachable server is reported
    /// as `archiver == nil` with `serverProblem` set, not thrown: the archive's word stands.
    public static func read(_ context: WorkerContext, database: ConnectionSettings?) async throws(EngineError)
        -> (status: WALArchiveStatus, serverProblem: String?) {
        let objects: [ObjectInfo]
        do { objects = try await context.storage.list(prefix: context.location.walPrefix) }
        catch { throw EngineError.wrapping(error, context: "cannot list the WAL archive") }
        var status = WALArchiveStatus()
        // Keys sort by timeline, then segment: the last segment record is the newest archived.
        if let newest = objects.last(where: { $0.key.hasSuffix(".json") && !$0.key.hasSuffix(".history.json") }) {
            do { status.newest = try JSONDecoder().decode(WALRecord.self, from: Data(try await context.storage.get(newest.key))) }
            catch { throw EngineError(.integrity, "the newest WAL record \(newest.key) cannot be read (\(error)): the archive is damaged there") }
        }
        guard let database else { return (status, nil) }
        do {
            status.archiver = try await PostgresConnection.with(database) { try await $0.archiverState() }
            return (status, nil)
        } catch {
            return (status, EngineError.wrapping(error).message)
        }
    }
}
