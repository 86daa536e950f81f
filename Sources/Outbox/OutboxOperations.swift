public import Postgres

/// Which events a replay sends again.
public enum ReplaySelection: Sendable, CustomStringConvertible {
    case ids(ClosedRange<Int64>)
    case tenant(String)
    /// Events that occurred at or after this time (any timestamp PostgreSQL accepts).
    case since(String)

    public var description: String {
        switch self {
        case .ids(let range): "outbox ids \(range.lowerBound)...\(range.upperBound)"
        case .tenant(let tenant): "tenant \(tenant)"
        case .since(let time): "events since \(time)"
        }
    }

    /// The condition on `schema_changes s` and its parameter.
    fileprivate var condition: (sql: String, parameters: [any PostgresBindable]) {
        switch self {
        case .ids(let range): ("s.id BETWEEN $1 AND $2", [range.lowerBound, range.upperBound])
        case .tenant(let tenant): ("s.tenant_key = $1", [tenant])
        case .since(let time): ("s.created_at >= $1::timestamptz", [time])
        }
    }
}

/// One delivered row as the audit checks it.
public struct DeliveredRow: Sendable {
    public var id: Int64
    public var eventID: String
    public var tenantKey: String?
    public var topic: String
    public var partition: Int32
    public var offset: Int64
}

/// The operators' statements on the outbox, in one place beside the relay's own
/// (``OutboxStore``): status and the backlog gauges (OutboxInspection.swift), replay, retention
/// and the rows an audit checks. Values travel as parameters; the schema name is quoted by libpq
/// once.
public struct OutboxOperations: Sendable {
    /// The relay's statements' connection and quoted schema, which these share.
    private let store: OutboxStore
    public var connection: PostgresConnection { store.connection }
    /// The outbox schema, already quoted as an identifier.
    public var quotedSchema: String { store.quotedSchema }

    public init(connection: PostgresConnection, schema: String) async throws(PostgresError) {
        store = try await OutboxStore(connection: connection, schema: schema)
    }

    /// The operations on the outbox in `schema`, once it is known to be installed there (up to
    /// the relay's leases, migration 10), so that a command on the wrong database or schema
    /// fails before its first statement. A missing install fails with SQLSTATE `42P01`
    /// (undefined_table), as a statement on the missing table would.
    public static func installed(on connection: PostgresConnection, schema: String) async throws(PostgresError) -> OutboxOperations {
        guard try await connection.relationExists("relay_leases", inSchema: schema) else {
            throw PostgresError(
                kind: .server, sqlState: PostgresError.SQLState.undefinedTable, message: "the outbox is not installed in \(schema)")
        }
        return try await OutboxOperations(connection: connection, schema: schema)
    }

    /// Calls `<schema>.reconcile()`, which emits a `drift` event for each table whose catalog
    /// shape differs from the capture's snapshot (DDL the event triggers never saw). Returns
    /// how many it emitted.
    public func reconcile() async throws(PostgresError) -> Int64 {
        try await connection.query("SELECT \(quotedSchema).reconcile() AS emitted")[0].require(Int64.self, column: "emitted")
    }

    /// How many delivered or dead events `selection` covers: what a replay would send again.
    /// What `<schema>.snapshot()` emitted for one tenant.
    public struct SnapshotCount: Sendable {
        public var tenant: String
        public var snapshotID: String
        public var tables: Int
        public var enums: Int
    }

    /// Emits `snapshot` / `snapshot_end` events for `tenant`, or for every tenant when nil,
    /// through the outbox in one transaction (ordered with each tenant's DDL by `tenant_seq`).
    /// A tenant without a schema, or one the capture does not publish, fails with SQLSTATE 22023.
    public func snapshot(tenant: String?) async throws(PostgresError) -> [SnapshotCount] {
        let rows = try await connection.query(
            """
            SELECT tenant_id, snapshot_id::text AS snapshot_id, tables, enums
              FROM \(quotedSchema).snapshot($1::text) ORDER BY tenant_id
            """, [tenant])
        return try rows.map { row throws(PostgresError) in
            SnapshotCount(
                tenant: try row.require(String.self, column: "tenant_id"),
                snapshotID: try row.require(String.self, column: "snapshot_id"),
                tables: try row.require(Int.self, column: "tables"),
                enums: try row.require(Int.self, column: "enums"))
        }
    }

    public func replayCount(_ selection: ReplaySelection) async throws(PostgresError) -> Int {
        let (condition, parameters) = selection.condition
        return try await connection.query(
            "SELECT count(*) AS n FROM \(quotedSchema).schema_changes s WHERE (s.processed OR s.dead) AND \(condition)",
            parameters)[0].require(Int.self, column: "n")
    }

