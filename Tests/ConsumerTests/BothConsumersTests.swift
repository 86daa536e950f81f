import Consumers
import Foundation
import Logging
import Postgres
import TestSupport
import Testing

/// The whole pipeline at once: tenants change their schemas, the relay publishes, and both
/// consumers, each in its own group, bring their worlds up to date from the same topic.
@Suite("DDL → relay → Kafka → sdk-sync and warehouse-sync")
struct BothConsumersTests {
    @Test("two tenants' DDL gives compiling SDKs that describe the tables and a warehouse with the tables mirrored")
    func bothConsumers() async throws {
        let environment = try await OutboxTestEnvironment.start("both_consumers")
        let sql = try await environment.database.connect()
        let warehouse = try await TestDatabase.create("both_consumers_wh")
        try await withRunningRelay(environment.relayConfiguration()) {
            try await sql.execute(script: """
                CREATE SCHEMA tenant_acme;
                CREATE TABLE tenant_acme.sensors (id bigint PRIMARY KEY, reading float8 NOT NULL);
                ALTER TABLE tenant_acme.sensors ADD COLUMN humidity numeric(5,2);
                CREATE SCHEMA tenant_globex;
                CREATE TABLE tenant_globex.orders (id uuid PRIMARY KEY, total int NOT NULL, note text);
                ALTER TABLE tenant_globex.orders ALTER COLUMN total TYPE bigint;
                ALTER TABLE tenant_globex.orders RENAME COLUMN note TO remark;
                """)
            try await environment.waitUntilAllDelivered(sql)
        }

        let output = FileManager.default.temporaryDirectory.appendingPathComponent("both-consumers-\(UUID().uuidString)")
        try await consumeEverything(
            environment, sql, group: "sdk-sync", handler: SDKSyncHandler(outputDirectory: output, logger: testLogger()))
        try await consumeEverything(
            environment, sql, group: "warehouse-sync",
            handler: WarehouseSyncHandler(configuration: WarehouseSyncConfiguration(warehouseURL: warehouse.url)))

        for tenant in ["acme", "globex"] {
            try await TypeScriptCompiler.check(package: output.appendingPathComponent(tenant))
        }
        let acme = try String(contentsOf: output.appendingPathComponent("acme/src/index.ts"), encoding: .utf8)
        #expect(acme.contains("export interface Sensors {") && acme.contains("\"humidity\": string | null;"))
        let globex = try String(contentsOf: output.appendingPathComponent("globex/src/index.ts"), encoding: .utf8)
        #expect(globex.contains("\"total\": string;") && globex.contains("\"remark\": string | null;"))

        let mirrored = try await warehouse.connect().query(
            """
            SELECT n.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) AS column
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname IN ('tenant_acme', 'tenant_globex') AND c.relkind = 'r'
            ORDER BY 1
            """).compactMap { $0["column"] }
        #expect(mirrored == [
            "tenant_acme.sensors.humidity numeric(5,2)", "tenant_acme.sensors.id bigint", "tenant_acme.sensors.reading double precision",
            "tenant_globex.orders.id uuid", "tenant_globex.orders.remark text", "tenant_globex.orders.total bigint",
        ])
        await environment.drop()
    }
}
