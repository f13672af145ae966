/// What the worker asks a server: versions, sizes, tables and their exact row counts.
extension PostgresConnection {
    public struct ServerVersion: Sendable {
        public let text: String
        public let number: Int
    }

    public struct TableCount: Sendable, Equatable {
        public let schema: String
        public let name: String
        public let rows: Int64
    }

    public func serverVersion() throws(PostgresError) -> ServerVersion {
        let row = try query("SELECT current_setting('server_version'), current_setting('server_version_num')::int").first
        return ServerVersion(text: row?[0] ?? "?", number: Int(row?[1] ?? "") ?? 0)
    }

    /// What a physical base backup needs to know of the cluster.
    public struct ClusterSettings: Sendable {
        /// `archive_mode`: `on`, `always` or `off`.
        public let archiveMode: String
        public let archiveCommand: String
        /// `wal_segment_size` in bytes.
        public let walSegmentSize: UInt64
        /// Tablespaces besides pg_default and pg_global.
        public let extraTablespaces: [String]
        public let clusterSize: Int64
    }

    public func clusterSettings() throws(PostgresError) -> ClusterSettings {
        let row = try query("""
            SELECT current_setting('archive_mode'), current_setting('archive_command'),
                   (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'),
                   (SELECT coalesce(string_agg(spcname, ', ' ORDER BY spcname), '') FROM pg_tablespace
                    WHERE spcname NOT IN ('pg_default', 'pg_global')),
                   (SELECT sum(pg_database_size(oid)) FROM pg_database WHERE datallowconn)
            """).first
        return ClusterSettings(archiveMode: row?[0] ?? "off", archiveCommand: row?[1] ?? "",
                               walSegmentSize: UInt64(row?[2] ?? "") ?? 16 << 20,
                               extraTablespaces: (row?[3] ?? "").split(separator: ", ").map(String.init),
                               clusterSize: Int64(row?[4] ?? "") ?? 0)
    }

    /// `pg_stat_archiver`'s counters: whether archive_command keeps up or keeps failing.
    public struct ArchiverState: Sendable, Equatable {
        public let failedCount: Int64
        public let lastFailedWAL: String?
        /// Whether the last attempt failed (its failure is newer than the last success).
        public let failing: Bool
    }

    public func archiverState() throws(PostgresError) -> ArchiverState {
        let row = try query("""
            SELECT failed_count, last_failed_wal,
                   coalesce(last_failed_time > coalesce(last_archived_time, '-infinity'), false)
            FROM pg_stat_archiver
            """).first
        return ArchiverState(failedCount: Int64(row?[0] ?? "") ?? 0, lastFailedWAL: row?[1] ?? nil, failing: row?[2] == "t")
    }

    /// `pg_database_size` of the current database: the estimate for progress and ETA.
    public func databaseSize() throws(PostgresError) -> Int64 {
        Int64(try scalar("SELECT pg_database_size(current_database())") ?? "") ?? 0
    }

    /// Starts a REPEATABLE READ transaction and exports its snapshot for `pg_dump --snapshot`.
    /// Keep the transaction open until pg_dump has finished; counts taken meanwhile see the
    /// same data as the dump.
    public func exportSnapshot() throws(PostgresError) -> String {
        try query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        guard let snapshot = try scalar("SELECT pg_export_snapshot()") else {
            throw PostgresError(.queryFailed, "pg_export_snapshot() returned nothing")
        }
        return snapshot
    }

    public func endTransaction() throws(PostgresError) {
        try query("COMMIT")
    }

    /// Exact row counts of every user table (extension tables excluded), in one statement.
    public func tableRowCounts() throws(PostgresError) -> [TableCount] {
        let statement = try scalar("""
            SELECT string_agg(format('SELECT %L, %L, count(*) FROM ONLY %I.%I', n.nspname, c.relname, n.nspname, c.relname),
                              ' UNION ALL ' ORDER BY n.nspname, c.relname)
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relkind = 'r'
              AND n.nspname NOT IN ('pg_catalog', 'information_schema')
              AND n.nspname NOT LIKE 'pg\\_toast%' AND n.nspname NOT LIKE 'pg\\_temp%'
              AND NOT EXISTS (SELECT 1 FROM pg_depend d
                              WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
            """)
        guard let statement else { return [] }
        return try query(statement).map {
            TableCount(schema: $0[0] ?? "", name: $0[1] ?? "", rows: Int64($0[2] ?? "") ?? 0)
        }
    }

    /// Whether the database holds any user table, view, sequence or function.
    public func hasUserObjects() throws(PostgresError) -> Bool {
        try scalar("""
            SELECT EXISTS (SELECT 1 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')
                OR EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                           WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%')
            """) == "t"
    }

    public func databaseExists(_ name: String) throws(PostgresError) -> Bool {
        try scalar("SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)", [name]) == "t"
    }

    /// Creates a database, by default as a copy of template1 (as `createdb` does). A restore
    /// passes `template0`, pg_restore's documented way: objects someone added to template1
    /// would otherwise collide with the restored ones.
    public func createDatabase(_ name: String, template: String = "template1") throws(PostgresError) {
        guard let statement = try scalar("SELECT format('CREATE DATABASE %I TEMPLATE %I', $1::text, $2::text)", [name, template]) else { return }
        try query(statement)
    }

    /// Drops a database, first ending sessions still connected to it (pg_restore's, after a kill).
    public func dropDatabase(_ name: String) throws(PostgresError) {
        guard let statement = try scalar("SELECT format('DROP DATABASE IF EXISTS %I WITH (FORCE)', $1::text)", [name]) else { return }
        try query(statement)
    }

    /// The role owning a database; nil when there is no such database.
    public func databaseOwner(_ name: String) throws(PostgresError) -> String? {
        try scalar("SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = $1", [name])
    }

    public func renameDatabase(_ name: String, to newName: String) throws(PostgresError) {
        guard let statement = try scalar("SELECT format('ALTER DATABASE %I RENAME TO %I', $1::text, $2::text)", [name, newName]) else { return }
        try query(statement)
    }

    /// Whether new sessions may connect: off while a database is swapped out, so nothing
    /// reconnects between ending its sessions and renaming it.
    public func setAllowConnections(_ name: String, _ allowed: Bool) throws(PostgresError) {
        guard let statement = try scalar("SELECT format('ALTER DATABASE %I WITH ALLOW_CONNECTIONS %s', $1::text, $2::text)",
                                         [name, allowed ? "true" : "false"]) else { return }
        try query(statement)
    }

    /// Ends every other session connected to a database. Returns how many there were.
    @discardableResult
    public func terminateSessions(of name: String) throws(PostgresError) -> Int {
        try query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()", [name]).count
    }

    public func setDatabaseOwner(_ name: String, to role: String) throws(PostgresError) {
        guard let statement = try scalar("SELECT format('ALTER DATABASE %I OWNER TO %I', $1::text, $2::text)", [name, role]) else { return }
        try query(statement)
    }
}
