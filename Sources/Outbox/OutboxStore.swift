public import Postgres

/// The statements that move outbox rows through their life: pending, then processed (with
/// the Kafka position) or dead (with a reason). Every value travels as a parameter; the only
/// text spliced into SQL is the schema name, quoted by libpq once at construction.
///
/// Nothing here marks a row before the caller says the broker acknowledged it: claiming is a
/// plain read, so a relay that dies between publishing and marking leaves its rows pending and
/// they are published again, with the same event id.
public struct OutboxStore: Sendable {
    public let connection: PostgresConnection
    /// The outbox schema, already quoted as an identifier.
    public let quotedSchema: String
    private let claimStatement: PostgresStatement
    private let recordStatement: PostgresStatement

    /// With `preparesStatements`, the claim and the outcome write are prepared on `connection`
    /// once, so PostgreSQL parses and plans them once instead of on every call (unprepared,
    /// planning the claim took 1.6-1.9 ms of its 2.5 ms). Only for a connection of its own to
    /// the server: behind a pooler in transaction mode the next call may reach a server
    /// connection that never saw them prepared, and they go unprepared.
    public init(connection: PostgresConnection, schema: String, preparesStatements: Bool = false) async throws(PostgresError) {
        self.connection = connection
        self.quotedSchema = try await connection.quoteIdentifier(schema)
        let table = "\(quotedSchema).schema_changes"
        let claimSQL = Self.claimSQL(table: table)
        let recordSQL = Self.recordSQL(table: table)
        if preparesStatements {
            // PostgreSQL makes a prepared statement's generic plan once, for the table as it is
            // at that moment, and keeps it until the next ANALYZE. Planned while the outbox was
            // nearly empty, the claim and the write scanned the whole table on every call (at
            // 1,000 events/s, 1,211 claims of 10,000 took over 2 ms, against 11 otherwise).
            // Every statement of this store walks an index, so the session does without
            // sequential scans: the connection is the store's own, direct to the server.
            try await connection.query("SET enable_seqscan = off")
            self.claimStatement = try await connection.prepare(claimSQL, as: "outbox_claim")
            self.recordStatement = try await connection.prepare(recordSQL, as: "outbox_record")
        } else {
            self.claimStatement = PostgresStatement(claimSQL)
            self.recordStatement = PostgresStatement(recordSQL)
        }
    }

    /// The oldest pending rows of the given shards, in id order, leaving out the rows the
    /// caller still has in flight, the tenants it names in `pausedTenants`, and every tenant
    /// whose earliest pending row waits for a retry, so that a tenant's later events never
    /// overtake an earlier one. Rows of other tenants flow on.
    ///
    /// The search always starts from the oldest pending row rather than after the last one
    /// claimed: a retry coming due, a shard taken over from another instance, or a transaction
    /// committing late can each put a tenant's earliest pending row below that point.
    ///
    /// It reads the head of the queue first: the oldest pending rows, as many as the limit
    /// plus the rows in flight. When those hold enough claimable rows (the usual case), that is
    /// all it reads. Otherwise rows it may not claim crowd the head (a tenant waiting for a
    /// retry with a backlog behind it, say), and it looks past the head tenant by tenant
    /// through `schema_changes_pending_tenant_idx`, reading only the tenants it may claim for:
    /// a waiting tenant's backlog is never walked, whatever its size.
    public func claimPending(
        limit: Int, shards: [Int], shardCount: Int, excluding inFlight: [Int64] = [], pausedTenants: [String?] = []
    ) async throws(PostgresError) -> [OutboxEvent] {
        try Self.events(in: try await connection.query(
            claimStatement, Self.claimParameters(limit, shards, shardCount, inFlight, pausedTenants)))
    }

