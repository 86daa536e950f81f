public import Logging
import Postgres

/// The `warehouse-sync` consumer: mirrors each tenant table's shape into a PostgreSQL-compatible
/// warehouse (what is mirrored: ``WarehouseSyncConfiguration``).
///
/// Exactly once in effect: each event runs in one warehouse transaction that first inserts its
/// id into `<bookkeeping schema>.applied_events` (`ON CONFLICT DO NOTHING`) and then applies the
/// DDL. A redelivered event finds its id and changes nothing; a failure anywhere rolls back the
/// DDL and the id together, so an event is never half applied nor recorded without its effect.
/// (PostgreSQL's DDL is transactional, which is what makes this possible.)
///
/// The same row keeps the event's `tenant_seq` and source database, so the last applied
/// sequence of a tenant survives restarts (``TenantSequenceRecording``).
///
/// One warehouse connection, used by one event at a time: concurrent `handle` calls (several
/// partitions) wait their turn in arrival order. After the connection breaks, the next event
/// connects anew; the broken event is reported retriable.
public actor WarehouseSyncHandler: BootstrappableHandler {
    public nonisolated let name = "warehouse-sync"
    public nonisolated let configuration: WarehouseSyncConfiguration
    private let logger: Logger

    private var connection: PostgresConnection?
    /// `"<bookkeeping schema>".applied_events`, quoted once per connection.
    private var appliedEventsTable = ""
    private var busy = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    public init(configuration: WarehouseSyncConfiguration, logger: Logger = Logger(label: "outbox-bridge.warehouse-sync")) {
        self.configuration = configuration
        self.logger = logger
    }

    /// Connects to the warehouse (if not connected), checks that the sync's DDL cannot be
    /// captured there, and creates the bookkeeping table. `handle` does this on demand; call it
    /// at start-up to fail fast on a bad URL or role.
    public func prepare() async throws(WarehouseSyncError) {
        await acquire()
        defer { release() }
        _ = try await session()
    }

    public func handle(_ consumed: ConsumedEvent) async throws(EventHandlerError) {
        await acquire()
        defer { release() }
        do {
            try await apply(consumed)
        } catch {
            if error.breaksConnection { connection = nil }
            logger.warning(
                "could not apply event",
                metadata: [
                    "event_id": "\(consumed.event.eventID)", "command": "\(consumed.event.command)",
                    "error": "\(error)", "retriable": "\(error.isRetriable)",
                ])
            throw error.isRetriable ? EventHandlerError.retriable(error.description) : EventHandlerError.permanent(error.description)
        }
    }

    public func lastAppliedSequence(tenant: String, database: String?) async throws(EventHandlerError) -> Int64? {
        try await bookkeeping("reading the last tenant_seq of \(tenant)") { sql, table throws(PostgresError) in
            let rows = try await sql.query(
                """
                SELECT max(tenant_seq) AS last FROM \(table)
                WHERE tenant = $1 AND source_database IS NOT DISTINCT FROM $2
                """, [tenant, database])
            return try rows.first?.decode(Int64.self, column: "last")
        }
    }

    /// No event has been recorded in the warehouse yet.
    public func holdsNoState() async throws(EventHandlerError) -> Bool {
        try await bookkeeping("reading the applied events") { sql, table throws(PostgresError) in
            try await sql.query("SELECT 1 FROM \(table) LIMIT 1").isEmpty
        }
    }

    /// Runs one query on the bookkeeping table, one at a time with events.
    private func bookkeeping<Value: Sendable>(
        _ what: String, _ query: (PostgresConnection, String) async throws(PostgresError) -> Value
    ) async throws(EventHandlerError) -> Value {
        await acquire()
        defer { release() }
        do {
            let sql = try await session()
            return try await query(sql, appliedEventsTable)
        } catch {
            connection = nil
            throw .retriable("\(what): \(error)")
        }
    }

    /// Drops the warehouse connection; the next event connects anew.
    public func disconnect() {
        connection = nil
    }

    private func apply(_ consumed: ConsumedEvent) async throws(WarehouseSyncError) {
        let event = consumed.event
        let plan = WarehousePlan(event, configuration: configuration)
        if case .refuse(let reason) = plan {
            throw .invalidEvent(reason)
        }
        let sql = try await session()
        let applier = WarehouseApplier(
            sql: sql, configuration: configuration, eventID: event.eventID, occurredAt: event.occurredAt, logger: logger)
        let table = appliedEventsTable
        let configuration = configuration
        let applied: Bool
        do {
            applied = try await sql.transaction { sql in
                try await sql.query("SET LOCAL lock_timeout = \(configuration.lockTimeout.wholeMilliseconds)")
                try await sql.query("SET LOCAL statement_timeout = \(configuration.statementTimeout.wholeMilliseconds)")
                // The id first: a concurrent delivery of the same event waits here for this
                // transaction and then finds the id.
                let claimed = try await sql.query(
                    """
                    INSERT INTO \(table)
                        (event_id, topic, "partition", "offset", command, tenant, outcome, tenant_seq, source_database)
                    VALUES ($1::uuid, $2, $3, $4, $5, $6, $7, $8, $9)
                    ON CONFLICT (event_id) DO NOTHING RETURNING event_id
                    """,
                    [event.eventID, consumed.topic, consumed.partition, consumed.offset, event.command,
                     event.tenantID, plan.outcome, event.tenantSeq, event.database])
                // Already applied: the transaction has changed nothing, so committing it is a no-op.
                guard !claimed.isEmpty else { return false }
                try await applier.apply(plan)
                return true
            }
        } catch let error as WarehouseSyncError {
            throw error
        } catch let error as PostgresError {
            throw .postgres(error)
        } catch {
            throw .invalidEvent("\(error)")
        }
        logger.info(
            applied ? "applied event" : "event already applied; skipped",
            metadata: [
                "event_id": "\(event.eventID)", "command": "\(event.command)", "tenant": "\(event.tenantID ?? "-")",
                "outcome": "\(plan.outcome)", "topic": "\(consumed.topic)", "partition": "\(consumed.partition)",
                "offset": "\(consumed.offset)",
            ])
    }

    /// The open warehouse connection, or a new one that passed the capture-loop check and has
    /// the bookkeeping table.
    private func session() async throws(WarehouseSyncError) -> PostgresConnection {
        if let connection { return connection }
        var options = PostgresConnection.Options()
        options.applicationName = configuration.applicationName
        options.connectTimeoutSeconds = configuration.connectTimeoutSeconds
        let sql: PostgresConnection
        do {
            sql = try await PostgresConnection.connect(configuration.warehouseURL, options: options, logger: logger)
            // Catalog types print unqualified and names resolve to the system catalog only.
            try await sql.query("SET search_path = pg_catalog, pg_temp")
            try await checkCaptureLoop(sql)
            appliedEventsTable = try await installBookkeeping(sql)
        } catch let error as WarehouseSyncError {
            throw error
        } catch let error as PostgresError {
            throw .postgres(error)
        } catch {
            throw .invalidEvent("\(error)")
        }
        connection = sql
        return sql
    }

    /// Refuses a warehouse whose DDL is captured by outbox-bridge (the same cluster's
    /// database with the capture installed) unless the session user is explicitly a member of
    /// the automation role: the capture's loop guard skips exactly those, and counts
    /// superusers as members only when granted explicitly, which is what this check follows.
    private func checkCaptureLoop(_ sql: PostgresConnection) async throws {
        let rows = try await sql.query(
            """
            SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger
                           WHERE evtname IN ('outbox_bridge_capture_ddl', 'outbox_bridge_capture_drop')
                             AND evtenabled <> 'D') AS captured,
                   session_user::text = $1 OR EXISTS (
                       WITH RECURSIVE granted(oid) AS (
                           SELECT m.roleid FROM pg_catalog.pg_auth_members m
                           JOIN pg_catalog.pg_roles u ON u.oid = m.member WHERE u.rolname = session_user
                           UNION
                           SELECT m.roleid FROM pg_catalog.pg_auth_members m JOIN granted g ON m.member = g.oid)
                       SELECT 1 FROM granted g JOIN pg_catalog.pg_roles r ON r.oid = g.oid WHERE r.rolname = $1
                   ) AS automation,
                   session_user::text AS role, pg_catalog.current_database()::text AS database
            """, [configuration.automationRole])
        let row = rows[0]
        guard try row.require(Bool.self, column: "captured"), !(try row.require(Bool.self, column: "automation")) else {
            return
        }
        throw WarehouseSyncError.captureLoop(
            "warehouse database \(row["database"] ?? "?") has the outbox-bridge capture installed and role "
                + "\(row["role"] ?? "?") is not a member of \(configuration.automationRole): the sync's DDL would be "
                + "captured as new events; connect as a role granted \(configuration.automationRole)")
    }

    /// Creates the bookkeeping schema and table if missing (under an advisory lock, so two
    /// instances starting together do not race) and returns the table's quoted name.
    private func installBookkeeping(_ sql: PostgresConnection) async throws -> String {
        let schema = try await sql.quoteIdentifier(configuration.bookkeepingSchema)
        try await sql.transaction { sql in
            try await sql.query("SELECT pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('outbox_bridge.warehouse_sync'))")
            try await sql.query("CREATE SCHEMA IF NOT EXISTS \(schema)")
            try await sql.query(
                """
                CREATE TABLE IF NOT EXISTS \(schema).applied_events (
                    event_id uuid PRIMARY KEY,
                    applied_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
                    topic text NOT NULL,
                    "partition" integer NOT NULL,
                    "offset" bigint NOT NULL,
                    command text NOT NULL,
                    tenant text,
                    outcome text NOT NULL CHECK (outcome IN ('applied', 'ignored'))
                )
                """)
            // Added after the first release: the tenant's sequence number and source database.
            try await sql.query(
                "ALTER TABLE \(schema).applied_events ADD COLUMN IF NOT EXISTS tenant_seq bigint, "
                    + "ADD COLUMN IF NOT EXISTS source_database text")
            try await sql.query(
                "CREATE INDEX IF NOT EXISTS applied_events_tenant_seq ON \(schema).applied_events (tenant, tenant_seq)")
            try await sql.query(
                "COMMENT ON TABLE \(schema).applied_events IS "
                    + "'outbox-bridge warehouse-sync: events applied (or ignored) in this warehouse, one row per event id, "
                    + "inserted in the same transaction as the event''s DDL'")
        }
        return "\(schema).applied_events"
    }

    // MARK: One event at a time

    private func acquire() async {
        if busy {
            await withCheckedContinuation { waiters.append($0) }
        } else {
            busy = true
        }
    }

    private func release() {
        if waiters.isEmpty {
            busy = false
        } else {
            waiters.removeFirst().resume()
        }
    }
}

extension Duration {
    /// Whole milliseconds, at least 1 (PostgreSQL reads 0 as "no timeout").
    var wholeMilliseconds: Int64 {
        let (seconds, attoseconds) = components
        return max(1, seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }
}
