import Foundation
import Logging
import Outbox
import Postgres
import TestSupport
import Testing

@Suite("outbox-bridge install: versioned, idempotent, all or nothing")
struct CaptureInstallTests {
    let migrations: [OutboxMigration]

    init() throws {
        migrations = try OutboxMigration.load(from: OutboxTestEnvironment.sqlDirectory)
    }

    @Test("install applies every migration once; re-running is a no-op; an upgrade applies only newer ones")
    func versionedAndIdempotent() async throws {
        let database = try await TestDatabase.create("install")
        let connection = try await database.connect()
        let installer = OutboxInstaller(connection: connection, schema: "platform", logger: Logger(label: "test"))

        let older = Array(migrations.dropLast())
        #expect(try await installer.install(older).map(\.version) == older.map(\.version))
        #expect(try await installer.install(migrations).map(\.version) == [migrations.last!.version])
        #expect(try await installer.install(migrations).isEmpty)
        #expect(try await installer.appliedVersions() == Set(migrations.map(\.version)))

        try await connection.execute(script: "CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.t (id int)")
        let events = try await connection.query("SELECT event_data->>'command' AS command FROM platform.schema_changes ORDER BY id")
        #expect(events.map { $0["command"] } == ["CREATE SCHEMA", "CREATE TABLE"])
    }

    @Test("a role without the privilege is told which one it lacks, and nothing changes")
    func missingPrivilege() async throws {
        let database = try await TestDatabase.create("unprivileged")
        let admin = try await database.connect()
        let role = "installer_\(UInt32.random(in: 0...UInt32.max))"
        try await admin.execute(script: "CREATE ROLE \(role) LOGIN; GRANT CREATE ON DATABASE \(database.name) TO \(role);")
        let unprivileged = try await PostgresConnection.connect(database.url.replacingOccurrences(of: "postgres@", with: "\(role)@"))

        let error = await #expect(throws: InstallError.self) {
            try await OutboxInstaller(connection: unprivileged, schema: "platform", logger: Logger(label: "test")).install(migrations)
        }
        #expect(error?.description.contains("event triggers") == true)
        #expect(error?.description.contains(role) == true)
        let schemas = try await admin.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'platform'")
        #expect(schemas[0]["n"] == "0")
    }

    @Test("a schema name that needs quoting installs and captures; an unsafe one is refused before anything is created")
    func schemaNames() async throws {
        let database = try await TestDatabase.create("schema_names")
        let connection = try await database.connect()
        let hostile = #"out"box; DROP TABLE x; --"#
        try await OutboxInstaller(connection: connection, schema: hostile, logger: Logger(label: "test")).install(migrations)
        try await connection.execute(script: "CREATE SCHEMA tenant_q")
        let quoted = try await connection.quoteIdentifier(hostile)
        #expect(try await connection.query("SELECT count(*) AS n FROM \(quoted).schema_changes")[0]["n"] == "1")

        let other = try await TestDatabase.create("schema_refused")
        let refusedConnection = try await other.connect()
        let error = await #expect(throws: InstallError.self) {
            try await OutboxInstaller(connection: refusedConnection, schema: "bad$name", logger: Logger(label: "test"))
                .install(migrations)
        }
        #expect(error?.description.contains("must not contain") == true)
        #expect(try await refusedConnection.query("SELECT count(*) AS n FROM pg_namespace WHERE nspname = 'bad$name'")[0]["n"] == "0")
    }
}

@Suite("Drift: tables that predate the install are announced once by reconcile()", .tags(.capture))
struct PreInstallDriftTests {
    @Test("tables created before the install give one created drift event each, once; tables outside the capture give none")
    func tablesBeforeInstall() async throws {
        let database = try await TestDatabase.create("drift_preinstall")
        let connection = try await database.connect()
        try await connection.execute(script: """
            CREATE SCHEMA tenant_old; CREATE TABLE tenant_old.a (id int PRIMARY KEY); CREATE TABLE tenant_old.b (v text);
            CREATE TABLE public.legacy (id int);
            """)
        try await OutboxInstaller(connection: connection, schema: "platform", logger: Logger(label: "test"))
            .install(try OutboxMigration.load(from: OutboxTestEnvironment.sqlDirectory))
        try await connection.execute(script: "UPDATE platform.settings SET capture_schemas = '{tenants}'")

        #expect(try await connection.query("SELECT platform.reconcile() AS n")[0]["n"] == "2")
        let events = try await connection.query(
            """
            SELECT event_data->>'drift' AS drift, event_data->>'object_identity' AS identity, tenant_key,
                   event_data->'table'->'columns'->0->>'name' AS first_column
            FROM platform.schema_changes WHERE event_data->>'kind' = 'drift' ORDER BY id
            """)
        #expect(events.map { [$0["drift"], $0["identity"], $0["tenant_key"], $0["first_column"]] } == [
            ["created", "tenant_old.a", "old", "id"], ["created", "tenant_old.b", "old", "v"],
        ])
        #expect(try await connection.query("SELECT platform.reconcile() AS n")[0]["n"] == "0")
    }
}
