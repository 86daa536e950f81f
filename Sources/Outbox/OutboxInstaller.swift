public import Foundation
public import Logging
public import Postgres

/// One file of `sql/`: `NNN_name.sql`, whose body sits between the `-- >>> migration body`
/// and `-- <<< migration body` markers. Around the body, psql meta-commands let teams run the
/// same files with `psql -f`; the installer runs only the body.
public struct OutboxMigration: Sendable, Hashable {
    public let version: Int
    public let name: String
    public let body: String

    static let bodyStart = "-- >>> migration body"
    static let bodyEnd = "-- <<< migration body"

    /// Reads every migration in `directory`, in version order.
    public static func load(from directory: URL) throws -> [OutboxMigration] {
        let files = try FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)
            .filter { $0.pathExtension == "sql" }
        let migrations = try files.compactMap { file -> OutboxMigration? in
            let base = file.deletingPathExtension().lastPathComponent
            guard let underscore = base.firstIndex(of: "_"), let version = Int(base[..<underscore]) else { return nil }
            let lines = try String(contentsOf: file, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false)
            // Markers count only as whole lines; the files' comments mention them in passing.
            guard let start = lines.firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == bodyStart }),
                  let end = lines[start...].firstIndex(where: { $0.trimmingCharacters(in: .whitespaces) == bodyEnd })
            else {
                throw InstallError(description: "\(file.lastPathComponent) has no migration body markers")
            }
            return OutboxMigration(
                version: version, name: String(base[base.index(after: underscore)...]),
                body: lines[(start + 1)..<end].joined(separator: "\n"))
        }.sorted { $0.version < $1.version }
        guard !migrations.isEmpty else {
            throw InstallError(description: "no migrations found in \(directory.path)")
        }
        return migrations
    }

    /// The body as one script inside the installer's own transaction: psql's `:"schema"` and
    /// `:'schema'` substitutions done with libpq's quoting, and the file's own `BEGIN`/`COMMIT`
    /// left out.
    func script(quotedSchema: String, schemaLiteral: String) -> String {
        body.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { line in
                let statement = line.trimmingCharacters(in: .whitespaces).uppercased()
                return statement != "BEGIN;" && statement != "COMMIT;"
            }
            .joined(separator: "\n")
            .replacingOccurrences(of: ":\"schema\"", with: quotedSchema)
            .replacingOccurrences(of: ":'schema'", with: schemaLiteral)
    }
}

/// A reason the installer refused or failed; nothing was changed.
public struct InstallError: Error, CustomStringConvertible {
    public let description: String

    public init(description: String) {
        self.description = description
    }
}

/// Applies the migrations a database lacks, all in one transaction, so a failure leaves the
/// database exactly as it was. Re-running applies nothing. It also owns the reverse
/// (``uninstall(_:dropData:)``) and the catalog checks `install` makes first, so that every
/// statement on the capture's catalog objects lives beside the migrations that create them.
public struct OutboxInstaller: Sendable {
    public let connection: PostgresConnection
    public let schema: String
    public let logger: Logger

    public init(connection: PostgresConnection, schema: String, logger: Logger) {
        self.connection = connection
        self.schema = schema
        self.logger = logger
    }

    /// Versions already recorded in `<schema>.schema_migrations`.
    public func appliedVersions() async throws -> Set<Int> {
        guard try await recordsMigrations() else { return [] }
        let versions = try await connection.query(
            "SELECT version FROM \(try await connection.quoteIdentifier(schema)).schema_migrations")
        return Set(try versions.map { row throws(PostgresError) in try row.require(Int.self, column: "version") })
    }

    /// The oldest PostgreSQL major the capture runs on. 11 and 12 accept the install, then fail
    /// every captured DDL (no `pg_attribute.attgenerated` on 11, no built-in
    /// `gen_random_uuid()` before 13): installing must never break a customer's migrations.
    public static let minimumServerMajor = 13

    /// The server's release, read once so that `install` judges it and `check` names it from the
    /// same answer.
    public struct ServerVersion: Sendable {
        /// `server_version_num / 10000`.
        public var major: Int
        /// `server_version` without the distributor's suffix (`15.4`, not `15.4 (Debian 15.4-1)`).
        public var version: String

        /// Why the server cannot run the capture (one line naming its version and the minimum),
        /// or nil when it can. `sql/001_outbox_tables.sql` refuses the same servers on the psql
        /// path.
        public var refusal: String? {
            major < OutboxInstaller.minimumServerMajor
                ? "PostgreSQL \(version) is not supported: the minimum is \(OutboxInstaller.minimumServerMajor)" : nil
        }
    }

    public static func serverVersion(_ connection: PostgresConnection) async throws(PostgresError) -> ServerVersion {
        let rows = try await connection.query(
            """
            SELECT pg_catalog.current_setting('server_version_num')::int / 10000 AS major,
                   pg_catalog.split_part(pg_catalog.current_setting('server_version'), ' ', 1) AS version
            """)
        return ServerVersion(
            major: try rows[0].require(Int.self, column: "major"), version: try rows[0].require(String.self, column: "version"))
    }

