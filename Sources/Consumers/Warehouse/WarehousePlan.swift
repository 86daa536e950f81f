/// What one event means for the warehouse, decided from the event alone (no database access),
/// so the decision is the same on every delivery.
enum WarehousePlan: Sendable, Equatable {
    /// Recorded as applied without touching the warehouse's tables (domain events, enum types,
    /// non-tenant schemas, commands the warehouse does not mirror).
    case ignore(reason: String)
    /// The event cannot be applied; it is dead-lettered with this reason.
    case refuse(reason: String)
    case createSchema(String)
    case dropSchema(String)
    case dropTable(schema: String, name: String)
    /// CREATE TABLE (AS), ALTER TABLE, COMMENT: bring the warehouse table to `table`'s shape,
    /// following `changes` (renames, drops, retypes) when the event has them. A snapshot's
    /// table too: it makes the warehouse table equal to the shape.
    case syncTable(TableShape, TableChanges?)
    /// `snapshot_end`: tables of these schemas that the snapshot did not list are gone from the
    /// source; they go by the drop policy.
    case dropUnlisted(schemas: Set<String>, listed: Set<QualifiedName>)

    /// Every outcome string stored in `applied_events.outcome`.
    var outcome: String {
        switch self {
        case .ignore: "ignored"
        case .refuse: "refused"
        default: "applied"
        }
    }

    init(_ event: SchemaChangeEvent, configuration: WarehouseSyncConfiguration) {
        guard ["ddl", "drift", "snapshot", "snapshot_end"].contains(event.kind) else {
            self = .ignore(reason: "\(event.kind) event")
            return
        }
        guard event.tenantID != nil || configuration.includeNonTenantSchemas else {
            self = .ignore(reason: "not a tenant schema")
            return
        }
        let plan: WarehousePlan
        let objectType = event.objectType ?? ""
        switch event.command {
        case "DRIFT" where event.drift == "dropped":
            plan = event.table.map { .dropTable(schema: $0.schema, name: $0.name) }
                ?? .refuse(reason: "DRIFT event for a dropped table without its name")
        case "DRIFT":
            // DDL the source's triggers missed: the table's shape now, and what changed if known.
            plan = event.table.flatMap { $0.columns == nil ? nil : .syncTable($0.withoutVirtualColumns, event.changes) }
                ?? .refuse(reason: "DRIFT event without the table's shape")
        case "SNAPSHOT" where objectType == "table":
            plan = event.table.flatMap { $0.columns == nil ? nil : .syncTable($0.withoutVirtualColumns, nil) }
                ?? .refuse(reason: "SNAPSHOT event without the table's shape")
        case "SNAPSHOT END":
            let listed = (event.snapshotObjects ?? []).filter { $0.objectType == "table" }.compactMap(\.schemaAndName)
            plan = .dropUnlisted(
                schemas: Set(listed.map(\.schema) + (event.schemaName.map { [$0] } ?? []))
                    .subtracting([configuration.bookkeepingSchema]),
                listed: Set(listed.map { QualifiedName(schema: $0.schema, name: $0.name) }))
        case "CREATE SCHEMA":
            plan = event.schema.map { .createSchema($0.name) } ?? .refuse(reason: "CREATE SCHEMA event without schema")
        case "DROP SCHEMA" where objectType == "schema":
            plan = event.schema.map { .dropSchema($0.name) } ?? .refuse(reason: "DROP SCHEMA event without schema")
        case "DROP TABLE", "DROP SCHEMA":
            plan = event.table.map { .dropTable(schema: $0.schema, name: $0.name) }
                ?? .refuse(reason: "\(event.command) event for a table without its name")
        case "CREATE TABLE", "CREATE TABLE AS", "SELECT INTO", "ALTER TABLE", "COMMENT":
            if objectType != "table" && objectType != "table column" {
                plan = .ignore(reason: "\(event.command) of a \(objectType) is not mirrored")
            } else if let table = event.table, table.columns != nil {
                plan = .syncTable(table.withoutVirtualColumns, event.changes)
            } else {
                plan = .refuse(reason: "\(event.command) event without the table's shape")
            }
        case "CREATE TYPE", "ALTER TYPE":
            plan = .ignore(reason: "enum types are mirrored as text")
        default:
            plan = .ignore(reason: "\(event.command) is not mirrored")
        }
        // The bookkeeping schema belongs to the sync; a source schema of that name is refused
        // rather than mixed with it.
        if let schema = plan.schema, schema == configuration.bookkeepingSchema {
            self = .refuse(reason: "schema \(schema) is the warehouse sync's bookkeeping schema")
            return
        }
        self = plan
    }

    /// The warehouse schema the plan touches, if any.
    var schema: String? {
        switch self {
        case .ignore, .refuse: nil
        case .createSchema(let name), .dropSchema(let name): name
        case .dropTable(let schema, _): schema
        case .syncTable(let table, _): table.schema
        // Its schemas never include the bookkeeping one (left out when planned).
        case .dropUnlisted: nil
        }
    }
}

/// A table's schema and name, unquoted.
struct QualifiedName: Sendable, Hashable {
    var schema: String
    var name: String
}

extension TableShape {
    /// The shape without its virtual generated columns: the source computes them on read and
    /// stores nothing, so the warehouse gets no column a loader would fill as if it were data.
    fileprivate var withoutVirtualColumns: TableShape {
        var shape = self
        shape.columns = columns?.filter { $0.generatedKind != "virtual" }
        return shape
    }
}
