import Foundation
public import Postgres

extension TestDatabase {
    /// This database's URL as a new ``RelayLogin``. Tests that run the relay through it prove
    /// the documented least-privilege deployment works, instead of passing because the test ran
    /// as a superuser. The outbox must be installed first (it creates `outbox_relay`).
    public func relayLoginURL() async throws -> String {
        try await RelayLogin.create(try await connect()).url(url)
    }
}

/// A login role granted only `outbox_relay`, as the README tells production to run the bridge:
/// the tests run the relay as it, and find the relay's own backends by its name.
public struct RelayLogin: Sendable {
    public let name: String
    public let password: String

    /// Creates the role in the cluster `admin` is connected to, with exactly what the README
    /// tells users to give the bridge: membership in `outbox_relay` and nothing else. Roles
    /// belong to the cluster, so the login outlives a dropped database, like a failed test's
    /// database does; its random name never collides with another test's.
    public static func create(_ admin: PostgresConnection) async throws -> RelayLogin {
        let login = RelayLogin(name: "relay_login_\(UInt32.random(in: 0...UInt32.max))", password: UUID().uuidString)
        let quotedRole = try await admin.quoteIdentifier(login.name)
        try await admin.execute(script: """
            CREATE ROLE \(quotedRole) LOGIN INHERIT NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS
                PASSWORD \(try await admin.quoteLiteral(login.password));
            GRANT outbox_relay TO \(quotedRole);
            """)
        return login
    }

    /// `url` with this login as its user and, when given, another port on loopback (a proxy's).
    public func url(_ url: String, port: Int? = nil) -> String {
        var components = URLComponents(string: url)!
        components.user = name
        components.password = password
        if let port {
            components.host = "127.0.0.1"
            components.port = port
        }
        return components.string!
    }

    /// The server processes of this login's sessions, with the `client_port` each connected
    /// from and the statement it runs or last ran.
    public func backends(_ admin: PostgresConnection) async throws -> [(pid: Int32, clientPort: Int, state: String, query: String)] {
        let rows = try await admin.query(
            """
            SELECT pid, coalesce(client_port, -1) AS client_port, coalesce(state, '') AS state, query
            FROM pg_catalog.pg_stat_activity WHERE usename = $1
            """, [name])
        return try rows.map { row throws(PostgresError) in
            (try row.require(Int32.self, column: "pid"), try row.require(Int.self, column: "client_port"),
             try row.require(String.self, column: "state"), row["query"] ?? "")
        }
    }
}

