public import Logging
import Outbox
public import Postgres
public import ServiceLifecycle

/// Deletes processed events older than `keepProcessed` every `interval`, in small batches, so
/// the outbox does not grow forever while the relay runs. Dead events are never deleted here.
public struct RetentionService: Service {
    public let databaseURL: String
    /// Bounds every call, so a hung connection is abandoned instead of silently stopping this.
    public let databaseOptions: PostgresConnection.Options
    public let schema: String
    /// How long processed events are kept.
    public let keepProcessed: Duration
    /// Time between two sweeps.
    public let interval: Duration
    public let logger: Logger

    public init(
        databaseURL: String, databaseOptions: PostgresConnection.Options = .init(),
        schema: String, keepProcessed: Duration, interval: Duration, logger: Logger
    ) {
        self.databaseURL = databaseURL
        self.databaseOptions = databaseOptions
        self.schema = schema
        self.keepProcessed = keepProcessed
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        var database = ReconnectingConnection(url: databaseURL, options: databaseOptions, logger: logger)
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let deleted = try await database.use { connection in
                    try await OutboxOperations(connection: connection, schema: schema).prune(olderThan: keepProcessed)
                }
                if deleted > 0 {
                    logger.info("retention deleted processed events", metadata: [
                        "deleted": "\(deleted)", "older-than": "\(keepProcessed)"])
                }
            } catch {
                logger.warning("retention sweep failed; trying again later", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
