import Foundation
import Logging
import Outbox
import Postgres
import TestSupport
import Testing

/// On PostgreSQL 11 (and so 12) the install used to succeed and then break every captured DDL of
/// every tenant. Both install paths now refuse such a server before creating anything.
@Suite("A server below PostgreSQL 13 is refused before anything is created", .tags(.capture))
struct VersionFloorTests {
    @Test("outbox-bridge install and the psql files both refuse PostgreSQL 11 with one line naming its version and the minimum")
    func refusesPostgres11() async throws {
        let cluster = try await PrivatePostgresCluster.start(binaries: try await PostgresVersions.binaries(major: 11))
        do {
            let database = try await TestDatabase.create("floor", clusterURL: cluster.url)
            let connection = try await database.connect()
            let version = try await connection.query("SHOW server_version")[0]["server_version"] ?? "?"
            #expect(version.hasPrefix("11."))

            let error = await #expect(throws: InstallError.self) {
                try await OutboxInstaller(connection: connection, schema: "platform", logger: Logger(label: "test"))
                    .install(try OutboxMigration.load(from: OutboxTestEnvironment.sqlDirectory))
            }
            #expect(error?.description == "PostgreSQL \(version) is not supported: the minimum is 13; nothing was changed")
            try await expectNothingCreated(connection)

            // The documented psql loop stops at the first file, on one clear error line.
            let first = OutboxTestEnvironment.sqlDirectory.appendingPathComponent("001_outbox_tables.sql").path
            let psql = try await runTool(
                "/usr/bin/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "schema=platform", "-d", database.url, "-f", first])
            #expect(psql.status != 0)
            let errors = psql.errorOutput.split(separator: "\n").filter { $0.contains("ERROR:") }
            #expect(errors.count == 1, "\(psql.errorOutput)")
            #expect(errors.first?.hasSuffix("outbox-bridge: PostgreSQL \(version) is not supported: the minimum is 13; nothing was changed") == true,
                    "\(psql.errorOutput)")
            try await expectNothingCreated(connection)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    private func expectNothingCreated(_ connection: PostgresConnection) async throws {
        let left = try await connection.query(
            """
            SELECT (SELECT count(*) FROM pg_namespace WHERE nspname = 'platform') AS schemas,
                   (SELECT count(*) FROM pg_roles WHERE rolname LIKE 'outbox\\_%') AS roles,
                   (SELECT count(*) FROM pg_event_trigger) AS triggers
            """)
        #expect(left[0]["schemas"] == "0")
        #expect(left[0]["roles"] == "0")
        #expect(left[0]["triggers"] == "0")
    }
}
