public import Foundation
public import Postgres

/// The statements on the relay's lease tables: `relay_instances` (one heartbeat row per live
/// relay instance) and `relay_leases` (one row per tenant shard, with its owner and expiry).
/// Which shards an instance should hold is the relay's decision (`ShardLeases`); this type
/// only reads and writes the rows, with every value as a parameter. Leases are rows, not
/// advisory locks, so they work through a connection pooler in transaction mode.
public struct OutboxLeases: Sendable {
    /// The outbox schema, already quoted as an identifier.
    let quotedSchema: String
    public let instanceID: UUID
    /// How long a lease lasts from the statement that takes or renews it, and how recent a
    /// heartbeat must be for its instance to count as live.
    let leaseDuration: Duration

    public init(quotedSchema: String, instanceID: UUID, leaseDuration: Duration) {
        self.quotedSchema = quotedSchema
        self.instanceID = instanceID
        self.leaseDuration = leaseDuration
    }

    /// Records this instance's heartbeat and extends its leases in one round trip (a
    /// data-modifying `WITH` runs whether or not the outer statement reads it, and both see
    /// the same `now()`). Returns the shards it still holds.
    public func heartbeatAndRenew(on connection: PostgresConnection) async throws(PostgresError) -> [Int] {
        let rows = try await connection.query(
            """
            WITH heartbeat AS (
                INSERT INTO \(quotedSchema).relay_instances (id, host, heartbeat_at)
                VALUES ($1, $3, pg_catalog.now())
                ON CONFLICT (id) DO UPDATE SET heartbeat_at = pg_catalog.now()
            )
            UPDATE \(quotedSchema).relay_leases
            SET expires_at = pg_catalog.now() + pg_catalog.make_interval(secs => $2)
            WHERE owner = $1 RETURNING shard
            """, [instanceID, leaseDuration.seconds, ProcessInfo.processInfo.hostName])
        return try Self.shards(in: rows)
    }

    /// The instances with a recent heartbeat (at least this one, once it has sent one) and the
    /// number of shards.
    public func census(on connection: PostgresConnection) async throws(PostgresError) -> (liveInstances: Int, shards: Int) {
        let counts = try await connection.query(
            """
            SELECT (SELECT count(*) FROM \(quotedSchema).relay_instances
                    WHERE heartbeat_at > pg_catalog.now() - pg_catalog.make_interval(secs => $1)) AS live,
                   (SELECT count(*) FROM \(quotedSchema).relay_leases) AS shards
            """, [leaseDuration.seconds])
        return (try counts[0].require(Int.self, column: "live"), try counts[0].require(Int.self, column: "shards"))
    }

    /// Deletes the heartbeat rows of instances that died without saying goodbye: long after
    /// their leases expired they only clutter the table.
    public func forgetLongDeadInstances(on connection: PostgresConnection) async throws(PostgresError) {
        try await connection.query(
            """
            DELETE FROM \(quotedSchema).relay_instances
            WHERE heartbeat_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1::float8 * 100)
            """, [leaseDuration.seconds])
    }

    /// Gives the named shards back, so that any instance may take them at once.
    public func release(_ shards: [Int], on connection: PostgresConnection) async throws(PostgresError) {
        try await connection.query(
            """
            UPDATE \(quotedSchema).relay_leases SET owner = NULL, expires_at = '-infinity'
            WHERE owner = $1 AND shard = ANY($2::int[])
            """, [instanceID, PostgresTextArray(shards.map(String.init))])
    }

    /// Takes up to `count` shards that are free or whose lease expired, skipping rows another
    /// instance is taking at the same moment. Returns the shards taken.
    public func take(upTo count: Int, on connection: PostgresConnection) async throws(PostgresError) -> [Int] {
        let taken = try await connection.query(
            """
            UPDATE \(quotedSchema).relay_leases SET owner = $1,
                   expires_at = pg_catalog.now() + pg_catalog.make_interval(secs => $2)
            WHERE shard IN (
                SELECT shard FROM \(quotedSchema).relay_leases
                WHERE owner IS NULL OR expires_at < pg_catalog.now()
                ORDER BY shard LIMIT $3 FOR UPDATE SKIP LOCKED)
            RETURNING shard
            """, [instanceID, leaseDuration.seconds, count])
        return try Self.shards(in: taken)
    }

    /// Gives every lease of this instance back and removes its heartbeat, at shutdown, so
    /// another instance takes over at once instead of after the leases expire.
    public func releaseAll(on connection: PostgresConnection) async throws(PostgresError) {
        try await connection.query(
            "UPDATE \(quotedSchema).relay_leases SET owner = NULL, expires_at = '-infinity' WHERE owner = $1",
            [instanceID])
        try await connection.query("DELETE FROM \(quotedSchema).relay_instances WHERE id = $1", [instanceID])
    }

    private static func shards(in rows: PostgresRows) throws(PostgresError) -> [Int] {
        try rows.map { row throws(PostgresError) in try row.require(Int.self, column: "shard") }
    }
}
