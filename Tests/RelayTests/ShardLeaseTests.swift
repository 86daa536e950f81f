import Foundation
import Postgres
@testable import Relay
import TestSupport
import Testing

/// Lease bookkeeping against a real database, run as the relay's least-privileged login.
@Suite("Shard leases")
struct ShardLeaseTests {
    @Test("a renewal whose statement read the leases before a rebalance took more shards does not take them away")
    func renewalRacingARebalanceKeepsTheShardsItTook() async throws {
        let environment = try await OutboxTestEnvironment.start("lease_renewal_race")
        defer { Task { await environment.drop() } }
        let admin = try await environment.database.connect()
        // Another live instance: this one's fair share is half of the shards.
        try await admin.query(
            "INSERT INTO platform.relay_instances (id, host, heartbeat_at) VALUES (gen_random_uuid(), 'other', now())")
        let leases = ShardLeases(quotedSchema: "\"platform\"", leaseDuration: .seconds(60))
        let rebalancing = try await PostgresConnection.connect(environment.relayURL)
        try await leases.rebalance(on: rebalancing, busyShards: [])
        let half = leases.usableShards.shards.count
        #expect(half > 0 && half < leases.usableShards.shardCount)

        // The renewal's statement takes its snapshot, then waits before it touches a lease row,
        // for as long as this test holds an advisory lock: only on the renewal's session.
        try await admin.query(
            """
            CREATE FUNCTION platform.hold_renewal() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF current_setting('test.hold_renewal', true) = 'on' THEN
                    PERFORM pg_advisory_lock(4242);
                    PERFORM pg_advisory_unlock(4242);
                END IF;
                RETURN NULL;
            END $$
            """)
        try await admin.query(
            "CREATE TRIGGER hold_renewal BEFORE UPDATE ON platform.relay_leases FOR EACH STATEMENT EXECUTE FUNCTION platform.hold_renewal()")
        let renewing = try await PostgresConnection.connect(environment.relayURL)
        try await renewing.query("SET test.hold_renewal = on")
        try await admin.query("SELECT pg_advisory_lock(4242)")
        let renewal = Task { try await leases.renewInBackground(on: renewing) }
        try await waitUntil("the renewal waits, its snapshot taken") {
            try await admin.query("SELECT 1 FROM pg_locks WHERE locktype = 'advisory' AND NOT granted").count == 1
        }

        // Meanwhile the other instance goes away and a rebalance takes every shard.
        try await admin.query("DELETE FROM platform.relay_instances WHERE host = 'other'")
        try await leases.rebalance(on: rebalancing, busyShards: [])
        let all = leases.usableShards.shardCount
        #expect(leases.usableShards.shards.count == all)

        try await admin.query("SELECT pg_advisory_unlock(4242)")
        try await renewal.value
        #expect(leases.usableShards.shards.count == all, "the renewal's older answer took shards away")
    }
}
