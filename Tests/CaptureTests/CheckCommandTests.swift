import Foundation
import Outbox
import Postgres
import TestSupport
import Testing

/// `outbox-bridge check` run as a process, the way an operator runs it: one line per check,
/// each failure with what to run, and a non-zero exit on any failure.
@Suite("outbox-bridge check: one line per check, a fix for each failure", .tags(.capture))
struct CheckCommandTests {
    /// A database with the capture installed and a login holding only `outbox_relay`.
    struct Installed {
        let database: TestDatabase
        let admin: PostgresConnection
        let relayURL: String

        static func make(_ label: String, clusterURL: String? = nil) async throws -> Installed {
            let database = try await TestDatabase.createInstalled(label, clusterURL: clusterURL)
            let admin = try await database.connect()
            return Installed(database: database, admin: admin, relayURL: try await database.relayLoginURL())
        }

        /// The relay login's role name.
        var relayRole: String { URLComponents(string: relayURL)?.user ?? "?" }
    }

    struct CheckRun {
        let status: Int32
        let lines: [String]
        let errorLines: [String]

        /// The line of the check whose text (after the ok/FAIL column) starts with `subject`.
        func line(_ subject: String) -> String? {
            lines.first { $0.dropFirst(6).hasPrefix(subject) }
        }
    }

    private func check(_ url: String, _ arguments: [String] = []) async throws -> CheckRun {
        let result = try await runTool(
            try RelayProcess.executableURL().path, ["check", "--database-url", url] + arguments,
            timeout: .seconds(120))
        func lines(_ text: String) -> [String] { text.split(separator: "\n").map(String.init) }
        return CheckRun(status: result.status, lines: lines(result.output), errorLines: lines(result.errorOutput))
    }

    @Test("a healthy install passes as the relay login: exit 0, one ok line per check, the version and mode named")
    func healthy() async throws {
        let installed = try await Installed.make("check_ok")
        let version = try await installed.admin.query("SHOW server_version")[0]["server_version"] ?? "?"
        let latest = try OutboxMigration.load(from: OutboxTestEnvironment.sqlDirectory).map(\.version).max() ?? 0
        let run = try await check(installed.relayURL)
        #expect(run.status == 0, "\(run)")
        #expect(run.errorLines.isEmpty, "\(run.errorLines)")
        #expect(run.lines.count == 9, "\(run.lines)")
        #expect(run.lines.allSatisfy { $0.hasPrefix("ok    ") }, "\(run.lines)")
        #expect(run.line("server:") == "ok    server: PostgreSQL \(version.split(separator: " ")[0]) is supported")
        #expect(run.line("capture:") == "ok    capture: installed in schema platform at version \(latest)")
        #expect(run.line("event trigger outbox_bridge_capture_ddl:") == "ok    event trigger outbox_bridge_capture_ddl: enabled")
        #expect(run.line("event trigger outbox_bridge_capture_drop:") == "ok    event trigger outbox_bridge_capture_drop: enabled")
        #expect(run.line("settings:")?.contains("capture_schemas {all}") == true, "\(run.lines)")
        #expect(run.line("relay role \(installed.relayRole):") == "ok    relay role \(installed.relayRole): holds outbox_relay")
        #expect(run.line("LISTEN") != nil)
        #expect(run.line("session_replication_role:") != nil)
        #expect(run.line("pending index:") == "ok    pending index: present")
        try? await installed.database.drop()
    }

    @Test("check prints the capture_schemas mode in force")
    func captureSchemasMode() async throws {
        let installed = try await Installed.make("check_mode")
        try await installed.admin.execute(script: "UPDATE platform.settings SET capture_schemas = '{tenants}'")
        #expect(try await check(installed.relayURL).line("settings:")?.contains("capture_schemas {tenants}") == true)
        try await installed.admin.execute(script: "UPDATE platform.settings SET capture_schemas = '{tenant_*,billing}'")
        let run = try await check(installed.relayURL)
        #expect(run.status == 0)
        #expect(run.line("settings:")?.contains("capture_schemas {tenant_*,billing}") == true, "\(run.lines)")
        try? await installed.database.drop()
    }

