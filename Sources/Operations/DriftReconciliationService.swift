import CoreMetrics
public import Logging
import Outbox
import Postgres
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
    private let schedule: OutboxSchedule
    private let driftEvents = Counter(label: "outbox_drift_events_total")

    /// - Parameter interval: time between two calls; the first call is made at start.
    public init(database: OutboxDatabase, interval: Duration, logger: Logger) {
        schedule = OutboxSchedule(database: database, interval: interval, logger: logger)
    }

    public func run() async throws {
        // Exported from the start, so a dashboard tells "no drift" from "not reconciling".
        driftEvents.increment(by: 0)
        let database = schedule.database
        await schedule.run(failure: "drift reconciliation failed; trying again later") {
            // A connection per call, closed when the call ends: calls are minutes apart, and
            // an idle session held in between would only count against the login's limit.
            let connection = try await PostgresConnection.connect(database.url, options: database.options, logger: schedule.logger)
            let emitted = try await OutboxOperations(connection: connection, schema: database.schema).reconcile()
            if emitted > 0 {
                driftEvents.increment(by: emitted)
                schedule.logger.warning("DDL escaped the event triggers; drift events emitted", metadata: [
                    "drift-events": "\(emitted)",
                    "hint": "run `outbox-bridge check` to find a disabled trigger or session_replication_role = replica"])
            }
        }
    }
}
