import Consumers
import Foundation
import TestSupport
import Testing

/// Drift events describe real schema changes the triggers missed: the warehouse mirrors them as
/// it mirrors DDL.
@Suite("warehouse-sync applies drift events found by reconcile()")
struct WarehouseDriftTests {
    @Test("a column added, a table created and a table dropped behind the triggers' back reach the warehouse through reconcile()")
    func appliesDrift() async throws {
        var fixture = try await WarehouseSyncFixture.make("whdrift")
        let handler = fixture.handler(.drop)
        try await handler.apply(try await fixture.capture("CREATE SCHEMA tenant_d; CREATE TABLE tenant_d.t (id int PRIMARY KEY);"))

        let drift = try await fixture.capture("""
            SET session_replication_role = replica;
            ALTER TABLE tenant_d.t ADD COLUMN missed text;
            CREATE TABLE tenant_d.unseen (id int NOT NULL);
            RESET session_replication_role;
            SELECT platform.reconcile();
            """)
        #expect(drift.map { "\($0.event.kind) \($0.event.drift ?? "-")" } == ["drift altered", "drift created"])
        try await handler.apply(drift)
        #expect(try await fixture.warehouseTables("tenant_d") == ["t", "unseen"])
        #expect(try await fixture.warehouseColumns("tenant_d", "t") == ["id", "missed"])

        try await handler.apply(try await fixture.capture("""
            SET session_replication_role = replica;
            DROP TABLE tenant_d.unseen;
            RESET session_replication_role;
            SELECT platform.reconcile();
            """))
        #expect(try await fixture.warehouseTables("tenant_d") == ["t"])
        #expect(try await fixture.appliedEventIDs().count == 5)
    }
}
