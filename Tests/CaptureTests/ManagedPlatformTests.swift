import Foundation
import Postgres
import TestSupport
import Testing

/// What can be imitated locally of a managed platform (docs/managed-postgres.md). On Neon the
/// project's owner role is no superuser: it is a member of `neon_superuser`, which has CREATEDB,
/// CREATEROLE, REPLICATION and BYPASSRLS and the predefined roles `pg_read_all_data` and
/// `pg_write_all_data` (Neon's "Manage roles" and "Manage database access" pages; BYPASSRLS since
/// the 2023-08-15 changelog). Event triggers there are skipped for
/// superuser and reserved-role sessions; locally `session_replication_role = replica` is the
/// same skip.
@Suite("Managed platforms, imitated: a neon_superuser-like owner and sessions the triggers skip", .tags(.capture))
struct ManagedPlatformTests {
    @Test("DDL of a non-superuser owner with neon_superuser's grants is captured; DDL of a session the triggers skip is found by reconcile(), once")
    func neonLikeOwner() async throws {
        let database = try await TestDatabase.createInstalled("managed_neon")
        let admin = try await database.connect()
        let suffix = UInt32.random(in: 0...UInt32.max)
        let platformRole = "neon_superuser_like_\(suffix)", owner = "neondb_owner_\(suffix)"
        try await admin.execute(script: """
            CREATE ROLE \(platformRole) NOLOGIN CREATEDB CREATEROLE REPLICATION BYPASSRLS;
            GRANT pg_read_all_data, pg_write_all_data TO \(platformRole);
            CREATE ROLE \(owner) LOGIN NOSUPERUSER INHERIT IN ROLE \(platformRole);
            ALTER DATABASE \(database.name) OWNER TO \(owner);
            """)
        let ownerIsSuperuser = try await admin.query("SELECT rolsuper FROM pg_roles WHERE rolname = $1", [owner])[0]["rolsuper"]
        #expect(ownerIsSuperuser == "f")

        var ownerURL = URLComponents(string: database.url)!
        ownerURL.user = owner
        let ownerSession = try await PostgresConnection.connect(ownerURL.string!)
        try await ownerSession.execute(script: """
            CREATE SCHEMA tenant_neon;
            CREATE TABLE tenant_neon.orders (id bigint PRIMARY KEY);
            ALTER TABLE tenant_neon.orders ADD COLUMN total numeric(12,2);
            """)
        let captured = try await admin.query(
            "SELECT event_data->>'command' AS command, event_data->>'actor' AS actor FROM platform.schema_changes ORDER BY id")
        #expect(captured.map { $0["command"] } == ["CREATE SCHEMA", "CREATE TABLE", "ALTER TABLE"])
        #expect(captured.allSatisfy { $0["actor"] == owner })

        // The platform's own session (a superuser the triggers do not fire for).
        try await admin.execute(script: """
            SET session_replication_role = replica;
            ALTER TABLE tenant_neon.orders ADD COLUMN note text;
            RESET session_replication_role;
            """)
        let relay = try await PostgresConnection.connect(try await database.relayLoginURL())
        #expect(try await relay.query("SELECT platform.reconcile() AS n")[0]["n"] == "1")
        let drift = try await admin.query(
            """
            SELECT event_data->>'drift' AS drift, event_data->>'object_identity' AS identity,
                   event_data->'changes'->'columns_added'->0->>'name' AS added
              FROM platform.schema_changes WHERE event_data->>'kind' = 'drift'
            """)
        #expect(drift.map { [$0["drift"], $0["identity"], $0["added"]] } == [["altered", "tenant_neon.orders", "note"]])
        #expect(try await relay.query("SELECT platform.reconcile() AS n")[0]["n"] == "0")
        try? await database.drop()
    }
}
