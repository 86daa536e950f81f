import Consumers
import Foundation
import Kafka
import Logging
import Outbox
import Postgres
import TestSupport
import Testing

@Suite("Warehouse sync in the source's cluster, and as the outbox-bridge process")
struct WarehouseSyncClusterTests {
    /// The dangerous same-cluster case: the warehouse is another database of the source's
    /// cluster and has the capture installed too (an operator installed outbox-bridge in every
    /// database, or the template had it). Every table the sync creates there would become an
    /// event, be relayed, and come back to the sync.
    @Test("same cluster, capture installed in the warehouse: the automation role's DDL produces no outbox rows; other roles are refused")
    func noCaptureLoop() async throws {
        var fixture = try await WarehouseSyncFixture.make("whloop")
        try await WarehouseSyncFixture.installOutbox(fixture.warehouseSQL)
        let role = "warehouse_sync_\(UInt32.random(in: 0...UInt32.max))"
        try await fixture.warehouseSQL.execute(script: """
            CREATE ROLE \(role) LOGIN;
            GRANT outbox_automation TO \(role);
            GRANT CREATE ON DATABASE \(try await fixture.warehouseSQL.quoteIdentifier(fixture.warehouse.name)) TO \(role);
            """)
        var components = try #require(URLComponents(string: fixture.warehouse.url))
        components.user = role
        let automationURL = try #require(components.string)
        let events = try await fixture.capture(WarehouseSyncTests.lifecycle)

        func outboxRowsInWarehouse() async throws -> Int {
            try await fixture.warehouseSQL.query("SELECT count(*) AS n FROM platform.schema_changes")[0]
                .require(Int.self, column: "n")
        }

        // The cluster superuser is not a member of outbox_automation: refused before any DDL.
        let superuser = fixture.handler(url: fixture.warehouse.url)
        await #expect(throws: WarehouseSyncError.self) { try await superuser.prepare() }
        let refused = await HandleOutcome.of(superuser, events[0])
        #expect(refused.isRetriable, "\(refused)")
        if case .retriable(let reason) = refused { #expect(reason.contains("outbox_automation")) }
        #expect(try await outboxRowsInWarehouse() == 0)
        #expect(try await fixture.warehouseSQL.query("SELECT 1 FROM pg_namespace WHERE nspname = 'outbox_warehouse'").isEmpty)

        // As a member of outbox_automation: everything applied, nothing captured.
        let sync = fixture.handler(.keep, url: automationURL)
        try await sync.apply(events)
        try await sync.apply(try await fixture.capture("DROP TABLE tenant_acme.report; DROP SCHEMA tenant_acme CASCADE;"))
        #expect(try await fixture.appliedEventIDs().count == events.count + 3)
        #expect(try await fixture.warehouseSQL.query(
            "SELECT 1 FROM pg_namespace WHERE nspname LIKE 'tenant_acme__deprecated_%'").count == 1)
        #expect(try await outboxRowsInWarehouse() == 0)

