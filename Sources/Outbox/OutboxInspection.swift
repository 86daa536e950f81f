public import Postgres

/// The backlog as the gauges sample it: cheap enough to read every few seconds, since every
/// count goes through a partial index.
public struct OutboxBacklog: Sendable {
    public var pending: Int
    /// `nil` when nothing is pending.
    public var oldestPendingAgeSeconds: Double?
    public var dead: Int
    /// `pg_notification_queue_usage()`: a full notification queue stalls every transaction
    /// that notifies, DDL included.
    public var notificationQueueUsage: Double
}

/// The statements that read the outbox for `status`, `/api/status`, the backlog gauges and
/// `check`.
extension OutboxOperations {
    /// Rows listed per section of a status (tenants, retrying and dead events, deliveries)
    /// unless asked otherwise.
    public static let defaultStatusLimit = 10
    /// The delivery rate covers this long, in ``deliveryRateInterval`` steps.
    public static let deliveryRateWindow: Duration = .seconds(300)
    public static let deliveryRateInterval: Duration = .seconds(10)
    /// The rate is computed from at most this many of the newest deliveries, so reading it
    /// never scans the whole processed history; above ~30 events/s the oldest intervals are
    /// undercounted.
    public static let deliveryRateSampleSize = 10_000

    /// The whole status, each list cut to `limit` rows.
    public func status(limit: Int = defaultStatusLimit) async throws(PostgresError) -> OutboxStatus {
        let backlog = try await backlog()
        let processed = try await connection.query(
            "SELECT count(*) AS n FROM \(quotedSchema).schema_changes WHERE processed")[0].require(Int.self, column: "n")
        let generatedAt = try await connection.query(
            #"SELECT to_char(pg_catalog.now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS now"#
        )[0].require(String.self, column: "now")
        return OutboxStatus(
            pending: backlog.pending, oldestPendingAgeSeconds: backlog.oldestPendingAgeSeconds, dead: backlog.dead,
            processed: processed, tenants: try await tenantPositions(),
            backlog: try await pendingByTenant(limit: limit), retrying: try await retrying(limit: limit),
            deadLetters: try await deadLetters(limit: limit), recentDeliveries: try await recentDeliveries(limit: limit),
            deliveryRate: try await deliveryRate(), instances: try await relayInstances(),
            unownedShards: try await unownedShards(), readiness: nil, inFlight: nil, generatedAt: generatedAt)
    }

    public func backlog() async throws(PostgresError) -> OutboxBacklog {
        let totals = try await connection.query(
            """
            SELECT (SELECT count(*) FROM \(table) WHERE NOT processed AND NOT dead) AS pending,
                   (SELECT extract(epoch FROM pg_catalog.now() - min(created_at))
                    FROM \(table) WHERE NOT processed AND NOT dead) AS oldest_age,
                   (SELECT count(*) FROM \(table) WHERE dead) AS dead,
                   pg_catalog.pg_notification_queue_usage() AS queue_usage
            """)[0]
        return OutboxBacklog(
            pending: try totals.require(Int.self, column: "pending"),
            oldestPendingAgeSeconds: try totals.decode(Double.self, column: "oldest_age"),
            dead: try totals.require(Int.self, column: "dead"),
            notificationQueueUsage: try totals.require(Double.self, column: "queue_usage"))
    }

    /// The `limit` tenants with the most pending events, most first (ties by name).
    public func pendingByTenant(limit: Int) async throws(PostgresError) -> [OutboxStatus.TenantBacklog] {
        try await connection.query(
            """
            SELECT coalesce(tenant_key, '') AS tenant, count(*) AS pending,
                   extract(epoch FROM pg_catalog.now() - min(created_at)) AS oldest_age
            FROM \(table) WHERE NOT processed AND NOT dead
            GROUP BY tenant_key ORDER BY count(*) DESC, tenant_key LIMIT $1
            """, [limit]
        ).map { row throws(PostgresError) in
            OutboxStatus.TenantBacklog(
                tenant: try row.require(String.self, column: "tenant"),
                pending: try row.require(Int.self, column: "pending"),
                oldestAgeSeconds: try row.require(Double.self, column: "oldest_age"))
        }
    }

