public import Foundation
public import Logging
import Outbox
import Postgres

/// The relay's `/api/status` document: the outbox's status read on a connection of its own,
/// with the process's readiness.
///
/// One reading serves every request for a second, so a page left open on many screens costs
/// the database one set of queries per second at most.
public actor OutboxStatusReport {
    private var database: ReconnectingConnection
    private let schema: String
    private var latest: (at: ContinuousClock.Instant, status: OutboxStatus)?
    /// The reading under way, which requests arriving meanwhile wait for instead of starting
    /// their own.
    private var reading: Task<OutboxStatus, any Error>?
    private static let lifetime: Duration = .seconds(1)

    /// - Parameter database: its options bound every call, so a hung database fails the request
    ///   instead of holding it.
    public init(database: OutboxDatabase, logger: Logger) {
        self.database = ReconnectingConnection(url: database.url, options: database.options, logger: logger)
        schema = database.schema
    }

    /// - Parameter inFlight: the events the relay process holds unacknowledged now.
    public func json(readinessProblems: [String], inFlight: Int) async throws -> Data {
        var status = try await current()
        status.readiness = OutboxStatus.Readiness(problems: readinessProblems)
        status.inFlight = inFlight
        return try OperatorJSON.encode(status)
    }

    private func current() async throws -> OutboxStatus {
        if let latest, ContinuousClock.now - latest.at < Self.lifetime { return latest.status }
        if let reading { return try await reading.value }
        let task = Task { try await self.read() }
        reading = task
        defer { reading = nil }
        let status = try await task.value
        latest = (.now, status)
        return status
    }

    /// Only ever runs once at a time (``reading``), so the connection is never shared.
    private func read() async throws -> OutboxStatus {
        var database = self.database
        defer { self.database = database }
        let schema = schema
        return try await database.use { connection in
            try await OutboxOperations(connection: connection, schema: schema).status()
        }
    }
}
