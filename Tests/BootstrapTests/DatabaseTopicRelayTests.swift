import Foundation
import Kafka
import Postgres
import Relay
import TestSupport
import Testing

/// The relay, as the least-privilege login, with `relay.topic: schema-changes.{database}`:
/// DDL, emit() and a snapshot of two tenants land on the database's own topic, in each tenant's
/// tenant_seq order.
@Suite("One topic per database, end to end")
struct DatabaseTopicRelayTests {
    @Test("events land on schema-changes.<database>, each tenant's tenant_seq 1, 2, 3, ... in offset order")
    func topicPerDatabase() async throws {
        let environment = try await OutboxTestEnvironment.start("topic_per_db", partitions: 2)
        let sql = try await environment.database.connect()
        let topic = "schema-changes.\(environment.database.name)"
        try environment.broker.createTopic(topic, partitions: 2)
        var configuration = environment.relayConfiguration()
        configuration.topicTemplate = "schema-changes.{database}"

        try await withRunningRelay(configuration) {
            for tenant in ["north", "south"] {
                try await sql.execute(script: """
                    CREATE SCHEMA tenant_\(tenant);
                    CREATE TYPE tenant_\(tenant).mood AS ENUM ('ok');
                    CREATE TABLE tenant_\(tenant).readings (id bigint PRIMARY KEY, mood tenant_\(tenant).mood);
                    SELECT platform.emit('\(tenant)', 'ReadingTaken', '{}');
                    ALTER TABLE tenant_\(tenant).readings ADD COLUMN note text;
                    """)
            }
            _ = try await sql.query("SELECT * FROM platform.snapshot()")
            try await environment.waitUntilAllDelivered(sql)
        }

        let records = try await environment.kafka.consume(topic: topic)
        // 5 events per tenant, then a snapshot of 2 objects and its end.
        #expect(records.count == 16)
        for tenant in ["north", "south"] {
            let values = try records.filter { $0.key == tenant }.sorted { $0.offset < $1.offset }.map { record in
                try #require(JSONSerialization.jsonObject(with: Data((record.payload ?? "").utf8)) as? [String: Any])
            }
            #expect(values.map { $0["tenant_seq"] as? Int } == Array(1...8).map(Optional.some), "\(tenant)")
            #expect(values.allSatisfy { $0["database"] as? String == environment.database.name })
            #expect(values.map { $0["kind"] as? String }
                == ["ddl", "ddl", "ddl", "domain", "ddl", "snapshot", "snapshot", "snapshot_end"], "\(tenant)")
        }
        let rows = try await environment.outboxRows(sql)
        #expect(rows.allSatisfy { $0.processed && $0.topic == topic })
    }
}