    /// Claims like `claimPending(limit:shards:shardCount:excluding:pausedTenants:)`, for a
    /// caller driven by replies: `reply` hears the rows on the thread that reads them (see
    /// `PostgresConnection.query(_:_:reply:)`).
    public func claimPending(
        limit: Int, shards: [Int], shardCount: Int, excluding inFlight: [Int64], pausedTenants: [String?],
        reply: @escaping @Sendable (Result<[OutboxEvent], PostgresError>) -> Void
    ) {
        connection.query(claimStatement, Self.claimParameters(limit, shards, shardCount, inFlight, pausedTenants)) { outcome in
            reply(outcome.flatMap { rows in Result { () throws(PostgresError) in try Self.events(in: rows) } })
        }
    }

    private static func claimParameters(
        _ limit: Int, _ shards: [Int], _ shardCount: Int, _ inFlight: [Int64], _ pausedTenants: [String?]
    ) -> [(any PostgresBindable)?] {
        [limit, shardCount, PostgresInt64Array(shards.map(Int64.init)), PostgresInt64Array(inFlight),
         PostgresTextArray(pausedTenants.compactMap { $0 }), pausedTenants.contains(nil)]
    }

    private static func events(in rows: PostgresRows) throws(PostgresError) -> [OutboxEvent] {
        guard !rows.isEmpty else { return [] }
        // Positions are looked up once per result: by name for every row, they cost a dozen
        // string comparisons per column per event.
        let id = try rows.position(of: "id"), shard = try rows.position(of: "shard")
        let tenantKey = try rows.position(of: "tenant_key"), tenantID = try rows.position(of: "tenant_id")
        let eventID = try rows.position(of: "event_id"), kind = try rows.position(of: "kind")
        let command = try rows.position(of: "command"), schemaName = try rows.position(of: "schema_name")
        let occurredAt = try rows.position(of: "occurred_at"), createdAt = try rows.position(of: "created_at")
        let attempts = try rows.position(of: "attempts"), payload = try rows.position(of: "payload")
        return try rows.map { row throws(PostgresError) in
            OutboxEvent(
                id: try row.require(Int64.self, at: id),
                shard: try row.require(Int.self, at: shard),
                tenantKey: row[tenantKey],
                tenantID: row[tenantID],
                eventID: try row.require(String.self, at: eventID),
                kind: row[kind] ?? "ddl",
                command: try row.require(String.self, at: command),
                schemaName: row[schemaName],
                occurredAt: row[occurredAt] ?? "",
                createdAt: try row.require(Double.self, at: createdAt),
                attempts: try row.require(Int.self, at: attempts),
                payload: try row.require(String.self, at: payload))
        }
    }

    /// Marks acknowledged rows processed with where they landed. A row that is already
    /// processed keeps its first recorded position.
    public func markDelivered(_ deliveries: [OutboxDelivery]) async throws(PostgresError) {
        try await record(OutboxOutcomes(delivered: deliveries))
    }

    /// Writes a group of outcomes in one statement, so the group is recorded whole or not at
    /// all, and a write that is repeated after its first try committed unseen (the connection
    /// dropped before the answer arrived) changes nothing: delivered and dead rows are skipped
    /// once settled, and a failure counts only while the row shows the attempts it was claimed
    /// with.
    ///
    /// - Delivered rows become processed with their Kafka position.
    /// - Failed rows stay pending with one more attempt, the error, and the earliest retry time.
    /// - Dead rows record the reason and where their dead letter landed.
    public func record(_ outcomes: OutboxOutcomes) async throws(PostgresError) {
        guard !outcomes.isEmpty else { return }
        try await connection.query(recordStatement, Self.recordParameters(outcomes))
    }

    /// Records like `record(_:)`, for a caller driven by replies: `reply` hears the outcome on
    /// the thread that reads it (see `PostgresConnection.query(_:_:reply:)`).
    public func record(_ outcomes: OutboxOutcomes, reply: @escaping @Sendable (Result<Void, PostgresError>) -> Void) {
        guard !outcomes.isEmpty else { return reply(.success(())) }
        connection.query(recordStatement, Self.recordParameters(outcomes)) { reply($0.map { _ in }) }
    }

