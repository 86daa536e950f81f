import Foundation
import Postgres
import TestSupport
import Testing

/// Platform teams run every major from 13 to 18. Each one gets a cluster of its own from the
/// real server binaries (scripts/pg-versions.sh), the capture checks of `Tests/sql` with their
/// JSON Schema validation, and a relay round trip. One major at a time: six servers and relays
/// at once would crowd a 2-core machine that also runs the rest of the suite.
@Suite("Capture and relay on every supported PostgreSQL major", .serialized, .tags(.capture))
struct CaptureVersionMatrixTests {
    @Test("the capture checks pass and a relay round trip delivers, on PostgreSQL", arguments: PostgresVersions.supported)
    func onMajor(_ major: Int) async throws {
        let cluster = try await PrivatePostgresCluster.start(binaries: try await PostgresVersions.binaries(major: major))
        do {
            let admin = try await PostgresConnection.connect(cluster.url)
            let server = "PostgreSQL " + (try await admin.query("SHOW server_version")[0]["server_version"] ?? "\(major)?")
            #expect(server.hasPrefix("PostgreSQL \(major)."), "\(server) started for major \(major)")
            for file in CaptureChecksTests.checks {
                try await CaptureChecksTests.run(file, clusterURL: cluster.url, server: server)
            }
            try await relayRoundTrip(clusterURL: cluster.url, server: server)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }

    /// Install, DDL in two tenants and a domain event; the relay holds every shard's lease and
    /// delivers each row, and each row's recorded Kafka position holds exactly its event.
    private func relayRoundTrip(clusterURL: String, server: String) async throws {
        let environment = try await OutboxTestEnvironment.start("round_trip", partitions: 3, clusterURL: clusterURL)
        let sql = try await environment.database.connect()
        try await withRunningRelay(environment.relayConfiguration()) {
            for tenant in ["acme", "globex"] {
                try await sql.execute(script: """
                    CREATE SCHEMA tenant_\(tenant);
                    CREATE TABLE tenant_\(tenant).orders (id bigint PRIMARY KEY, total numeric(12,2));
                    ALTER TABLE tenant_\(tenant).orders ADD COLUMN placed_at timestamptz;
                    """)
            }
            try await sql.query("SELECT platform.emit('acme', 'order.placed', '{\"id\": 1}')")
            try await waitUntil("\(server): the relay holds every shard's lease", timeout: .seconds(60)) {
                let leases = try await sql.query(
                    "SELECT count(*) AS held FROM platform.relay_leases WHERE owner IS NOT NULL AND expires_at > now()")
                return try leases[0].require(Int.self, column: "held") == 16
            }
            try await environment.waitUntilAllDelivered(sql)
        }

        let rows = try await environment.outboxRows(sql)
        #expect(rows.count == 7, "\(server): \(rows.count) outbox rows")
        #expect(rows.allSatisfy { $0.processed && !$0.dead && $0.topic == OutboxTestEnvironment.topic }, "\(server): \(rows)")
        let records = try await environment.kafka.consume(topic: OutboxTestEnvironment.topic)
        #expect(records.count == rows.count, "\(server): \(records.count) records")
        for row in rows {
            let record = records.first { $0.partition == row.partition && $0.offset == row.offset }
            #expect(record?.header("event_id") == row.eventID, "\(server): row \(row.id) marked with a position that holds another event")
            #expect(record?.key == row.tenantKey, "\(server): row \(row.id) key")
        }
        await environment.drop()
    }
}
