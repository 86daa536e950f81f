import Consumers
import Foundation
import Logging
import Outbox
import Postgres
import TestSupport
import Testing

@Suite("Consumers decode every event the capture SQL writes")
struct SchemaChangeEventTests {
    @Test("CREATE, ALTER (every change kind), COMMENT, enums, drops and domain events decode with their shapes")
    func decodesCapturedEvents() async throws {
        let database = try await TestDatabase.create("decode")
        let sql = try await database.connect()
        try await OutboxInstaller(connection: sql, schema: "platform", logger: Logger(label: "test"))
            .install(try OutboxMigration.load(from: OutboxTestEnvironment.sqlDirectory))
        try await sql.execute(script: """
            CREATE SCHEMA tenant_acme;
            CREATE TYPE tenant_acme.status AS ENUM ('on', 'off');
            ALTER TYPE tenant_acme.status ADD VALUE 'broken';
            CREATE TABLE tenant_acme.sensors (id bigint PRIMARY KEY, reading float8 NOT NULL, status tenant_acme.status);
            ALTER TABLE tenant_acme.sensors ADD COLUMN humidity numeric(5,2), ALTER COLUMN reading DROP NOT NULL;
            ALTER TABLE tenant_acme.sensors RENAME COLUMN reading TO temperature;
            ALTER TABLE tenant_acme.sensors ALTER COLUMN humidity TYPE numeric(7,2);
            COMMENT ON TABLE tenant_acme.sensors IS 'IoT sensors';
            COMMENT ON COLUMN tenant_acme.sensors.temperature IS 'Celsius';
            DROP TABLE tenant_acme.sensors;
            SELECT platform.emit('acme', 'OrderPlaced', '{"order": 1}');
            """)
        let rows = try await sql.query("SELECT event_data::text AS event FROM platform.schema_changes ORDER BY id")
        let events = try rows.map { try SchemaChangeEvent.decode(Array(($0["event"] ?? "").utf8)) }
        #expect(events.map(\.command) == [
            "CREATE SCHEMA", "CREATE TYPE", "ALTER TYPE", "CREATE TABLE", "ALTER TABLE", "ALTER TABLE", "ALTER TABLE",
            "COMMENT", "COMMENT", "DROP TABLE", "OrderPlaced",
        ])
        #expect(events.allSatisfy { $0.tenantID == "acme" })
        #expect(events[2].enumType?.values == ["on", "off", "broken"])
        #expect(events[3].table?.columns?.map(\.name) == ["id", "reading", "status"])
        #expect(events[3].table?.primaryKey == ["id"])
        #expect(events[4].changes?.columnsAdded.map(\.name) == ["humidity"])
        #expect(events[4].changes?.nullabilityChanged.first?.newNullable == true)
        #expect(events[5].changes?.columnsRenamed == [Rename(old: "reading", new: "temperature")])
        #expect(events[6].changes?.columnsRetyped.first?.newType == "numeric(7,2)")
        #expect(events[7].table?.comment == "IoT sensors")
        #expect(events[8].table?.columns?.first { $0.name == "temperature" }?.comment == "Celsius")
        #expect(events[9].table?.columns?.map(\.name) == ["id", "temperature", "status", "humidity"])
        #expect(events[10].kind == "domain")
    }
}
