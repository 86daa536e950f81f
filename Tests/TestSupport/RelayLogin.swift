import Foundation
import Postgres

extension TestDatabase {
    /// Creates a login role that has exactly what the README tells users to give the bridge,
    /// membership in `outbox_relay` and nothing else, and returns this database's URL as that
    /// login. Tests that run the relay through it prove the documented least-privilege
    /// deployment works, instead of passing because the test ran as a superuser.
    ///
    /// The outbox must be installed first (it creates `outbox_relay`). Roles belong to the
    /// cluster, so the login stays with it after the database is dropped, like a failed test's
    /// database does; its random name never collides with another test's.
    public func relayLoginURL() async throws -> String {
        let role = "relay_login_\(UInt32.random(in: 0...UInt32.max))"
        let password = UUID().uuidString
        let admin = try await connect()
        let quotedRole = try await admin.quoteIdentifier(role)
        try await admin.execute(script: """
            CREATE ROLE \(quotedRole) LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
                PASSWORD \(try await admin.quoteLiteral(password));
            GRANT outbox_relay TO \(quotedRole);
            """)
        var components = URLComponents(string: url)!
        components.user = role
        components.password = password
        return components.string!
    }
}