    /// Where each tenant's latest delivered event landed.
    public func tenantPositions() async throws(PostgresError) -> [OutboxStatus.TenantPosition] {
        try await connection.query(
            """
            SELECT DISTINCT ON (tenant_key) tenant_key, kafka_topic, kafka_partition, kafka_offset,
                   \(Self.utcText("processed_at")) AS delivered_at
            FROM \(table)
            WHERE processed AND tenant_key IS NOT NULL
            ORDER BY tenant_key, id DESC
            """
        ).map { row throws(PostgresError) in
            OutboxStatus.TenantPosition(
                tenant: try row.require(String.self, column: "tenant_key"),
                topic: try row.require(String.self, column: "kafka_topic"),
                partition: try row.require(Int32.self, column: "kafka_partition"),
                offset: try row.require(Int64.self, column: "kafka_offset"),
                deliveredAt: try row.require(String.self, column: "delivered_at"))
        }
    }

    public func retrying(limit: Int) async throws(PostgresError) -> [OutboxStatus.RetryingEvent] {
        try await connection.query(
            """
            SELECT id, tenant_key, attempts, last_error, \(Self.utcText("next_attempt_at")) AS next_attempt_at
            FROM \(table) WHERE NOT processed AND NOT dead AND attempts > 0 ORDER BY id LIMIT $1
            """, [limit]
        ).map { row throws(PostgresError) in
            OutboxStatus.RetryingEvent(
                id: try row.require(Int64.self, column: "id"), tenant: row["tenant_key"],
                attempts: try row.require(Int.self, column: "attempts"), lastError: row["last_error"],
                nextAttemptAt: row["next_attempt_at"])
        }
    }

    public func deadLetters(limit: Int) async throws(PostgresError) -> [OutboxStatus.DeadEvent] {
        try await connection.query(
            """
            SELECT id, tenant_key, event_data->>'command' AS command, attempts, dead_reason
            FROM \(table) WHERE dead ORDER BY id DESC LIMIT $1
            """, [limit]
        ).map { row throws(PostgresError) in
            OutboxStatus.DeadEvent(
                id: try row.require(Int64.self, column: "id"), tenant: row["tenant_key"], command: row["command"],
                attempts: try row.require(Int.self, column: "attempts"), reason: row["dead_reason"])
        }
    }

    public func recentDeliveries(limit: Int) async throws(PostgresError) -> [OutboxStatus.Delivery] {
        try await connection.query(
            """
            SELECT id, tenant_key, event_data->>'command' AS command, kafka_topic, kafka_partition, kafka_offset,
                   \(Self.utcText("processed_at")) AS delivered_at
            FROM \(table) WHERE processed ORDER BY id DESC LIMIT $1
            """, [limit]
        ).map { row throws(PostgresError) in
            OutboxStatus.Delivery(
                id: try row.require(Int64.self, column: "id"), tenant: row["tenant_key"], command: row["command"],
                topic: try row.require(String.self, column: "kafka_topic"),
                partition: try row.require(Int32.self, column: "kafka_partition"),
                offset: try row.require(Int64.self, column: "kafka_offset"),
                deliveredAt: try row.require(String.self, column: "delivered_at"))
        }
    }

    /// Deliveries per second over the last ``deliveryRateWindow``, one sample per
    /// ``deliveryRateInterval``, oldest first; from the newest ``deliveryRateSampleSize``
    /// deliveries only.
    public func deliveryRate() async throws(PostgresError) -> [OutboxStatus.RateSample] {
        let step = Self.deliveryRateInterval.seconds
        let steps = Int(Self.deliveryRateWindow.seconds / step)
        return try await connection.query(
            """
            WITH recent AS (
                SELECT processed_at FROM \(table) WHERE processed ORDER BY id DESC LIMIT $3)
            SELECT b.i * $1::float8 AS seconds_ago, count(r.processed_at) / $1::float8 AS rate
            FROM pg_catalog.generate_series(0, $2 - 1) AS b(i)
            LEFT JOIN recent r
              ON r.processed_at > pg_catalog.now() - pg_catalog.make_interval(secs => (b.i + 1) * $1::float8)
             AND r.processed_at <= pg_catalog.now() - pg_catalog.make_interval(secs => b.i * $1::float8)
            GROUP BY b.i ORDER BY b.i DESC
            """, [step, steps, Self.deliveryRateSampleSize]
        ).map { row throws(PostgresError) in
            OutboxStatus.RateSample(
                secondsAgo: Int(try row.require(Double.self, column: "seconds_ago")),
                eventsPerSecond: try row.require(Double.self, column: "rate"))
        }
    }