    /// Installs or upgrades; returns the migrations it applied.
    @discardableResult
    public func install(_ migrations: [OutboxMigration]) async throws -> [OutboxMigration] {
        if let refusal = try await Self.serverVersion(connection).refusal {
            throw InstallError(description: "\(refusal); nothing was changed")
        }
        try await checkPrivileges()
        let applied = try await appliedVersions()
        let pending = migrations.filter { !applied.contains($0.version) }
        guard !pending.isEmpty else {
            logger.info("outbox schema is up to date", metadata: ["schema": "\(schema)", "version": "\(applied.max() ?? 0)"])
            return []
        }
        let quotedSchema = try await connection.quoteIdentifier(schema)
        let schemaLiteral = try await connection.quoteLiteral(schema)
        try await connection.transaction { connection in
            for migration in pending {
                logger.info("applying migration", metadata: ["version": "\(migration.version)", "name": "\(migration.name)"])
                do {
                    try await connection.execute(script: migration.script(quotedSchema: quotedSchema, schemaLiteral: schemaLiteral))
                } catch let error as PostgresError {
                    throw InstallError(description: "migration \(migration.version) (\(migration.name)) failed: \(error.debugDescription)")
                }
            }
        }
        return pending
    }

    /// The schema whose functions the capture's event triggers call, if the database has them.
    /// Event trigger names are database-wide, so a database holds one install; asking first lets
    /// `install` into another schema name the way out (upgrade that schema, or uninstall it)
    /// instead of failing in the middle of a migration.
    public func capturingSchema() async throws(PostgresError) -> String? {
        let rows = try await connection.query("""
            SELECT n.nspname AS schema
            FROM pg_catalog.pg_event_trigger e
            JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
            JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE e.evtname IN ('outbox_bridge_capture_ddl', 'outbox_bridge_capture_drop')
            ORDER BY e.evtname LIMIT 1
            """)
        return try rows.first.map { row throws(PostgresError) in try row.require(String.self, column: "schema") }
    }

    /// Whether `uninstall` left this schema's tables without their functions: its migrations
    /// are recorded but cannot be applied again over the kept tables.
    public func holdsUninstalledData() async throws(PostgresError) -> Bool {
        let rows = try await connection.query("""
            SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', $1::text)) IS NOT NULL
               AND pg_catalog.to_regprocedure(pg_catalog.format('%I.capture_ddl()', $1::text)) IS NULL AS uninstalled
            """, [schema])
        return try rows[0].require(Bool.self, column: "uninstalled")
    }

    /// Whether the schema has `schema_migrations`: the ledger every install writes, which an
    /// uninstall without `--drop-data` keeps with the other tables.
    private func recordsMigrations() async throws(PostgresError) -> Bool {
        try await connection.relationExists("schema_migrations", inSchema: schema)
    }

    /// Event triggers can only be created by a superuser (on Neon, a member of
    /// `neon_superuser`); saying so up front beats a failure halfway through.
    private func checkPrivileges() async throws {
        let rows = try await connection.query(
            """
            SELECT current_user AS role,
                   (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) AS superuser,
                   EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = 'neon_superuser'
                           AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')) AS neon_superuser
            """)
        let row = rows[0]
        let superuser = try row.require(Bool.self, column: "superuser") || row.require(Bool.self, column: "neon_superuser")
        guard superuser else {
            throw InstallError(description: """
                role \(row["role"] ?? "?") lacks the privilege to create event triggers: connect as a superuser \
                (on Neon, a member of neon_superuser); nothing was changed
                """)
        }
    }
}

/// What `uninstall` removes, read from the catalogs so it removes exactly what is there: the
/// event triggers whose function lives in the schema and every routine of the schema (the
/// schema is dedicated to the install; `install` refuses `public`). Read before the operator
/// confirms, so the prompt can say how many rows `--drop-data` would delete.
public struct CaptureRemoval: Sendable {
    public let pendingOrStoredRows: Int64
    /// Quoted names.
    public let eventTriggers: [String]
    /// `DROP FUNCTION` or `DROP PROCEDURE` with the routine's full signature.
    public let routines: [String]
}

extension OutboxInstaller {
    /// What `uninstall` would remove from the schema, or nil when the schema holds no install
    /// (no `schema_migrations`).
    public func plannedRemoval() async throws(PostgresError) -> CaptureRemoval? {
        guard try await recordsMigrations() else { return nil }
        let quoted = try await connection.quoteIdentifier(schema)
        let rows = try await connection.query("SELECT pg_catalog.count(*) AS n FROM \(quoted).schema_changes")
        let triggers = try await connection.query("""
            SELECT pg_catalog.quote_ident(e.evtname) AS name
            FROM pg_catalog.pg_event_trigger e
            JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
            JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = $1 ORDER BY e.evtname
            """, [schema])
        let routines = try await connection.query("""
            SELECT CASE p.prokind WHEN 'p' THEN 'DROP PROCEDURE ' ELSE 'DROP FUNCTION ' END
                   || p.oid::pg_catalog.regprocedure::text AS statement
            FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = $1 AND p.prokind IN ('f', 'p') ORDER BY 1
            """, [schema])
        return CaptureRemoval(
            pendingOrStoredRows: try rows[0].require(Int64.self, column: "n"),
            eventTriggers: try triggers.map { row throws(PostgresError) in try row.require(String.self, column: "name") },
            routines: try routines.map { row throws(PostgresError) in try row.require(String.self, column: "statement") })
    }

    /// Drops what `removal` lists, and with `dropData` the whole schema, in one transaction: a
    /// dependency nobody expected (a user's column default calling `emit`) fails the whole
    /// uninstall with PostgreSQL's message instead of being dropped along.
    public func uninstall(_ removal: CaptureRemoval, dropData: Bool) async throws {
        let quoted = try await connection.quoteIdentifier(schema)
        try await connection.transaction { connection in
            for trigger in removal.eventTriggers {
                try await connection.query("DROP EVENT TRIGGER \(trigger)")
            }
            for routine in removal.routines {
                try await connection.query(routine)
            }
            if dropData {
                try await connection.query("DROP SCHEMA \(quoted) CASCADE")
            }
        }
    }
}