    @Test("a disabled event trigger fails, with the statements that re-enable it and find what it missed")
    func disabledTrigger() async throws {
        let installed = try await Installed.make("check_disabled")
        try await installed.admin.execute(script: "ALTER EVENT TRIGGER outbox_bridge_capture_ddl DISABLE")
        let run = try await check(installed.relayURL)
        #expect(run.status == 1, "\(run)")
        #expect(run.line("event trigger outbox_bridge_capture_ddl:")
            == "FAIL  event trigger outbox_bridge_capture_ddl: DISABLED, DDL is not captured "
            + "(fix: ALTER EVENT TRIGGER outbox_bridge_capture_ddl ENABLE; then SELECT platform.reconcile())")
        #expect(run.lines.filter { $0.hasPrefix("FAIL") }.count == 1, "\(run.lines)")
        try? await installed.database.drop()
    }

    @Test("a relay login without outbox_relay is told the grant it lacks, whether checked by name or connected as")
    func relayLoginWithoutGrant() async throws {
        let installed = try await Installed.make("check_grant")
        try await installed.admin.execute(script: "REVOKE outbox_relay FROM \(try await installed.admin.quoteIdentifier(installed.relayRole))")
        let expected = "FAIL  relay role \(installed.relayRole): lacks outbox_relay (fix: GRANT outbox_relay TO \"\(installed.relayRole)\")"
        let byName = try await check(installed.database.url, ["--relay-role", installed.relayRole])
        #expect(byName.status == 1, "\(byName)")
        #expect(byName.line("relay role \(installed.relayRole):") == expected)
        #expect(byName.lines.filter { $0.hasPrefix("FAIL") }.count == 1, "\(byName.lines)")

        // Connected as that login, the later checks cannot read the outbox: the grant is the line.
        let connected = try await check(installed.relayURL)
        #expect(connected.status == 1, "\(connected)")
        #expect(connected.errorLines.isEmpty, "\(connected.errorLines)")
        #expect(connected.lines.last == expected, "\(connected.lines)")
        try? await installed.database.drop()
    }

    /// A role's setting for every database applies cluster-wide, so that case runs in a cluster
    /// of its own: the shared one serves other tests' checks at the same time.
    @Test("session_replication_role = replica set for the database, a role in it, or a role everywhere fails, naming the setting to reset",
          arguments: ["database", "role in database", "role"])
    func replicaSetting(_ level: String) async throws {
        let cluster = level == "role" ? try await PrivatePostgresCluster.start() : nil
        do {
            let installed = try await Installed.make("check_replica", clusterURL: cluster?.url)
            let role = installed.relayRole, database = installed.database.name
            let target = switch level {
            case "database": "ALTER DATABASE \(database)"
            case "role in database": "ALTER ROLE \(role) IN DATABASE \(database)"
            default: "ALTER ROLE \(role)"
            }
            try await installed.admin.execute(script: "\(target) SET session_replication_role = replica")
            let run = try await check(installed.relayURL)
            #expect(run.status == 1, "\(run)")
            #expect(run.line("session_replication_role:")
                == "FAIL  session_replication_role: replica for 1 database or role setting(s), their DDL is not captured "
                + "(fix: \(target) RESET session_replication_role; then SELECT platform.reconcile())", "\(run.lines)")
            try await installed.admin.execute(script: "\(target) RESET session_replication_role")
            #expect(try await check(installed.relayURL).status == 0)
            try? await installed.database.drop()
        } catch {
            await cluster?.stop()
            throw error
        }
        await cluster?.stop()
    }

    @Test("a missing pending index fails with the CREATE INDEX that restores it")
    func missingPendingIndex() async throws {
        let installed = try await Installed.make("check_index")
        try await installed.admin.execute(script: "DROP INDEX platform.schema_changes_pending_idx")
        let run = try await check(installed.relayURL)
        #expect(run.status == 1, "\(run)")
        #expect(run.line("pending index:")?.hasSuffix(
            "(fix: CREATE INDEX schema_changes_pending_idx ON platform.schema_changes (id) WHERE NOT processed AND NOT dead)") == true,
            "\(run.lines)")
        try? await installed.database.drop()
    }

    @Test("a --schema that does not exist gives one clear line and exit 2")
    func unknownSchema() async throws {
        let installed = try await Installed.make("check_schema")
        let run = try await check(installed.relayURL, ["--schema", "nowhere"])
        #expect(run.status == 2, "\(run)")
        #expect(run.errorLines.count == 1, "\(run.errorLines)")
        #expect(run.errorLines.first?.contains("schema nowhere does not exist") == true, "\(run.errorLines)")
        try? await installed.database.drop()
    }

    @Test("check --drift lists DDL the triggers missed without emitting anything; reconcile() then emits it")
    func listsDrift() async throws {
        let installed = try await Installed.make("check_drift")
        try await installed.admin.execute(script: """
            CREATE SCHEMA tenant_d; CREATE TABLE tenant_d.kept (id int);
            SET session_replication_role = replica;
            CREATE TABLE tenant_d.unseen (id int); ALTER TABLE tenant_d.kept ADD COLUMN missed text;
            RESET session_replication_role;
            """)
        let before = try await installed.admin.query("SELECT count(*) AS n FROM platform.schema_changes")[0]["n"]
        let run = try await check(installed.relayURL, ["--drift"])
        #expect(run.status == 0, "\(run)")
        let drift = Array(run.lines.drop { !$0.hasPrefix("drift:") })
        #expect(drift == [
            "drift: 2 table(s) (SELECT platform.reconcile() emits them)", "  altered  tenant_d.kept", "  created  tenant_d.unseen",
        ])
        #expect(try await installed.admin.query("SELECT count(*) AS n FROM platform.schema_changes")[0]["n"] == before)
        #expect(try await installed.admin.query("SELECT platform.reconcile() AS n")[0]["n"] == "2")
        #expect(Array(try await check(installed.relayURL, ["--drift"]).lines.drop { !$0.hasPrefix("drift:") }) == ["drift: 0 table(s)"])
        try? await installed.database.drop()
    }
}