        // Control: the same kind of DDL by a role that is not automation is captured there,
        // so the zero above is the loop guard at work, not a capture that never fires.
        try await fixture.warehouseSQL.execute(script: "CREATE SCHEMA tenant_control; CREATE TABLE tenant_control.t (a int);")
        #expect(try await outboxRowsInWarehouse() == 2)
    }

    @Test("warehouse-sync command: an invalid --drop-policy exits 2 naming the option; an unreachable warehouse exits 3 with one line")
    func commandValidation() async throws {
        let badPolicy = try RelayProcess.launch(
            ["warehouse-sync", "--brokers", "127.0.0.1:9", "--warehouse-url", "postgresql://127.0.0.1:1/x",
             "--drop-policy", "archive"], label: "warehouse-sync")
        #expect(try await badPolicy.waitForExit(timeout: .seconds(30)) == 2)
        #expect(badPolicy.standardErrorLines == [
            "outbox-bridge: invalid configuration: warehouse.dropPolicy: must be keep or drop, not 'archive' (from --drop-policy)",
        ])

        let badURL = try RelayProcess.launch(
            ["warehouse-sync", "--brokers", "127.0.0.1:9", "--warehouse-url", "postgresql://nobody@127.0.0.1:1/nowhere"],
            label: "warehouse-sync")
        #expect(try await badURL.waitForExit(timeout: .seconds(30)) == 3)
        let lines = badURL.standardErrorLines
        #expect(lines.count == 1, "\(lines)")
        #expect(lines.first?.hasPrefix("outbox-bridge: warehouse-sync: warehouse: PostgreSQL connection failed:") == true)
    }

    /// DDL in two tenant schemas → capture → relay → Kafka → the `outbox-bridge warehouse-sync`
    /// process; killed with SIGKILL mid-stream and restarted; then a new consumer group reads
    /// the whole topic again from offset 0.
    @Test("end to end through the relay and Kafka: kill -9 mid-stream and restart, then redeliver the whole topic")
    func endToEnd() async throws {
        let environment = try await OutboxTestEnvironment.start("whe2e")
        let sourceSQL = try await environment.database.connect()
        let warehouse = try await TestDatabase.create("whe2ewh")
        let warehouseSQL = try await warehouse.connect()
        var script = "CREATE SCHEMA tenant_a; CREATE SCHEMA tenant_b;\n"
        for index in 0..<30 {
            for tenant in ["tenant_a", "tenant_b"] {
                script += "CREATE TABLE \(tenant).t\(index) (id int PRIMARY KEY, v varchar(10));\n"
                script += "ALTER TABLE \(tenant).t\(index) ADD COLUMN w int, ALTER COLUMN v TYPE varchar(40);\n"
                script += "ALTER TABLE \(tenant).t\(index) RENAME COLUMN w TO z;\n"
            }
        }
        try await sourceSQL.execute(script: script)
        let eventIDs = Set(try await environment.outboxRows(sourceSQL).map(\.eventID))
        #expect(eventIDs.count == 2 + 60 * 3)

        func applied() async throws -> Int {
            let rows = try await warehouseSQL.query(
                "SELECT count(*) AS n FROM outbox_warehouse.applied_events")
            return try rows[0].require(Int.self, column: "n")
        }
        func launch(group: String, logLevel: String = "warning") throws -> RelayProcess {
            try RelayProcess.launch(
                ["warehouse-sync", "--brokers", environment.broker.bootstrapServers, "--warehouse-url", warehouse.url,
                 "--group", group, "--log-level", logLevel] + MockConsumerGroup.consumerPropertyArguments,
                label: "warehouse-sync")
        }

        // Mid-stream, for certain: a warehouse reader holds a lock on one table the stream will
        // alter, so the consumer stalls there (lock_timeout, retried) with events before it
        // applied and events after it not; it is killed while stalled.
        try await warehouseSQL.execute(script: """
            CREATE SCHEMA tenant_b; CREATE TABLE tenant_b.t15 (id int PRIMARY KEY, v varchar(10));
            """)
        let reader = try await warehouse.connect()
        try await reader.query("BEGIN")
        try await reader.query("LOCK TABLE tenant_b.t15 IN ACCESS SHARE MODE")

        try await withRunningRelay(environment.relayConfiguration()) {
            try await environment.waitUntilAllDelivered(sourceSQL)
            let first = try launch(group: "warehouse-sync")
            try await first.waitForStandardError(containing: "handler failed; retrying", timeout: .seconds(90))
            first.kill(SIGKILL)
            _ = try await first.waitForExit(timeout: .seconds(10))
            let appliedAtKill = try await applied()
            #expect(appliedAtKill > 0 && appliedAtKill < eventIDs.count, "\(appliedAtKill)")
            try await reader.query("ROLLBACK")

            let second = try launch(group: "warehouse-sync")
            try await waitUntil("every event is applied", timeout: .seconds(90)) {
                (try? await applied()) ?? 0 == eventIDs.count
            }
            second.kill(SIGTERM)
            #expect(try await second.waitForExit(timeout: .seconds(30)) == 0)
        }
        let recorded = Set(try await warehouseSQL.query("SELECT event_id::text AS id FROM outbox_warehouse.applied_events")
            .compactMap { $0["id"] })
        #expect(recorded == eventIDs)
        let catalog = try await WarehouseSyncFixture.catalog(of: warehouseSQL, excluding: ["outbox_warehouse"])
        let source = try await WarehouseSyncFixture.catalog(of: sourceSQL, excluding: ["platform"])
        // Warehouse columns are nullable apart from the key; everything else matches the source.
        #expect(catalog == source)

        // A new group reads the whole topic from offset 0: nothing changes.
        let before = try await warehouseSQL.query(
            "SELECT event_id::text, applied_at::text FROM outbox_warehouse.applied_events ORDER BY event_id")
            .map { [$0[0], $0[1]] }
        let replay = try launch(group: "warehouse-sync-replay", logLevel: "info")
        try await waitUntil("the replay group has skipped every event", timeout: .seconds(90)) {
            // Each event is skipped by its tenant_seq (already applied per tenant), or by its id.
            replay.standardErrorLines.filter {
                $0.contains("skipping an event whose tenant_seq was already applied") || $0.contains("event already applied; skipped")
            }.count == eventIDs.count
        }
        replay.kill(SIGTERM)
        _ = try await replay.waitForExit(timeout: .seconds(30))
        let after = try await warehouseSQL.query(
            "SELECT event_id::text, applied_at::text FROM outbox_warehouse.applied_events ORDER BY event_id")
            .map { [$0[0], $0[1]] }
        #expect(after == before)
        #expect(try await WarehouseSyncFixture.catalog(of: warehouseSQL, excluding: ["outbox_warehouse"]) == catalog)
        await environment.drop()
    }
}
