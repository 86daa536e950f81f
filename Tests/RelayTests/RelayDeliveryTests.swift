import Foundation
import Kafka
import Postgres
import Relay
import TestSupport
import Testing

@Suite("Relay delivery: DDL reaches Kafka keyed by tenant, and rows record where it landed")
struct RelayDeliveryTests {
    @Test("DDL in three tenant schemas lands with the right topic, key, partition, value and headers")
    func threeTenants() async throws {
        let environment = try await OutboxTestEnvironment.start("three_tenants")
        let sql = try await environment.database.connect()

        try await withRunningRelay(environment.relayConfiguration()) {
            for tenant in ["acme", "globex", "initech"] {
                try await sql.execute(script: """
                    CREATE SCHEMA tenant_\(tenant);
                    CREATE TABLE tenant_\(tenant).sensors (id bigint PRIMARY KEY, reading float8);
                    ALTER TABLE tenant_\(tenant).sensors ADD COLUMN humidity numeric;
                    """)
            }
            try await environment.waitUntilAllDelivered(sql)
        }

        let rows = try await environment.outboxRows(sql)
        #expect(rows.count == 9)
        #expect(rows.allSatisfy { $0.processed && !$0.dead && $0.topic == OutboxTestEnvironment.topic })
        let records = try await environment.kafka.consume(topic: OutboxTestEnvironment.topic)
        #expect(records.count == 9)
        let expectedPartitions = try await IndependentKafkaClient.javaPartitions(
            forKeys: ["acme", "globex", "initech"], partitionCount: environment.partitions)

        for row in rows {
            // The row's recorded position holds exactly this event.
            let record = try #require(records.first { $0.partition == row.partition && $0.offset == row.offset })
            #expect(record.header("event_id") == row.eventID)
            #expect(record.key == row.tenantKey)
            #expect(record.partition == expectedPartitions[row.tenantKey ?? ""])
            #expect(record.header("ce_specversion") == "1.0")
            #expect(record.header("ce_id") == row.eventID)
            #expect(record.header("ce_source") == "outbox-bridge")
            #expect(record.header("ce_type")?.hasPrefix("outboxbridge.schema.") == true)
            #expect(record.header("ce_time")?.isEmpty == false)
            #expect(record.header("content-type") == "application/json")
            #expect(record.header("tenant_id") == row.tenantKey)
            let value = try JSONSerialization.jsonObject(with: Data((record.payload ?? "").utf8)) as? [String: Any]
            #expect(value?["event_id"] as? String == row.eventID)
            #expect(value?["tenant_id"] as? String == row.tenantKey)
        }
        // Per tenant, Kafka holds the commands in the order they were run.
        for tenant in ["acme", "globex", "initech"] {
            let commands = records.filter { $0.key == tenant }.sorted { $0.offset < $1.offset }.compactMap { record in
                record.header("ce_type")
            }
            #expect(commands == [
                "outboxbridge.schema.create_schema", "outboxbridge.schema.create_table", "outboxbridge.schema.alter_table",
            ])
        }
    }

    @Test("50 tenants x 200 events keep per-tenant order")
    func perTenantOrder() async throws {
        let environment = try await OutboxTestEnvironment.start("order")
        let sql = try await environment.database.connect()
        var configuration = environment.relayConfiguration()
        configuration.batchSize = 300

        try await withRunningRelay(configuration) {
            // Interleaved across tenants, in many transactions, while the relay is running.
            for round in 0..<20 {
                try await sql.query(
                    """
                    SELECT platform.emit('t' || tenant, 'test.sequence', jsonb_build_object('seq', $1::int * 10 + step))
                    FROM generate_series(0, 9) AS step, generate_series(1, 50) AS tenant
                    ORDER BY step, tenant
                    """, [round])
            }
            try await environment.waitUntilAllDelivered(sql)
        }

        let records = try await environment.kafka.consume(topic: OutboxTestEnvironment.topic)
        #expect(records.count == 10_000)
        let byTenant = Dictionary(grouping: records, by: { $0.key ?? "" })
        #expect(byTenant.count == 50)
        for (tenant, tenantRecords) in byTenant {
            #expect(Set(tenantRecords.map(\.partition)).count == 1, "tenant \(tenant) spans partitions")
            let sequence = try tenantRecords.sorted { $0.offset < $1.offset }.map { record -> Int in
                let value = try JSONSerialization.jsonObject(with: Data((record.payload ?? "").utf8)) as? [String: Any]
                let payload = value?["payload"] as? [String: Any]
                return try #require(payload?["seq"] as? Int)
            }
            #expect(sequence == Array(0..<200), "tenant \(tenant) out of order")
        }
    }

    @Test("a heartbeat left by an instance that died long ago is removed, a recent one is kept")
    func staleInstancesAreForgotten() async throws {
        let environment = try await OutboxTestEnvironment.start("stale_instances")
        let sql = try await environment.database.connect()
        try await sql.execute(script: """
            INSERT INTO platform.relay_instances (id, host, heartbeat_at) VALUES
                ('00000000-0000-0000-0000-000000000001', 'long-gone', now() - interval '1 day'),
                ('00000000-0000-0000-0000-000000000002', 'just-died', now() - interval '3 seconds');
            """)
        try await withRunningRelay(environment.relayConfiguration()) {
            try await waitUntil("the long-gone instance is forgotten") {
                try await sql.query("SELECT host FROM platform.relay_instances WHERE host = 'long-gone'").isEmpty
            }
        }
        #expect(try await sql.query("SELECT host FROM platform.relay_instances WHERE host = 'just-died'").count == 1)
    }
}