    /// Marks the selected delivered (and dead) events pending again, in one transaction, after
    /// keeping where they had landed in `delivery_history`. Returns how many.
    @discardableResult
    public func replay(_ selection: ReplaySelection) async throws -> Int {
        let (condition, parameters) = selection.condition
        return try await connection.transaction { connection in
            try await connection.query(
                """
                INSERT INTO \(quotedSchema).delivery_history
                    (outbox_id, event_id, kafka_topic, kafka_partition, kafka_offset, processed_at)
                SELECT s.id, (s.event_data->>'event_id')::uuid, s.kafka_topic, s.kafka_partition, s.kafka_offset,
                       s.processed_at
                FROM \(quotedSchema).schema_changes s
                WHERE (s.processed OR s.dead) AND s.kafka_topic IS NOT NULL AND \(condition)
                """, parameters)
            return try await connection.query(
                """
                UPDATE \(quotedSchema).schema_changes s
                SET processed = false, processed_at = NULL, dead = false, dead_reason = NULL,
                    kafka_topic = NULL, kafka_partition = NULL, kafka_offset = NULL,
                    attempts = 0, last_error = NULL, next_attempt_at = NULL
                WHERE (s.processed OR s.dead) AND \(condition)
                """, parameters).affectedRows
        }
    }

    /// The most rows one retention statement deletes (`prune_processed` clamps to it too).
    public static let maximumPruneBatchSize = 10_000

    /// Deletes processed events older than `age` in batches of `batchSize` (1 to
    /// ``maximumPruneBatchSize``), each its own short statement so no lock is held for long.
    /// Dead and pending events are never pruned. Returns how many; `progress` gets the running
    /// total after each batch.
    ///
    /// It goes through `prune_processed` (sql/012_retention.sql), which runs with the outbox
    /// owner's rights: the relay's role may not delete rows itself, only have delivered ones
    /// deleted.
    public func prune(
        olderThan age: Duration, batchSize: Int = 1000, progress: (Int) -> Void = { _ in }
    ) async throws(PostgresError) -> Int {
        let batchSize = min(max(batchSize, 1), Self.maximumPruneBatchSize)
        var deleted = 0
        while true {
            let batch: Int
            do {
                batch = try await connection.query(
                    "SELECT \(quotedSchema).prune_processed(pg_catalog.make_interval(secs => $1), $2) AS deleted",
                    [age.seconds, batchSize])[0].require(Int.self, column: "deleted")
            } catch where error.kind == .server && error.sqlState == Self.undefinedFunction {
                // An outbox installed before retention had its function: say what fixes it.
                throw PostgresError(
                    kind: .server, sqlState: error.sqlState,
                    message: "retention needs prune_processed (migration 12), which this outbox lacks: run `outbox-bridge install`",
                    detail: error.message)
            }
            deleted += batch
            progress(deleted)
            if batch < batchSize { return deleted }
        }
    }

    /// How many processed events are older than `age`: what ``prune(olderThan:batchSize:)``
    /// would delete now. Dead events are never counted, as they are never pruned.
    public func pruneCount(olderThan age: Duration) async throws(PostgresError) -> Int {
        try await connection.query(
            """
            SELECT count(*) AS n FROM \(quotedSchema).schema_changes
            WHERE processed AND processed_at < pg_catalog.now() - pg_catalog.make_interval(secs => $1)
            """,
            [age.seconds])[0].require(Int.self, column: "n")
    }

    /// SQLSTATE `undefined_function`.
    private static let undefinedFunction = "42883"

    /// Processed rows in id order after `afterID`, for an audit that pages through a range.
    public func deliveredRows(
        from: Int64?, to: Int64?, tenant: String?, after afterID: Int64, limit: Int
    ) async throws(PostgresError) -> [DeliveredRow] {
        let rows = try await connection.query(
            """
            SELECT id, event_data->>'event_id' AS event_id, tenant_key, kafka_topic, kafka_partition, kafka_offset
            FROM \(quotedSchema).schema_changes
            WHERE processed AND id > $1 AND ($2::bigint IS NULL OR id >= $2) AND ($3::bigint IS NULL OR id <= $3)
              AND ($4::text IS NULL OR tenant_key = $4)
            ORDER BY id LIMIT $5
            """, [afterID, from, to, tenant, limit])
        return try rows.map { row throws(PostgresError) in
            DeliveredRow(
                id: try row.require(Int64.self, column: "id"),
                eventID: try row.require(String.self, column: "event_id"),
                tenantKey: row["tenant_key"],
                topic: try row.require(String.self, column: "kafka_topic"),
                partition: try row.require(Int32.self, column: "kafka_partition"),
                offset: try row.require(Int64.self, column: "kafka_offset"))
        }
    }

    /// Processed rows an audit of this range would check.
    public func deliveredCount(from: Int64?, to: Int64?, tenant: String?) async throws(PostgresError) -> Int {
        try await connection.query(
            """
            SELECT count(*) AS n FROM \(quotedSchema).schema_changes
            WHERE processed AND ($1::bigint IS NULL OR id >= $1) AND ($2::bigint IS NULL OR id <= $2)
              AND ($3::text IS NULL OR tenant_key = $3)
            """, [from, to, tenant])[0].require(Int.self, column: "n")
    }
}
