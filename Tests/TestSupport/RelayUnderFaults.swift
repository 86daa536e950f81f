import Foundation
public import Postgres

/// A login role granted only `outbox_relay`, as the README tells production to run the bridge:
/// the tests run the relay as it, and find the relay's own backends by its name.
public struct RelayLogin: Sendable {
    public let name: String

    /// Creates the role in the cluster `admin` is connected to (roles are cluster-wide, so the
    /// name is random).
    public static func create(_ admin: PostgresConnection) async throws -> RelayLogin {
        let name = "relay_login_\(UInt32.random(in: 0...UInt32.max))"
        try await admin.query("CREATE ROLE \(try await admin.quoteIdentifier(name)) LOGIN IN ROLE outbox_relay")
        return RelayLogin(name: name)
    }

    /// `url` with this login as its user and, when given, another port on loopback (a proxy's).
    public func url(_ url: String, port: Int? = nil) -> String {
        var components = URLComponents(string: url)!
        components.user = name
        components.password = nil
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

/// An HTTP GET to `127.0.0.1:port` with curl, for `/health/*` and `/metrics`.
public func httpGet(port: Int, _ path: String) async throws -> (status: Int, body: String) {
    let result = try await runTool(
        "/usr/bin/curl", ["-s", "-m", "10", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"])
    let lines = result.output.split(separator: "\n", omittingEmptySubsequences: false)
    return (Int(lines.last ?? "") ?? 0, lines.dropLast().joined(separator: "\n"))
}
