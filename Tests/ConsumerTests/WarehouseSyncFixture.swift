import Consumers
import Foundation
import Logging
import Outbox
import Postgres
import TestSupport

/// A source database with the real capture installed and an empty warehouse database, both in
/// the throwaway cluster. DDL run in the source becomes events through the real triggers;
/// `capture` reads them back from `platform.schema_changes` in id order, as the relay would
/// publish them (the outbox id stands in for the Kafka offset).
struct WarehouseSyncFixture {
    let source: TestDatabase
    let sourceSQL: PostgresConnection
    let warehouse: TestDatabase
    let warehouseSQL: PostgresConnection
    private(set) var lastOutboxID: Int64 = 0

    static func make(_ label: String) async throws -> WarehouseSyncFixture {
        let source = try await TestDatabase.create("\(label)src")
        let sourceSQL = try await source.connect()
        try await installOutbox(sourceSQL)
        let warehouse = try await TestDatabase.create("\(label)wh")
        return WarehouseSyncFixture(
            source: source, sourceSQL: sourceSQL, warehouse: warehouse, warehouseSQL: try await warehouse.connect())
    }

    /// Installs the capture with the real installer.
    static func installOutbox(_ sql: PostgresConnection) async throws {
        try await OutboxInstaller(connection: sql, schema: "platform", logger: Logger(label: "test.install"))
            .install(try OutboxMigration.load(from: OutboxTestEnvironment.sqlDirectory))
    }

    /// Runs `script` in the source and returns the events it produced.
    mutating func capture(_ script: String) async throws -> [ConsumedEvent] {
        try await sourceSQL.execute(script: script)
        let rows = try await sourceSQL.query(
            "SELECT id, event_data::text AS event, tenant_key FROM platform.schema_changes WHERE id > $1 ORDER BY id",
            [lastOutboxID])
        var events: [ConsumedEvent] = []
        for row in rows {
            let id = try row.require(Int64.self, column: "id")
            let event = try SchemaChangeEvent.decode(Array(try row.require(String.self, column: "event").utf8))
            events.append(ConsumedEvent(
                event: event, topic: "schema-changes", partition: 0, offset: id, key: row["tenant_key"]))
            lastOutboxID = id
        }
        return events
    }

    func handler(
        _ policy: WarehouseSyncConfiguration.DropPolicy = .keep,
        url: String? = nil,
        configure: (inout WarehouseSyncConfiguration) -> Void = { _ in }
    ) -> WarehouseSyncHandler {
        var configuration = WarehouseSyncConfiguration(warehouseURL: url ?? warehouse.url)
        configuration.dropPolicy = policy
        configure(&configuration)
        return WarehouseSyncHandler(configuration: configuration, logger: Logger(label: "test.warehouse-sync"))
    }

    /// Everything a user can see of the warehouse's shape outside the bookkeeping schema, one
    /// line per schema, table, column and primary key, sorted.
    func warehouseCatalog() async throws -> [String] {
        try await Self.catalog(of: warehouseSQL, excluding: ["outbox_warehouse"])
    }

    /// The same description of the source's tenant-visible shape (for comparing names).
    func sourceCatalog() async throws -> [String] {
        try await Self.catalog(of: sourceSQL, excluding: ["platform"])
    }

    static func catalog(of sql: PostgresConnection, excluding: [String]) async throws -> [String] {
        let rows = try await sql.query(
            """
            SELECT line FROM (
              SELECT 'schema ' || n.nspname AS line FROM pg_catalog.pg_namespace n
              WHERE n.nspname <> ALL ($1::text[]) AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'public')
                AND n.nspname NOT LIKE 'pg\\_%'
              UNION ALL
              SELECT 'table ' || n.nspname || '.' || c.relname || ' comment=' || coalesce(obj_description(c.oid, 'pg_class'), '-')
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE c.relkind IN ('r', 'p') AND n.nspname <> ALL ($1::text[])
                AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
              UNION ALL
              SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname || ' '
                     || pg_catalog.format_type(a.atttypid, a.atttypmod) || CASE WHEN a.attnotnull THEN ' not null' ELSE '' END
                     || ' comment=' || coalesce(col_description(c.oid, a.attnum), '-')
              FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
              WHERE c.relkind IN ('r', 'p') AND n.nspname <> ALL ($1::text[])
                AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
              UNION ALL
              SELECT 'primary key ' || n.nspname || '.' || c.relname || ' ' || pg_catalog.pg_get_constraintdef(k.oid)
              FROM pg_catalog.pg_constraint k JOIN pg_catalog.pg_class c ON c.oid = k.conrelid
              JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
              WHERE k.contype = 'p' AND n.nspname <> ALL ($1::text[])
                AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
            ) lines ORDER BY line COLLATE "C"
            """, [PostgresTextArray(excluding)])
        return rows.compactMap { $0["line"] }
    }

    /// Ids in `outbox_warehouse.applied_events` (empty when the table does not exist yet).
    func appliedEventIDs() async throws -> Set<String> {
        let exists = try await warehouseSQL.query("SELECT to_regclass('outbox_warehouse.applied_events') IS NOT NULL AS e")
        guard try exists[0].require(Bool.self, column: "e") else { return [] }
        let rows = try await warehouseSQL.query("SELECT event_id::text AS id FROM outbox_warehouse.applied_events")
        return Set(rows.compactMap { $0["id"] })
    }

    /// Names of the columns of `schema.table` in the warehouse, in column order.
    func warehouseColumns(_ schema: String, _ table: String) async throws -> [String] {
        let rows = try await warehouseSQL.query(
            """
            SELECT a.attname FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """, [schema, table])
        return rows.compactMap { $0["attname"] }
    }

    /// Tables of `schema` in the warehouse, sorted.
    func warehouseTables(_ schema: String) async throws -> [String] {
        let rows = try await warehouseSQL.query(
            """
            SELECT c.relname FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname COLLATE "C"
            """, [schema])
        return rows.compactMap { $0["relname"] }
    }

    func drop() async {
        try? await source.drop()
        try? await warehouse.drop()
    }
}

extension WarehouseSyncHandler {
    /// Applies events in order, failing the test on the first error.
    func apply(_ events: [ConsumedEvent]) async throws {
        for event in events {
            try await handle(event)
        }
    }
}

/// The outcome of `handle`, for `#expect`.
enum HandleOutcome: Equatable {
    case applied, retriable(String), permanent(String)

    var isPermanent: Bool { if case .permanent = self { true } else { false } }
    var isRetriable: Bool { if case .retriable = self { true } else { false } }

    static func of(_ handler: WarehouseSyncHandler, _ event: ConsumedEvent) async -> HandleOutcome {
        do {
            try await handler.handle(event)
            return .applied
        } catch {
            switch error {
            case .retriable(let reason): return .retriable(reason)
            case .permanent(let reason): return .permanent(reason)
            }
        }
    }
}
