import Logging
public import Postgres
import ServiceLifecycle

/// The outbox database a background service works on, and the bounds of its connections.
public struct OutboxDatabase: Sendable {
    public var url: String
    /// Bounds every call, so a hung connection is abandoned instead of silently stopping the
    /// service. Default: ``PostgresConnection/Options``' own defaults.
    public var options: PostgresConnection.Options
    /// The schema the outbox is installed in.
    public var schema: String

    public init(url: String, options: PostgresConnection.Options = .init(), schema: String) {
        self.url = url
        self.options = options
        self.schema = schema
    }
}

/// What the relay's periodic services (retention, drift reconciliation, backlog gauges) share:
/// the outbox they work on, how often, and the one loop that runs them.
struct OutboxSchedule: Sendable {
    let database: OutboxDatabase
    /// Time between two runs; the first run is made at start.
    let interval: Duration
    let logger: Logger

    /// A connection that is opened on first use and again after it fails.
    func reconnectingConnection() -> ReconnectingConnection {
        ReconnectingConnection(url: database.url, options: database.options, logger: logger)
    }

    /// Runs `work` at once and then every `interval`, until graceful shutdown or cancellation.
    /// A run that fails is logged as `failure` and the work is tried again at the next interval:
    /// these services only tidy or watch the outbox, so a database that is away for a while
    /// must not stop the relay.
    ///
    /// With `recovery`, only the first failure of a run of failures is a warning (the rest are
    /// debug) and the first success after it is logged as `recovery`: for work whose failure
    /// leaves stale values behind, which should be said once, not every interval.
    func run(
        failure: Logger.Message, recovery: Logger.Message? = nil, _ work: () async throws -> Void
    ) async {
        var failing = false
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                try await work()
                if failing, let recovery { logger.notice(recovery) }
                failing = false
            } catch {
                let repeated = failing && recovery != nil
                logger.log(level: repeated ? .debug : .warning, failure, metadata: ["error": "\(error)"])
                failing = true
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
