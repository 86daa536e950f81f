/// What `snapshot` and `snapshot_end` events do to a tenant's ``SDKState``: a snapshot says
/// "this is the object now", so the package is made equal to it, and the end of a snapshot
/// lists every object there is, so what the package holds beyond that is removed, in one major
/// version. Applying the same snapshot again changes nothing.
enum SDKSnapshot {
    /// A snapshot of a table or enum as the `CREATE` with its full shape that
    /// ``SDKStateUpdate`` applies: an unknown object is added, a known one brought to the
    /// shape, an equal one left as it is (no version, no changelog entry).
    static func asCreate(_ event: SchemaChangeEvent) -> SchemaChangeEvent {
        var create = event
        create.kind = "ddl"
        create.command = event.objectType == "type" ? "CREATE TYPE" : "CREATE TABLE"
        create.changes = nil
        return create
    }

    /// Removes the tables and enums `end` does not list, recording the event either way.
    static func removeUnlisted(_ end: SchemaChangeEvent, from state: SDKState) -> (state: SDKState, changes: [SDKChange]) {
        let objects = end.snapshotObjects ?? []
        func listed(_ type: String) -> Set<QualifiedObject> {
            Set(objects.filter { $0.objectType == type }.compactMap(\.schemaAndName).map { QualifiedObject(schema: $0.schema, name: $0.name) })
        }
        let tables = listed("table")
        let enums = listed("type")
        var next = state
        var changes: [SDKChange] = []
        next.tables.removeAll { table in
            guard !tables.contains(QualifiedObject(schema: table.schema, name: table.name)) else { return false }
            changes.append(SDKChange(text: "Removed table \(SDKNames.markdown(table.name)) (not in the snapshot)."))
            return true
        }
        next.enums.removeAll { enumType in
            guard !enums.contains(QualifiedObject(schema: enumType.schema, name: enumType.name)) else { return false }
            changes.append(SDKChange(text: "Removed enum \(SDKNames.markdown(enumType.name)) (not in the snapshot)."))
            return true
        }
        next.recordApplied(end.eventID)
        next.recordSequence(end.tenantSeq)
        guard !changes.isEmpty else { return (next, []) }
        let version = next.version.map { $0.bumped(.major) } ?? .initial
        next.version = version
        next.changelog.append(SDKChangelogEntry(
            version: version, date: String(end.occurredAt.prefix(10)), eventID: end.eventID, command: end.command,
            changes: changes.map(\.text)))
        return (next, changes)
    }

    private struct QualifiedObject: Hashable {
        var schema: String
        var name: String
    }
}
