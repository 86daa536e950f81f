import Foundation
public import Postgres

/// A fresh database in the throwaway PostgreSQL cluster that `scripts/dev-services.sh start`
/// runs, so each test starts from nothing and can run beside the others. Databases stay until
/// the cluster is stopped, which keeps what a failed test left behind open to inspection.
public struct TestDatabase: Sendable {
    /// The variable `scripts/dev-services.sh` exports with the cluster's superuser URL.
    public static let clusterURLVariable = "OUTBOX_BRIDGE_TEST_DATABASE_URL"

    /// The new database's name and URL (superuser, loopback).
    public let name: String
    public let url: String
    private let clusterURL: String

    /// The cluster's URL, with a clear failure when the services are not running.
    public static func clusterURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment[clusterURLVariable], !url.isEmpty else {
            throw TestEnvironmentError(
                "\(clusterURLVariable) is not set: start PostgreSQL with `eval \"$(scripts/dev-services.sh start)\"` or run scripts/test.sh")
        }
        return url
    }

    /// Creates a database named after `label` plus a random suffix, in the shared cluster or
    /// the one at `clusterURL` (a ``PrivatePostgresCluster``).
    public static func create(_ label: String, clusterURL: String? = nil) async throws -> TestDatabase {
        let clusterURL = try clusterURL ?? Self.clusterURL()
        let name = "test_\(label.lowercased().filter { $0.isLetter || $0.isNumber })_\(UInt32.random(in: 0...UInt32.max))"
        let admin = try await PostgresConnection.connect(clusterURL)
        try await admin.query("CREATE DATABASE \(try await admin.quoteIdentifier(name))")
        return TestDatabase(name: name, url: Self.replacingDatabase(in: clusterURL, with: name), clusterURL: clusterURL)
    }

    /// A new connection to this database.
    public func connect() async throws -> PostgresConnection {
        try await PostgresConnection.connect(url)
    }

    /// Drops the database, ending any sessions still connected to it.
    public func drop() async throws {
        let admin = try await PostgresConnection.connect(clusterURL)
        try await admin.query("DROP DATABASE IF EXISTS \(try await admin.quoteIdentifier(name)) WITH (FORCE)")
    }

    /// The URL of `database` on the same cluster.
    public func url(ofDatabase database: String) -> String {
        Self.replacingDatabase(in: clusterURL, with: database)
    }

    private static func replacingDatabase(in url: String, with database: String) -> String {
        var components = URLComponents(string: url)!
        components.path = "/" + database
        return components.string!
    }
}

/// A test precondition about the environment that does not hold.
public struct TestEnvironmentError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}
