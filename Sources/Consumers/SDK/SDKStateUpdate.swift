/// Applies one schema-change event to a tenant's ``SDKState``: the new model, the changes it
/// made to the package, and the version. The version moves by the event's compatibility label,
/// computed once in capture (``SemanticVersion/Level/init(_:)``), never by rules of its own.
/// Pure: the same state and event always give the same result, which is what makes the
/// generated files deterministic.
enum SDKStateUpdate {
    /// - Returns: the state with the event applied and recorded, the version bumped by the
    ///   event's label and a changelog entry added when `changes` is not empty (a change that does
    ///   not show in the package, such as a new default, makes no version).
    static func apply(_ event: SchemaChangeEvent, to state: SDKState) -> (state: SDKState, changes: [SDKChange]) {
        var next = state
        var changes: [SDKChange] = []
        if event.kind == "ddl" || event.kind == "drift" {
            switch event.objectType {
            case "table", "table column":
                if let shape = event.table {
                    if event.command == "DROP TABLE" || event.command == "DROP SCHEMA" || event.drift == "dropped" {
                        changes = dropTable(shape, in: &next)
                    } else {
                        changes = upsertTable(shape, changes: event.changes, in: &next)
                    }
                }
            case "type":
                if let enumType = event.enumType {
                    changes = upsertEnum(enumType, in: &next)
                }
            default:
                break
            }
        }
        next.recordApplied(event.eventID)
        guard !changes.isEmpty else { return (next, []) }
        let level = SemanticVersion.Level(event.changes?.compatibility)
        let version = next.version.map { $0.bumped(level) } ?? .initial
        next.version = version
        next.changelog.append(SDKChangelogEntry(
            version: version, date: String(event.occurredAt.prefix(10)), eventID: event.eventID,
            command: event.command, changes: changes.map(\.text)))
        return (next, changes)
    }

    private static func dropTable(_ shape: TableShape, in state: inout SDKState) -> [SDKChange] {
        guard let index = state.tables.firstIndex(where: { SDKNames.same($0.name, shape.name) }) else { return [] }
        state.tables.remove(at: index)
        return [SDKChange(text: "Removed table \(SDKNames.markdown(shape.name)).")]
    }

