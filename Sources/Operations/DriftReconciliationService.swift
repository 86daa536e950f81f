import CoreMetrics
public import Logging
public import Postgres
public import ServiceLifecycle

/// Calls `<schema>.reconcile()` every `interval`, so DDL the event triggers never saw (a disabled
/// trigger, `session_replication_role = replica`, sessions a managed platform exempts from event
/// triggers) still reaches consumers as `kind: "drift"` events, without anyone remembering to
/// call it. Each event emitted is counted in `outbox_drift_events_total`: on a healthy install
/// it stays at 0, so any increase means capture is being bypassed somewhere.
///
/// `reconcile()` serialises itself with an advisory lock, so several bridges on one database
/// emit each drift once. Runs as the relay's login: `reconcile()` is `SECURITY DEFINER` and
/// granted to `outbox_relay`.
public struct DriftReconciliationService: Service {
    public let databaseURL: String
    /// Bounds every call, so a hung connection is abandoned instead of silently stopping this.
    public let databaseOptions: PostgresConnection.Options
    public let schema: String
    /// Time between two calls; the first call is made at start.
    public let interval: Duration
    public let logger: Logger
    private let driftEvents = Counter(label: "outbox_drift_events_total")

    public init(
        databaseURL: String, databaseOptions: PostgresConnection.Options = .init(),
        schema: String, interval: Duration, logger: Logger
    ) {
        self.databaseURL = databaseURL
        self.databaseOptions = databaseOptions
        self.schema = schema
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        // Exported from the start, so a dashboard tells "no drift" from "not reconciling".
        driftEvents.increment(by: 0)
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                // A connection per call, closed when the call ends: calls are minutes apart, and
                // an idle session held in between would only count against the login's limit.
                let connection = try await PostgresConnection.connect(databaseURL, options: databaseOptions, logger: logger)
                let function = "\(try await connection.quoteIdentifier(schema)).reconcile()"
                let emitted = try await connection.query("SELECT \(function) AS emitted")[0].require(Int64.self, column: "emitted")
                if emitted > 0 {
                    driftEvents.increment(by: emitted)
                    logger.warning("DDL escaped the event triggers; drift events emitted", metadata: [
                        "drift-events": "\(emitted)",
                        "hint": "run `outbox-bridge check` to find a disabled trigger or session_replication_role = replica"])
                }
            } catch {
                logger.warning("drift reconciliation failed; trying again later", metadata: ["error": "\(error)"])
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
