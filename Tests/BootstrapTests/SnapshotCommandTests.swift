import Foundation
import Logging
import Outbox
import Postgres
import TestSupport
import Testing

/// `outbox-bridge snapshot` as a process, run as the relay's least-privilege login: it prints the
/// counts and exits 0, and bad input exits 2 with one line naming the problem.
@Suite("outbox-bridge snapshot")
struct SnapshotCommandTests {
    private func snapshot(_ arguments: [String]) async throws -> ToolResult {
        try await runTool(RelayProcess.executableURL().path, ["snapshot"] + arguments, timeout: .seconds(120))
    }

    @Test("prints the counts per tenant and in all; the events are in the outbox")
    func countsAndEvents() async throws {
        let (database, connection) = try await installedDatabase("snapshot_cli")
        try await connection.execute(script: """
            CREATE SCHEMA tenant_a; CREATE TYPE tenant_a.mood AS ENUM ('ok');
            CREATE TABLE tenant_a.t (id int, m tenant_a.mood); CREATE TABLE tenant_a.p (d date) PARTITION BY RANGE (d);
            CREATE TABLE tenant_a.p1 PARTITION OF tenant_a.p DEFAULT;
            CREATE SCHEMA tenant_b; CREATE TABLE tenant_b.t (id int);
            """)
        let relayURL = try await database.relayLoginURL()

        let one = try await snapshot(["--tenant", "a", "--database-url", relayURL])
        #expect(one.status == 0, "\(one.errorOutput)")
        let lines = one.output.split(separator: "\n").map(String.init)
        #expect(lines.first == "tenant a: 3 tables, 1 enums")
        #expect(lines.count == 2 && lines[1].hasSuffix(": 1 tenants, 3 tables, 1 enums"), "\(lines)")

        let all = try await snapshot(["--all", "--database-url", relayURL])
        #expect(all.status == 0, "\(all.errorOutput)")
        #expect(all.output.contains("tenant a: 3 tables, 1 enums\ntenant b: 1 tables, 0 enums\n"), "\(all.output)")
        #expect(all.output.contains(": 2 tenants, 4 tables, 1 enums"), "\(all.output)")

        let kinds = try await connection.query("""
            SELECT event_data->>'kind' AS kind, count(*)::int AS n FROM platform.schema_changes
             WHERE event_data->>'kind' LIKE 'snapshot%' GROUP BY 1 ORDER BY 1
            """)
        #expect(try kinds.map { "\(try $0.require(String.self, column: "kind")):\(try $0.require(Int.self, column: "n"))" }
            == ["snapshot:9", "snapshot_end:3"])
        try await database.drop()
    }

    @Test("bad input exits 2 with one line naming the problem")
    func badInput() async throws {
        let (database, _) = try await installedDatabase("snapshot_cli_bad")
        let relayURL = try await database.relayLoginURL()
        for (arguments, mentions) in [
            (["--database-url", relayURL], "give --tenant T or --all"),
            (["--tenant", "a", "--all", "--database-url", relayURL], "--tenant and --all exclude each other"),
            (["--tenant", "", "--database-url", relayURL], "--tenant must not be empty"),
            (["--tenant", "nobody", "--database-url", relayURL], "tenant 'nobody' has no schema tenant_nobody"),
        ] {
            let result = try await snapshot(arguments)
            #expect(result.status == 2, "\(arguments): \(result.errorOutput)")
            let lines = result.errorOutput.split(separator: "\n")
            #expect(lines.count == 1 && lines[0].contains(mentions), "\(arguments): \(result.errorOutput)")
        }
        try await database.drop()
    }
}

/// A fresh database with the outbox installed (schema platform), and a superuser connection.
func installedDatabase(_ label: String) async throws -> (TestDatabase, PostgresConnection) {
    let database = try await TestDatabase.create(label)
    let connection = try await database.connect()
    try await OutboxInstaller(connection: connection, schema: "platform", logger: Logger(label: "test.install"))
        .install(try OutboxMigration.load(from: OutboxTestEnvironment.sqlDirectory))
    return (database, connection)
}
