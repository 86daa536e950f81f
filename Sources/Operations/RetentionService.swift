public import Logging
import Outbox
import Postgres
public import ServiceLifecycle

/// Deletes processed events older than `keepProcessed` every `interval`, in small batches, so
/// the outbox does not grow forever while the relay runs. Dead events are never deleted here.
public struct RetentionService: Service {
    private let schedule: OutboxSchedule
    /// How long processed events are kept.
    public let keepProcessed: Duration

    /// - Parameter interval: time between two sweeps; the first is made at start.
    public init(database: OutboxDatabase, keepProcessed: Duration, interval: Duration, logger: Logger) {
        schedule = OutboxSchedule(database: database, interval: interval, logger: logger)
        self.keepProcessed = keepProcessed
    }

    public func run() async throws {
        var connection = schedule.reconnectingConnection()
        await schedule.run(failure: "retention sweep failed; trying again later") {
            let deleted = try await connection.use { connection in
                try await OutboxOperations(connection: connection, schema: schedule.database.schema)
                    .prune(olderThan: keepProcessed)
            }
            if deleted > 0 {
                schedule.logger.info("retention deleted processed events", metadata: [
                    "deleted": "\(deleted)", "older-than": "\(keepProcessed)"])
            }
        }
    }
}
