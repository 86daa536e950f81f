import CoreMetrics
public import Logging
import Outbox
import Postgres
public import ServiceLifecycle

/// Samples the outbox every `interval` into gauges: the backlog (per tenant for the tenants
/// with the most pending events), the age of the oldest pending event, dead events, and
/// PostgreSQL's `pg_notification_queue_usage()` (a full notification queue stalls every
/// transaction that notifies, DDL included).
///
/// Per-tenant series stay bounded however many tenants exist: a tenant that leaves the top
/// `tenantLimit` has its gauge unregistered, not set to 0, since a registry keeps every series
/// it was ever given and each scrape would carry them all.
public struct BacklogGauges: Service {
    private let schedule: OutboxSchedule
    /// Tenants reported one by one (those with the most pending events, ties by name); the rest
    /// are in the total only.
    public let tenantLimit: Int

    /// - Parameters:
    ///   - interval: time between two samples; the first is taken at start. Default 5 s.
    ///   - tenantLimit: default 50.
    public init(database: OutboxDatabase, interval: Duration = .seconds(5), tenantLimit: Int = 50, logger: Logger) {
        schedule = OutboxSchedule(database: database, interval: interval, logger: logger)
        self.tenantLimit = tenantLimit
    }

    public func run() async throws {
        var connection = schedule.reconnectingConnection()
        var tenantGauges: [String: Gauge] = [:]
        // Said once per run of failures: the gauges keep their last values meanwhile, so a
        // dashboard would otherwise show a stale backlog without a word.
        await schedule.run(
            failure: "backlog sample failed; the backlog gauges keep their last values",
            recovery: "backlog gauges sampled again"
        ) {
            let previous = tenantGauges
            tenantGauges = try await connection.use { try await sample($0, previousTenantGauges: previous) }
        }
    }

    /// Records one sample; returns the per-tenant gauges now registered.
    private func sample(
        _ connection: PostgresConnection, previousTenantGauges: [String: Gauge]
    ) async throws -> [String: Gauge] {
        let operations = try await OutboxOperations(connection: connection, schema: schedule.database.schema)
        let backlog = try await operations.backlog()
        Gauge(label: "outbox_pending_events_total").record(backlog.pending)
        Gauge(label: "outbox_oldest_pending_age_seconds").record(backlog.oldestPendingAgeSeconds ?? 0)
        Gauge(label: "outbox_dead_events").record(backlog.dead)
        Gauge(label: "postgres_notification_queue_usage").record(backlog.notificationQueueUsage)

        var tenantGauges: [String: Gauge] = [:]
        for tenant in try await operations.pendingByTenant(limit: tenantLimit) {
            let gauge = previousTenantGauges[tenant.tenant]
                ?? Gauge(label: "outbox_pending_events", dimensions: [("tenant", tenant.tenant)])
            gauge.record(tenant.pending)
            tenantGauges[tenant.tenant] = gauge
        }
        for (tenant, gauge) in previousTenantGauges where tenantGauges[tenant] == nil {
            gauge.destroy()
        }
        return tenantGauges
    }
}
