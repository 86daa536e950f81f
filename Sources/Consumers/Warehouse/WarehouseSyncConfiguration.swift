/// Settings of the `warehouse-sync` consumer. Every default is stated where it is declared.
///
/// What the warehouse mirrors of a source table (one decision, documented here once):
/// - Schemas and tables keep their source names: tenant schema `tenant_acme` in the source is
///   `tenant_acme` in the warehouse.
/// - Columns with their types (``WarehouseColumnType`` maps types; enums and other
///   non-built-in types become `text`), in source order at creation, later additions appended.
/// - The primary key, kept in step with the source (its columns are therefore NOT NULL).
/// - Table and column comments.
/// - Not mirrored: every other column is nullable whatever the source says (loaders write
///   partial or historical rows, and adding a NOT NULL column to a filled warehouse table
///   would need a default); defaults, identity and generation expressions (loaders write
///   values, the warehouse generates none); foreign keys, checks, unique constraints and
///   indexes (the warehouse's own tuning); partitioning (a partitioned table and each of its
///   partitions become plain tables).
public struct WarehouseSyncConfiguration: Sendable {
    /// What to do in the warehouse when a source table, column or schema is dropped.
    public enum DropPolicy: String, Sendable, CaseIterable {
        /// Rename it to `<name>__deprecated_<yyyymmdd>_<first 8 hex digits of the event id>`,
        /// the name cut at a character boundary so the result fits in 63 bytes. Data stays.
        case keep
        /// Drop it (`DROP SCHEMA` cascades to whatever the warehouse holds in the schema).
        case drop
    }

    /// libpq URL or conninfo of the warehouse. If the warehouse is in the same PostgreSQL
    /// cluster as an outbox-captured database, the role must be a member of the automation
    /// role (see ``automationRole``). No default: required.
    public var warehouseURL: String

    /// Default ``DropPolicy/keep``: nothing in the warehouse is lost because a tenant dropped it.
    public var dropPolicy: DropPolicy = .keep

    /// Warehouse schema of the bookkeeping table `applied_events`. Default `outbox_warehouse`.
    /// Events for a source schema of this name are refused (dead-lettered).
    public var bookkeepingSchema: String = "outbox_warehouse"

    /// Whether tables outside tenant schemas (events without `tenant_id`, such as `public`) are
    /// mirrored too. Default `false`: only tenant tables; other events are recorded as ignored.
    public var includeNonTenantSchemas: Bool = false

    /// The role whose members' DDL the capture triggers do not record (sql/001's
    /// `outbox_automation`, or `settings.automation_role` if changed). Default
    /// `outbox_automation`. If the warehouse database itself has the capture installed, the
    /// sync refuses to apply DDL unless its session user is an explicit member of this role,
    /// because its DDL would otherwise become events again (a capture loop).
    public var automationRole: String = "outbox_automation"

    /// `lock_timeout` of each event's transaction, so DDL waiting behind a long warehouse query
    /// fails (and is retried) instead of queueing every reader of the table behind it.
    /// Default 5 seconds.
    public var lockTimeout: Duration = .seconds(5)

    /// `statement_timeout` of each event's transaction. Default 60 seconds (a type change
    /// rewrites the table).
    public var statementTimeout: Duration = .seconds(60)

    /// libpq `connect_timeout`. Default 10 seconds.
    public var connectTimeoutSeconds: Int = 10

    /// Shown in the warehouse's `pg_stat_activity`. Default `outbox-bridge-warehouse-sync`.
    public var applicationName: String = "outbox-bridge-warehouse-sync"

    public init(warehouseURL: String) {
        self.warehouseURL = warehouseURL
    }
}