    private static func recordParameters(_ outcomes: OutboxOutcomes) -> [(any PostgresBindable)?] {
        let delivered = outcomes.delivered
        let failures = outcomes.failures
        let dead = outcomes.deadLetters
        return [
            PostgresInt64Array(delivered.map(\.eventID)),
            PostgresTextArray(delivered.map(\.topic)),
            PostgresInt64Array(delivered.map { Int64($0.partition) }),
            PostgresInt64Array(delivered.map(\.offset)),
            PostgresInt64Array(failures.map(\.eventID)),
            PostgresInt64Array(failures.map { Int64($0.previousAttempts) }),
            PostgresTextArray(failures.map(\.error)),
            PostgresTextArray(failures.map { String($0.retryAfterSeconds) }),
            PostgresInt64Array(dead.map(\.deadLetter.eventID)),
            PostgresInt64Array(dead.map { Int64($0.previousAttempts) }),
            PostgresTextArray(dead.map(\.reason)),
            PostgresTextArray(dead.map(\.deadLetter.topic)),
            PostgresInt64Array(dead.map { Int64($0.deadLetter.partition) }),
            PostgresInt64Array(dead.map(\.deadLetter.offset)),
        ]
    }

    /// The claim's text (see `claimPending`), built once per store: spliced together for every
    /// claim, it cost the relay about a tenth of its instructions per event.
    private static func claimSQL(table: String) -> String {
        """
        WITH RECURSIVE
        in_flight AS MATERIALIZED (SELECT pg_catalog.unnest($4::bigint[]) AS id),
        blocked AS MATERIALIZED (
            SELECT DISTINCT w.tenant_key FROM \(table) w
            WHERE NOT w.processed AND NOT w.dead AND w.next_attempt_at > pg_catalog.now()),
        head AS MATERIALIZED (
            SELECT p.id, p.tenant_key FROM \(table) p
            WHERE NOT p.processed AND NOT p.dead
            ORDER BY p.id LIMIT $1 + pg_catalog.cardinality($4::bigint[])),
        claimable_in_head AS MATERIALIZED (
            SELECT h.id FROM head h WHERE h.id NOT IN (SELECT id FROM in_flight) AND \(Self.claimable("h.tenant_key"))),
        tenants(tenant_key) AS (
            (SELECT p.tenant_key FROM \(table) p
             WHERE NOT p.processed AND NOT p.dead AND p.tenant_key IS NOT NULL
             ORDER BY p.tenant_key LIMIT 1)
            UNION ALL
            SELECT (SELECT p.tenant_key FROM \(table) p
                    WHERE NOT p.processed AND NOT p.dead AND p.tenant_key > t.tenant_key
                    ORDER BY p.tenant_key LIMIT 1)
            FROM tenants t WHERE t.tenant_key IS NOT NULL),
        claimable_tenants AS MATERIALIZED (
            SELECT k.tenant_key FROM (SELECT tenant_key FROM tenants WHERE tenant_key IS NOT NULL UNION ALL SELECT NULL) k
            WHERE \(Self.claimable("k.tenant_key"))),
        beyond_head AS (
            SELECT later.id FROM claimable_tenants c CROSS JOIN LATERAL (
                SELECT s.id FROM \(table) s
                WHERE NOT s.processed AND NOT s.dead AND s.tenant_key = c.tenant_key
                  AND (s.tenant_key, s.id) > (c.tenant_key, (SELECT max(id) FROM head))
                  AND s.id NOT IN (SELECT id FROM in_flight)
                ORDER BY s.tenant_key, s.id LIMIT $1) later
            UNION ALL
            SELECT s.id FROM \(table) s
            WHERE NOT s.processed AND NOT s.dead AND s.tenant_key IS NULL
              AND EXISTS (SELECT 1 FROM claimable_tenants c WHERE c.tenant_key IS NULL)
              AND s.id > (SELECT max(id) FROM head) AND s.id NOT IN (SELECT id FROM in_flight)),
        picked AS (
            SELECT id FROM claimable_in_head
            UNION ALL
            SELECT id FROM beyond_head
            WHERE (SELECT count(*) FROM claimable_in_head) < $1
              AND (SELECT count(*) FROM head) = $1 + pg_catalog.cardinality($4::bigint[])
            ORDER BY id LIMIT $1)
        SELECT s.id, s.tenant_key, s.attempts, s.event_data::text AS payload,
               extract(epoch FROM s.created_at) AS created_at,
               \(Self.shardExpression("s.tenant_key", shardCount: "$2")) AS shard,
               s.event_data->>'event_id' AS event_id, s.event_data->>'kind' AS kind,
               s.event_data->>'command' AS command, s.event_data->>'schema_name' AS schema_name,
               s.event_data->>'tenant_id' AS tenant_id, s.event_data->>'occurred_at' AS occurred_at
        FROM \(table) s
        WHERE s.id = ANY (ARRAY(SELECT id FROM picked))
        ORDER BY s.id
        """
    }

