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
        let preflight = OutboxPreflight(connection: connection, schema: schema)
        do {
            var verdicts = [try await serverVersion(connection)]
            guard try await preflight.schemaExists() else {
                printError("schema \(schema) does not exist: install the capture with `outbox-bridge install --schema \(schema)`, or pass the --schema it was installed into")
                throw ExitCode(2)
            }
            let grant = try await relayGrant(preflight)
            verdicts.append(grant)
            // Connected as a relay login without the grant, every later check would only say
            // "permission denied": the missing grant is the one thing to report.
            guard grant.passed || relayRole != nil else {
                report(verdicts)
                throw ExitCode.failure
            }
            let operations = try await OutboxOperations(connection: connection, schema: schema)
            verdicts.append(try await installedVersion(connection))
            verdicts += try await triggers(preflight)
            let (settings, channel) = try await settings(operations)
            verdicts.append(settings)
            verdicts.append(try await listen(preflight, channel: channel))
            verdicts.append(try await replicationRole(preflight))
            verdicts.append(try await pendingIndex(preflight))
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
        let server = try await OutboxInstaller.serverVersion(connection)
        if let refusal = server.refusal {
            return .failed(refusal, fix: "upgrade the server to PostgreSQL \(OutboxInstaller.minimumServerMajor) or newer")
        }
        return .ok("server: PostgreSQL \(server.version) is supported")
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

    private func triggers(_ preflight: OutboxPreflight) async throws -> [Verdict] {
        try await preflight.eventTriggers().map { trigger in
            let name = trigger.name
            if !trigger.exists {
                return .failed("event trigger \(name): missing", fix: "outbox-bridge install --schema \(schema)")
            }
            if let owner = trigger.functionSchema, owner != schema {
                return .failed("event trigger \(name): captures into schema \(owner), not \(schema)", fix: "pass --schema \(owner)")
            }
            if trigger.isDisabled {
                return .failed("event trigger \(name): DISABLED, DDL is not captured",
                               fix: "ALTER EVENT TRIGGER \(name) ENABLE; then SELECT \(schema).reconcile()")
            }
            return .ok("event trigger \(name): enabled")
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

    private func relayGrant(_ preflight: OutboxPreflight) async throws -> Verdict {
        guard let grant = try await preflight.relayGrant(of: relayRole) else {
            return .failed("relay role \(relayRole ?? "?"): does not exist", fix: "CREATE ROLE \(relayRole ?? "?") LOGIN; GRANT outbox_relay TO it")
        }
        guard grant.holdsOutboxRelay else {
            return .failed("relay role \(grant.role): lacks outbox_relay", fix: "GRANT outbox_relay TO \(grant.quotedRole)")
        }
        return .ok("relay role \(grant.role): holds outbox_relay")
    }

    private func listen(_ preflight: OutboxPreflight, channel: String?) async throws -> Verdict {
        guard let channel else { return .failed("LISTEN: no notify channel configured", fix: "fix the settings row first") }
        let probe = try await preflight.probeListen(on: channel)
        if let failure = probe.failure {
            return .failed("LISTEN \(probe.quotedChannel): \(failure.description)",
                           fix: "connect the relay's LISTEN session directly, not through a transaction-mode pooler")
        }
        return .ok("LISTEN \(probe.quotedChannel): works")
    }

    private func replicationRole(_ preflight: OutboxPreflight) async throws -> Verdict {
        let settings = try await preflight.replicaRoleSettings()
        guard settings.isEmpty else {
            return .failed("session_replication_role: replica for \(settings.count) database or role setting(s), their DDL is not captured",
                           fix: settings.compactMap { $0 }.joined(separator: "; ") + "; then SELECT \(schema).reconcile()")
        }
        return .ok("session_replication_role: not set to replica for this database or any role")
    }

    private func pendingIndex(_ preflight: OutboxPreflight) async throws -> Verdict {
        guard try await preflight.hasPendingIndex() else {
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