    /// Relay instances, longest running first, with the leases they hold unexpired. Instances
    /// that stopped without saying goodbye stay listed (with their growing heartbeat age)
    /// until a live relay clears their row.
    public func relayInstances() async throws(PostgresError) -> [OutboxStatus.RelayInstance] {
        try await connection.query(
            """
            SELECT i.id::text AS id, i.host, \(Self.utcText("i.started_at")) AS started_at,
                   extract(epoch FROM pg_catalog.now() - i.heartbeat_at) AS heartbeat_age,
                   coalesce(pg_catalog.string_agg(l.shard::text, ',' ORDER BY l.shard), '') AS shards
            FROM \(quotedSchema).relay_instances i
            LEFT JOIN \(quotedSchema).relay_leases l ON l.owner = i.id AND l.expires_at > pg_catalog.now()
            GROUP BY i.id ORDER BY i.started_at, i.id
            """
        ).map { row throws(PostgresError) in
            OutboxStatus.RelayInstance(
                id: try row.require(String.self, column: "id"), host: row["host"],
                startedAt: try row.require(String.self, column: "started_at"),
                heartbeatAgeSeconds: try row.require(Double.self, column: "heartbeat_age"),
                shards: Self.shardList(try row.require(String.self, column: "shards")))
        }
    }

    public func unownedShards() async throws(PostgresError) -> [Int] {
        Self.shardList(try await connection.query(
            """
            SELECT coalesce(pg_catalog.string_agg(shard::text, ',' ORDER BY shard), '') AS shards
            FROM \(quotedSchema).relay_leases WHERE owner IS NULL OR expires_at <= pg_catalog.now()
            """)[0].require(String.self, column: "shards"))
    }

    /// The capture's settings row, as `check` reports it; a correct install has exactly one.
    public struct CaptureSettings: Sendable {
        public var tenantSchemaPrefix: String?
        public var notifyChannel: String?
        /// `capture_schemas` as text (`tenant` or the list of schemas).
        public var captureSchemas: String?
        public var automationRole: String?
        /// Whether the automation role exists: when it does not, its DDL would be captured.
        public var automationRoleExists: Bool
    }

    /// Every row of `<schema>.settings` (the capture needs exactly one).
    public func captureSettings() async throws(PostgresError) -> [CaptureSettings] {
        let rows = try await connection.query(
            """
            SELECT s.tenant_schema_prefix, s.notify_channel, s.capture_schemas::text AS capture_schemas,
                   s.automation_role::text AS automation_role,
                   EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = s.automation_role) AS automation_role_exists
              FROM \(quotedSchema).settings s
            """)
        return try rows.map { row throws(PostgresError) in
            CaptureSettings(
                tenantSchemaPrefix: row["tenant_schema_prefix"], notifyChannel: row["notify_channel"],
                captureSchemas: row["capture_schemas"], automationRole: row["automation_role"],
                automationRoleExists: try row.require(Bool.self, column: "automation_role_exists"))
        }
    }

    /// A table whose catalog shape differs from the capture's snapshot: DDL the event triggers
    /// never saw.
    public struct DriftedTable: Sendable {
        /// What differs, as `<schema>.drift()` names it.
        public var drift: String
        /// The table, quoted as `schema.table`.
        public var name: String
    }

    /// What `<schema>.drift()` finds, without emitting anything (``reconcile()`` emits it).
    public func drift() async throws(PostgresError) -> [DriftedTable] {
        let rows = try await connection.query(
            "SELECT drift, pg_catalog.format('%I.%I', schema_name, table_name) AS name FROM \(quotedSchema).drift()")
        return try rows.map { row throws(PostgresError) in
            DriftedTable(drift: try row.require(String.self, column: "drift"), name: try row.require(String.self, column: "name"))
        }
    }

    private var table: String { "\(quotedSchema).schema_changes" }

    /// `column` as UTC ISO 8601 text with microseconds, the form every timestamp of a status has.
    private static func utcText(_ column: String) -> String {
        #"to_char(\#(column) AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')"#
    }

    private static func shardList(_ text: String) -> [Int] {
        text.split(separator: ",").compactMap { Int($0) }
    }
}

extension PostgresConnection {
    /// Whether `schema` holds a table or index called `relation`. Outbox asks this before a
    /// statement that would otherwise fail on a missing install, or to tell which migrations
    /// a schema has seen.
    func relationExists(_ relation: String, inSchema schema: String) async throws(PostgresError) -> Bool {
        let rows = try await query(
            "SELECT pg_catalog.to_regclass(pg_catalog.format('%I.%I', $1::text, $2::text)) IS NOT NULL AS present",
            [schema, relation])
        return try rows[0].require(Bool.self, column: "present")
    }
}
