import ArgumentParser
import Foundation
import Logging
import Outbox
import Postgres

/// `outbox-bridge check`: a preflight that answers, one line per check, whether capture and
/// relay can work on this database, and for each failure what to run to fix it. Capture that
/// silently stops (a disabled trigger, `session_replication_role = replica`) raises no error
/// anywhere else.
struct CheckCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check that capture and relay can work on a database; exits non-zero on any failure.",
        discussion: """
            Connect as the relay's login to check its grants, or pass --relay-role. With --drift, \
            also lists the tables whose catalog shape differs from the capture's snapshot (DDL the \
            event triggers never saw) without emitting anything; platform.reconcile() emits them.
            """)

    @OptionGroup var outbox: OutboxLocation
    @Option(help: "Role the relay logs in as (default: the role this check connects as).")
    var relayRole: String?
    @Flag(help: "Also list drift: tables that changed without the event triggers seeing it.")
    var drift = false

    private var schema: String { outbox.schema }

    /// One check's verdict: its line, and for a failure what to run.
    private struct Verdict {
        var passed: Bool
        var line: String
        var fix: String?

        static func ok(_ line: String) -> Verdict { Verdict(passed: true, line: line) }
        static func failed(_ line: String, fix: String) -> Verdict { Verdict(passed: false, line: line, fix: fix) }
    }

    func run() async throws {
        let logger = Logger(label: "outbox-bridge.check")
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(outbox.effectiveDatabaseURL, logger: logger)
        } catch {
            printError("cannot connect: \(error.description)")
            throw ExitCode.failure
        }
        do {
            var verdicts = [try await serverVersion(connection)]
            guard try await schemaExists(connection) else {
                printError("schema \(schema) does not exist: install the capture with `outbox-bridge install --schema \(schema)`, or pass the --schema it was installed into")
                throw ExitCode(2)
            }
            let grant = try await relayGrant(connection)
            verdicts.append(grant)
            // Connected as a relay login without the grant, every later check would only say
            // "permission denied": the missing grant is the one thing to report.
            guard grant.passed || relayRole != nil else {
                report(verdicts)
                throw ExitCode.failure
            }
            let operations = try await OutboxOperations(connection: connection, schema: schema)
            verdicts.append(try await installedVersion(connection))
            verdicts += try await triggers(connection)
            let (settings, channel) = try await settings(operations)
            verdicts.append(settings)
            verdicts.append(try await listen(connection, channel: channel))
            verdicts.append(try await replicationRole(connection))
            verdicts.append(try await pendingIndex(connection))
            report(verdicts)
            if drift {
                try await listDrift(operations)
            }
            if verdicts.contains(where: { !$0.passed }) {
                throw ExitCode.failure
            }
        } catch let error as PostgresError {
            printError(error.description)
            throw ExitCode.failure
        }
    }

    private func report(_ verdicts: [Verdict]) {
        for verdict in verdicts {
            print((verdict.passed ? "ok    " : "FAIL  ") + verdict.line + (verdict.fix.map { " (fix: \($0))" } ?? ""))
        }
    }

    private func serverVersion(_ connection: PostgresConnection) async throws -> Verdict {
        if let refusal = try await OutboxInstaller.unsupportedServerVersion(connection) {
            return .failed(refusal, fix: "upgrade the server to PostgreSQL \(OutboxInstaller.minimumServerMajor) or newer")
        }
        let version = try await connection.query("SELECT pg_catalog.split_part(pg_catalog.current_setting('server_version'), ' ', 1) AS v")
        return .ok("server: PostgreSQL \(version[0]["v"] ?? "?") is supported")
    }

    private func schemaExists(_ connection: PostgresConnection) async throws -> Bool {
        try await connection.query("SELECT count(*) AS n FROM pg_catalog.pg_namespace WHERE nspname = $1", [schema])[0]["n"] != "0"
    }

    private func installedVersion(_ connection: PostgresConnection) async throws -> Verdict {
        let installed = try await OutboxInstaller(connection: connection, schema: schema, logger: Logger(label: "outbox-bridge.check"))
            .appliedVersions()
        guard let current = installed.max() else {
            return .failed("capture: not installed in schema \(schema)", fix: "outbox-bridge install --schema \(schema)")
        }
        if let available = try? OutboxMigration.load(from: InstallCommand.locateSQL(nil)).map(\.version).max(), available > current {
            return .failed("capture: installed at version \(current), version \(available) is available",
                           fix: "outbox-bridge install --schema \(schema)")
        }
        return .ok("capture: installed in schema \(schema) at version \(current)")
    }

    private func triggers(_ connection: PostgresConnection) async throws -> [Verdict] {
        let rows = try await connection.query(
            """
            SELECT t.name, e.evtenabled::text AS enabled, n.nspname AS schema
              FROM pg_catalog.unnest(ARRAY['outbox_bridge_capture_ddl', 'outbox_bridge_capture_drop']) t(name)
              LEFT JOIN pg_catalog.pg_event_trigger e ON e.evtname = t.name
              LEFT JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
              LEFT JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             ORDER BY t.name
            """)
        return rows.map { row in
            let name = row["name"] ?? "?"
            switch (row["enabled"], row["schema"]) {
            case (nil, _):
                return .failed("event trigger \(name): missing", fix: "outbox-bridge install --schema \(schema)")
            case (_, let owner?) where owner != schema:
                return .failed("event trigger \(name): captures into schema \(owner), not \(schema)", fix: "pass --schema \(owner)")
            case ("D", _):
                return .failed("event trigger \(name): DISABLED, DDL is not captured",
                               fix: "ALTER EVENT TRIGGER \(name) ENABLE; then SELECT \(schema).reconcile()")
            default:
                return .ok("event trigger \(name): enabled")
            }
        }
    }

    private func settings(_ operations: OutboxOperations) async throws -> (Verdict, String?) {
        let rows = try await operations.captureSettings()
        guard rows.count == 1 else {
            return (.failed("settings: \(rows.count) rows in \(schema).settings, every DDL fails without one",
                            fix: "INSERT INTO \(operations.quotedSchema).settings DEFAULT VALUES"), nil)
        }
        let row = rows[0]
        let line = "settings: capture_schemas \(row.captureSchemas ?? "?"), tenant prefix '\(row.tenantSchemaPrefix ?? "")', "
            + "notify channel '\(row.notifyChannel ?? "")'"
        guard row.automationRoleExists else {
            let role = row.automationRole ?? "?"
            return (.failed(line + ", automation role \(role) does not exist (its DDL would be captured)",
                            fix: "CREATE ROLE \(role) NOLOGIN, or UPDATE \(operations.quotedSchema).settings SET automation_role = ..."),
                    row.notifyChannel)
        }
        return (.ok(line), row.notifyChannel)
    }

    private func relayGrant(_ connection: PostgresConnection) async throws -> Verdict {
        let rows = try await connection.query(
            """
            SELECT r.rolname::text AS role,
                   pg_catalog.pg_has_role(r.oid, 'outbox_relay', 'MEMBER') AS member
              FROM pg_catalog.pg_roles r WHERE r.rolname = COALESCE($1, current_user)
            """, [relayRole])
        guard let row = rows.first else {
            return .failed("relay role \(relayRole ?? "?"): does not exist", fix: "CREATE ROLE \(relayRole ?? "?") LOGIN; GRANT outbox_relay TO it")
        }
        let role = row["role"] ?? "?"
        guard try row.require(Bool.self, column: "member") else {
            return .failed("relay role \(role): lacks outbox_relay", fix: "GRANT outbox_relay TO \(try await connection.quoteIdentifier(role))")
        }
        return .ok("relay role \(role): holds outbox_relay")
    }

    private func listen(_ connection: PostgresConnection, channel: String?) async throws -> Verdict {
        guard let channel else { return .failed("LISTEN: no notify channel configured", fix: "fix the settings row first") }
        let quotedChannel = try await connection.quoteIdentifier(channel)
        do {
            try await connection.execute(script: "LISTEN \(quotedChannel); UNLISTEN \(quotedChannel);")
            return .ok("LISTEN \(quotedChannel): works")
        } catch {
            return .failed("LISTEN \(quotedChannel): \(error.description)",
                           fix: "connect the relay's LISTEN session directly, not through a transaction-mode pooler")
        }
    }

    /// `replica` skips every event trigger without an error; set for a database or role, it
    /// silently stops capture for every session it covers.
    private func replicationRole(_ connection: PostgresConnection) async throws -> Verdict {
        let rows = try await connection.query(
            """
            SELECT CASE WHEN s.setdatabase = 0 THEN 'ALTER ROLE ' || pg_catalog.quote_ident(r.rolname)
                        WHEN s.setrole = 0 THEN 'ALTER DATABASE ' || pg_catalog.quote_ident(d.datname)
                        ELSE 'ALTER ROLE ' || pg_catalog.quote_ident(r.rolname) || ' IN DATABASE ' || pg_catalog.quote_ident(d.datname)
                   END || ' RESET session_replication_role' AS fix
              FROM pg_catalog.pg_db_role_setting s
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
              LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
             WHERE (s.setdatabase = 0 OR d.datname = pg_catalog.current_database())
               AND EXISTS (SELECT 1 FROM pg_catalog.unnest(s.setconfig) c WHERE pg_catalog.lower(c) = 'session_replication_role=replica')
            """)
        guard rows.isEmpty else {
            return .failed("session_replication_role: replica for \(rows.count) database or role setting(s), their DDL is not captured",
                           fix: rows.compactMap { $0["fix"] }.joined(separator: "; ") + "; then SELECT \(schema).reconcile()")
        }
        return .ok("session_replication_role: not set to replica for this database or any role")
    }

    private func pendingIndex(_ connection: PostgresConnection) async throws -> Verdict {
        let rows = try await connection.query(
            "SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_changes_pending_idx', $1::text)) IS NOT NULL AS present", [schema])
        guard try rows[0].require(Bool.self, column: "present") else {
            return .failed("pending index: \(schema).schema_changes_pending_idx is missing, claims scan the whole outbox",
                           fix: "CREATE INDEX schema_changes_pending_idx ON \(schema).schema_changes (id) WHERE NOT processed AND NOT dead")
        }
        return .ok("pending index: present")
    }

    private func listDrift(_ operations: OutboxOperations) async throws {
        let tables = try await operations.drift()
        print("drift: \(tables.count) table(s)" + (tables.isEmpty ? "" : " (SELECT \(schema).reconcile() emits them)"))
        for table in tables {
            print("  \(table.drift)  \(table.name)")
        }
    }
}
