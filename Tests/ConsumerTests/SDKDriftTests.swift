import Consumers
import Foundation
import TestSupport
import Testing

/// Drift events describe real schema changes the triggers missed: the package follows them as
/// it follows DDL, so it never keeps describing a table that is no longer what it says.
@Suite("sdk-sync applies drift events found by reconcile()")
struct SDKDriftTests {
    @Test("a column added, a table created and a table dropped behind the triggers' back reach the package through reconcile()")
    func appliesDrift() async throws {
        let fixture = try await SDKFixture.start("sdk_drift")
        try await fixture.run("CREATE SCHEMA tenant_d; CREATE TABLE tenant_d.t (id int PRIMARY KEY)")
        #expect(try fixture.text("d", "package.json").contains("\"version\": \"1.0.0\""))

        try await fixture.run("""
            SET session_replication_role = replica;
            ALTER TABLE tenant_d.t ADD COLUMN missed text;
            CREATE TABLE tenant_d.unseen (id int NOT NULL);
            RESET session_replication_role;
            SELECT platform.reconcile();
            """)
        var index = try fixture.index("d")
        #expect(index.contains("\n  \"missed\": string | null;\n"), "\(index)")
        #expect(index.contains("export interface Unseen {\n"), "\(index)")
        #expect(try fixture.text("d", "package.json").contains("\"version\": \"1.2.0\""))
        #expect(try fixture.text("d", "CHANGELOG.md").contains("Added column `\"missed\"`"))

        try await fixture.run("""
            SET session_replication_role = replica;
            DROP TABLE tenant_d.unseen;
            RESET session_replication_role;
            SELECT platform.reconcile();
            """)
        index = try fixture.index("d")
        #expect(!index.contains("interface Unseen"), "\(index)")
        #expect(try fixture.text("d", "package.json").contains("\"version\": \"2.0.0\""))
        #expect(try await fixture.events().filter { $0.kind == "drift" }.count == 3)
        try await TypeScriptCompiler.check(package: fixture.package("d"))
        try? await fixture.database.drop()
    }
}