    private static func upsertTable(_ shape: TableShape, changes: TableChanges?, in state: inout SDKState) -> [SDKChange] {
        let previousName = changes?.tableRenamed?.old ?? shape.name
        let newColumns = (shape.columns ?? []).sorted { $0.attnum < $1.attnum }.map { column in
            SDKColumn(
                name: column.name, pgType: column.type, nullable: column.nullable,
                hasDefault: column.default != nil || column.identity != nil || column.generated != nil,
                attnum: column.attnum, comment: column.comment)
        }
        let table = "table \(SDKNames.markdown(shape.name))"
        guard let index = state.tables.firstIndex(where: { SDKNames.same($0.name, previousName) })
            ?? state.tables.firstIndex(where: { SDKNames.same($0.name, shape.name) })
        else {
            var taken = state.takenIdentifiers
            let identifier = SDKNames.typeIdentifier(for: shape.name, avoiding: taken)
            taken.insert(identifier)
            insertSorted(SDKTable(
                schema: shape.schema, name: shape.name, identifier: identifier, comment: shape.comment,
                columns: newColumns, primaryKey: shape.primaryKey ?? []), into: &state)
            return [SDKChange(text: "Added \(table) as `\(identifier)`.")]
        }

        var old = state.tables.remove(at: index)
        var result: [SDKChange] = []
        if !SDKNames.same(old.name, shape.name) {
            let identifier = SDKNames.typeIdentifier(for: shape.name, avoiding: state.takenIdentifiers)
            result.append(SDKChange(text:
                "Renamed table \(SDKNames.markdown(old.name)) to \(SDKNames.markdown(shape.name)) (now `\(identifier)`)."))
            old.identifier = identifier
            old.name = shape.name
        }
        let oldByAttnum = Dictionary(old.columns.map { ($0.attnum, $0) }, uniquingKeysWith: { first, _ in first })
        let newAttnums = Set(newColumns.map(\.attnum))
        for column in old.columns where !newAttnums.contains(column.attnum) {
            result.append(SDKChange(text:
                "Removed column \(SDKNames.markdown(column.name)) from \(table)."))
        }
        for column in newColumns {
            guard let before = oldByAttnum[column.attnum] else {
                let detail = column.nullable ? "nullable" : column.hasDefault ? "NOT NULL with a default" : "NOT NULL"
                result.append(SDKChange(text:
                    "Added column \(SDKNames.markdown(column.name)) (\(SDKNames.markdown(column.pgType)), \(detail)) to \(table)."))
                continue
            }
            let name = SDKNames.markdown(column.name)
            if !SDKNames.same(before.name, column.name) {
                result.append(SDKChange(text:
                    "Renamed column \(SDKNames.markdown(before.name)) to \(name) in \(table)."))
            }
            if before.pgType != column.pgType {
                result.append(SDKChange(text:
                    "Changed the type of column \(name) in \(table) from \(SDKNames.markdown(before.pgType)) to \(SDKNames.markdown(column.pgType))."))
            }
            if before.nullable != column.nullable {
                result.append(SDKChange(text:
                    "Column \(name) in \(table) is now \(column.nullable ? "nullable" : "NOT NULL")."))
            }
            if before.comment != column.comment {
                result.append(SDKChange(text: "Changed the comment of column \(name) in \(table)."))
            }
        }
        if old.comment != shape.comment {
            result.append(SDKChange(text: "Changed the comment of \(table)."))
        }
        let primaryKey = shape.primaryKey ?? []
        if old.primaryKey != primaryKey {
            let key = primaryKey.isEmpty ? "none" : primaryKey.map(SDKNames.markdown).joined(separator: ", ")
            result.append(SDKChange(text: "Primary key of \(table) is now \(key)."))
        }
        old.schema = shape.schema
        old.comment = shape.comment
        old.columns = newColumns
        old.primaryKey = primaryKey
        insertSorted(old, into: &state)
        return result
    }

    private static func upsertEnum(_ enumType: EnumType, in state: inout SDKState) -> [SDKChange] {
        let name = SDKNames.markdown(enumType.name)
        guard let index = state.enums.firstIndex(where: { SDKNames.same($0.schema, enumType.schema) && SDKNames.same($0.name, enumType.name) }) else {
            let identifier = SDKNames.typeIdentifier(for: enumType.name, avoiding: state.takenIdentifiers)
            state.enums.append(SDKEnum(
                schema: enumType.schema, name: enumType.name, identifier: identifier, values: enumType.values))
            state.enums.sort { SDKNames.precedes($0.schema + "\u{0}" + $0.name, $1.schema + "\u{0}" + $1.name) }
            return [SDKChange(text: "Added enum \(name) as `\(identifier)`.")]
        }
        let before = state.enums[index].values
        state.enums[index].values = enumType.values
        let removed = before.filter { label in !enumType.values.contains { SDKNames.same($0, label) } }
        let added = enumType.values.filter { label in !before.contains { SDKNames.same($0, label) } }
        var result: [SDKChange] = []
        if !removed.isEmpty {
            result.append(SDKChange(text:
                "Removed \(removed.map(SDKNames.markdown).joined(separator: ", ")) from enum \(name)."))
        }
        if !added.isEmpty {
            result.append(SDKChange(text:
                "Added \(added.map(SDKNames.markdown).joined(separator: ", ")) to enum \(name)."))
        }
        if result.isEmpty && !before.elementsEqual(enumType.values, by: SDKNames.same) {
            result.append(SDKChange(text: "Reordered the labels of enum \(name)."))
        }
        return result
    }

    private static func insertSorted(_ table: SDKTable, into state: inout SDKState) {
        state.tables.append(table)
        state.tables.sort { SDKNames.precedes($0.name, $1.name) }
    }
}