    /// The outcomes' text (see `record`), built once per store like the claim's.
    private static func recordSQL(table: String) -> String {
        """
        WITH delivered AS (
            UPDATE \(table) s
            SET processed = true, processed_at = pg_catalog.now(),
                kafka_topic = d.topic, kafka_partition = d.kafka_partition, kafka_offset = d.kafka_offset,
                next_attempt_at = NULL
            FROM unnest($1::bigint[], $2::text[], $3::int[], $4::bigint[])
                 AS d(id, topic, kafka_partition, kafka_offset)
            WHERE s.id = d.id AND NOT s.processed AND NOT s.dead
            RETURNING s.id),
        failed AS (
            UPDATE \(table) s
            SET attempts = f.attempts + 1, last_error = f.error,
                next_attempt_at = pg_catalog.now() + pg_catalog.make_interval(secs => f.retry_after)
            FROM unnest($5::bigint[], $6::int[], $7::text[], $8::float8[]) AS f(id, attempts, error, retry_after)
            WHERE s.id = f.id AND s.attempts = f.attempts AND NOT s.processed AND NOT s.dead
            RETURNING s.id),
        dead AS (
            UPDATE \(table) s
            SET dead = true, dead_reason = x.reason, attempts = x.attempts + 1, last_error = x.reason,
                kafka_topic = x.topic, kafka_partition = x.kafka_partition, kafka_offset = x.kafka_offset,
                next_attempt_at = NULL
            FROM unnest($9::bigint[], $10::int[], $11::text[], $12::text[], $13::int[], $14::bigint[])
                 AS x(id, attempts, reason, topic, kafka_partition, kafka_offset)
            WHERE s.id = x.id AND s.attempts = x.attempts AND NOT s.processed AND NOT s.dead
            RETURNING s.id)
        SELECT (SELECT count(*) FROM delivered) + (SELECT count(*) FROM failed) + (SELECT count(*) FROM dead)
               AS written
        """
    }

    /// The claim's test of a tenant: in one of the caller's shards, not paused by the caller
    /// (`$3`, `$5`, `$6`), and not waiting for a retry (`blocked`).
    private static func claimable(_ tenantKey: String) -> String {
        """
        (\(tenantKey) IS NULL OR \(tenantKey) <> ALL($5::text[])) AND (\(tenantKey) IS NOT NULL OR NOT $6::boolean)
        AND \(shardExpression(tenantKey, shardCount: "$2")) = ANY($3::int[])
        AND NOT EXISTS (SELECT 1 FROM blocked b WHERE b.tenant_key IS NOT DISTINCT FROM \(tenantKey))
        """
    }

    /// The SQL that maps a tenant key to its shard. Shards split tenants between relay
    /// instances; a tenant always hashes to the same shard, so its events stay with one
    /// instance at a time.
    public static func shardExpression(_ tenantKey: String, shardCount: String) -> String {
        "((pg_catalog.hashtext(coalesce(\(tenantKey), '')) & 2147483647) % \(shardCount))"
    }
}
