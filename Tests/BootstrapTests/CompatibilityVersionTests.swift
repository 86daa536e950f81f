@testable import Consumers
import Foundation
import Postgres
import TestSupport
import Testing

/// The compatibility label the capture computes is the only thing that moves sdk-sync's version:
/// for every rule of the table in `sql/README.md`, the real capture labels the statement's event
/// as the rule says, and the package's version moves by exactly that label (breaking → major,
/// additive → minor, cosmetic → patch), or not at all when the package does not change.
@Suite("Compatibility labels drive sdk-sync's version")
struct CompatibilityVersionTests {
    struct Rule: Sendable, CustomStringConvertible {
        let sql: String
        let label: TableChanges.Compatibility
        /// Whether the generated package changes (a new default does not show in it).
        var changesPackage = true
        var description: String { sql }
    }

    static let rules: [Rule] = [
        Rule(sql: "ALTER TABLE tenant_c.t ADD COLUMN note text", label: .additive),
        Rule(sql: "ALTER TABLE tenant_c.t ADD COLUMN dflt int NOT NULL DEFAULT 0", label: .additive),
        Rule(sql: "ALTER TABLE tenant_c.t ADD COLUMN ident bigint GENERATED ALWAYS AS IDENTITY", label: .additive),
        Rule(sql: "ALTER TABLE tenant_c.t ADD COLUMN twice int GENERATED ALWAYS AS (id * 2) STORED", label: .additive),
        Rule(sql: "ALTER TABLE tenant_c.t ALTER COLUMN dflt SET DEFAULT 1", label: .additive, changesPackage: false),
        Rule(sql: "ALTER TABLE tenant_c.t ADD PRIMARY KEY (id)", label: .additive),
        Rule(sql: "CREATE TABLE tenant_c.other (x int)", label: .additive),
        Rule(sql: "CREATE TYPE tenant_c.mood AS ENUM ('ok')", label: .additive),
        Rule(sql: "ALTER TYPE tenant_c.mood ADD VALUE 'great'", label: .additive),
        Rule(sql: "COMMENT ON TABLE tenant_c.t IS 'things'", label: .cosmetic),
        Rule(sql: "COMMENT ON COLUMN tenant_c.t.note IS 'a note'", label: .cosmetic),
        Rule(sql: "ALTER TABLE tenant_c.t ADD COLUMN must int NOT NULL", label: .breaking),
        Rule(sql: "ALTER TABLE tenant_c.t RENAME COLUMN note TO remark", label: .breaking),
        Rule(sql: "ALTER TABLE tenant_c.t ALTER COLUMN must TYPE bigint", label: .breaking),
        Rule(sql: "ALTER TABLE tenant_c.t ALTER COLUMN must DROP NOT NULL", label: .breaking),
        Rule(sql: "ALTER TABLE tenant_c.t ALTER COLUMN remark SET NOT NULL", label: .breaking),
        Rule(sql: "ALTER TABLE tenant_c.t DROP COLUMN dflt", label: .breaking),
        Rule(sql: "ALTER TYPE tenant_c.mood RENAME VALUE 'ok' TO 'fine'", label: .breaking),
        Rule(sql: "ALTER TABLE tenant_c.t RENAME TO things", label: .breaking),
        Rule(sql: "DROP TABLE tenant_c.other", label: .breaking),
    ]

    @Test("each rule: the captured label, and the version bump it makes")
    func labelsMoveTheVersion() async throws {
        let (database, connection) = try await installedDatabase("compat_semver")
        var state = SDKState(tenant: "c")
        var seen = 0
        func apply(_ sql: String) async throws -> [SchemaChangeEvent] {
            try await connection.execute(script: sql)
            let rows = try await connection.query("SELECT event_data::text AS event FROM platform.schema_changes ORDER BY id")
            let events = try rows.dropFirst(seen).map { try SchemaChangeEvent.decode(Array(($0["event"] ?? "").utf8)) }
            seen = rows.count
            for event in events { state = SDKStateUpdate.apply(event, to: state).state }
            return events
        }
        _ = try await apply("CREATE SCHEMA tenant_c; CREATE TABLE tenant_c.t (id int NOT NULL)")
        #expect(state.version == .initial)

        for rule in Self.rules {
            let before = try #require(state.version)
            let events = try await apply(rule.sql)
            let event = try #require(events.last, "no event for \(rule)")
            #expect(events.count == 1, "\(rule)")
            #expect(event.changes?.compatibility == rule.label, "label of \(rule)")
            let after = try #require(state.version)
            let expected = rule.changesPackage ? before.bumped(SemanticVersion.Level(rule.label)) : before
            #expect(after == expected, "\(rule): \(before) -> \(after)")
        }
        try await database.drop()
    }

    @Test("an event without a label (captured before migration 16) counts as breaking")
    func unlabelledIsBreaking() throws {
        var state = SDKState(tenant: "u")
        state.version = SemanticVersion(major: 1, minor: 2, patch: 3)
        let event = try SchemaChangeEvent.decode(Array("""
            {"version": 1, "kind": "ddl", "event_id": "00000000-0000-4000-8000-000000000001", "command": "CREATE TABLE",
             "object_type": "table", "object_identity": "tenant_u.t", "schema_name": "tenant_u", "tenant_id": "u",
             "occurred_at": "2026-01-01T00:00:00Z", "transaction_id": 1, "actor": "a", "database": "d", "changes": null,
             "previous_shape_known": false,
             "table": {"schema": "tenant_u", "name": "t", "comment": null, "columns": [], "primary_key": []}}
            """.utf8))
        #expect(SDKStateUpdate.apply(event, to: state).state.version == SemanticVersion(major: 2, minor: 0, patch: 0))
    }
}
