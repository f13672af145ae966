internal import BlockingCalls
internal import CLibPQ
internal import Foundation

/// One libpq connection. libpq blocks, so the actor runs on a thread of its own and its
/// methods may block without starving Swift's cooperative pool.
public actor PostgresConnection {
    private let thread: DedicatedThread
    private var connection: OpaquePointer?
    public let settings: ConnectionSettings

    public nonisolated var unownedExecutor: UnownedSerialExecutor {
        thread.asUnownedSerialExecutor()
    }

    private init(settings: ConnectionSettings) {
        self.settings = settings
        thread = DedicatedThread(name: "libpq")
    }

    /// Connects, or fails with a message that says which part (host, password, database) is wrong.
    public static func connect(_ settings: ConnectionSettings) async throws(PostgresError) -> PostgresConnection {
        let connection = PostgresConnection(settings: settings)
        try await connection.open()
        return connection
    }

    private func open() throws(PostgresError) {
        let parameters = settings.libpqParameters
        var keywords = parameters.map { strdup($0.key) } + [nil]
        var values = parameters.map { strdup($0.value) } + [nil]
        defer {
            keywords.forEach { free($0) }
            values.forEach { free($0) }
        }
        let handle = keywords.withUnsafeMutableBufferPointer { keys in
            values.withUnsafeMutableBufferPointer { vals in
                keys.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: keys.count) { k in
                    vals.baseAddress!.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: vals.count) { v in
                        PQconnectdbParams(k, v, 0)
                    }
                }
            }
        }
        guard let handle, PQstatus(handle) == CONNECTION_OK else {
            let message = handle.map { Self.errorText($0) } ?? "out of memory"
            if let handle { PQfinish(handle) }
            let lowered = message.lowercased()
            let kind: PostgresError.Kind = lowered.contains("password") || lowered.contains("authentication")
                ? .authenticationFailed : .connectionFailed
            let hint = kind == .authenticationFailed
                ? "check the user and the password (PGPASSWORD or --password-file)"
                : "check \(settings.option) (host, port, database name) and that the server is running"
            throw PostgresError(kind, "cannot connect to \(settings): \(message); \(hint)")
        }
        connection = handle
    }

    /// Runs a statement with text parameters; returns the rows as text (NULL as nil).
    @discardableResult
    public func query(_ sql: String, _ arguments: [String?] = []) throws(PostgresError) -> [[String?]] {
        guard let connection else {
            throw PostgresError(.queryFailed, "the connection to \(settings) is closed")
        }
        var copies = arguments.map { $0.map { strdup($0) } ?? nil }
        defer { copies.forEach { free($0) } }
        let result = copies.withUnsafeMutableBufferPointer { buffer in
            buffer.baseAddress.map { base in
                base.withMemoryRebound(to: UnsafePointer<CChar>?.self, capacity: buffer.count) {
                    PQexecParams(connection, sql, Int32(arguments.count), nil, $0, nil, nil, 0)
                }
            } ?? PQexecParams(connection, sql, 0, nil, nil, nil, nil, 0)
        }
        guard let result else {
            throw PostgresError(.queryFailed, "query failed on \(settings): \(Self.errorText(connection))")
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            let state = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let message = String(cString: PQresultErrorMessage(result)).trimmingCharacters(in: .whitespacesAndNewlines)
            throw PostgresError(.queryFailed, message, sqlState: state)
        }
        let rowCount = PQntuples(result)
        let columnCount = PQnfields(result)
        var rows: [[String?]] = []
        rows.reserveCapacity(Int(rowCount))
        for row in 0..<rowCount {
            var values: [String?] = []
            values.reserveCapacity(Int(columnCount))
            for column in 0..<columnCount {
                values.append(PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column)))
            }
            rows.append(values)
        }
        return rows
    }

    /// The first column of the first row.
    public func scalar(_ sql: String, _ arguments: [String?] = []) throws(PostgresError) -> String? {
        try query(sql, arguments).first?.first ?? nil
    }

    /// Connects, runs `body`, and closes the connection whatever happens, before returning:
    /// a close left to a later task could run while the process exits, inside libpq's
    /// (and Kerberos') teardown.
    public static func with<T: Sendable>(
        _ settings: ConnectionSettings, _ body: (PostgresConnection) async throws -> T
    ) async throws -> T {
        let connection = try await connect(settings)
        do {
            let result = try await body(connection)
            await connection.close()
            return result
        } catch {
            await connection.close()
            throw error
        }
    }

    public func close() {
        if let connection { PQfinish(connection) }
        connection = nil
        thread.shutdown()
    }

    isolated deinit {
        if let connection { PQfinish(connection) }
        thread.shutdown()
    }

    private static func errorText(_ connection: OpaquePointer) -> String {
        String(cString: PQerrorMessage(connection))
            .split(separator: "\n").map { $0.trimmingCharacters(in: .whitespaces) }.joined(separator: " ")
    }
}
