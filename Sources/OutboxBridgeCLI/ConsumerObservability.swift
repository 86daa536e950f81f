import Consumers
import CoreMetrics
import Logging
import Operations
import Outbox
import Prometheus
import ServiceLifecycle

/// A consumer process's `/metrics` and `/health`, when it is given a port: the consumer lag per
/// group, topic and partition (`outbox_consumer_lag`), and the events not applied since start by
/// reason (`outbox_consumer_skipped_events{group,reason}`: `other_database`, `duplicate`,
/// `sequence_gap`), refreshed every few seconds; and its status page and `/api/status` (lag, last
/// applied event per tenant, dead letters), for loopback clients and, with `http.token`, for
/// clients sending it as a bearer token.
enum ConsumerObservability {
    static func services(
        for runtime: ConsumerRuntime, port: UInt16?, statusToken: String?, logger: Logger
    ) async throws -> [ServiceGroupConfiguration.ServiceConfiguration] {
        guard let port else { return [] }
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        let status = StatusEndpoint(token: statusToken) { readinessProblems in
            try OperatorJSON.encode(runtime.status(readinessProblems: readinessProblems))
        }
        let server = try await ObservabilityServer(
            host: "0.0.0.0", port: port, registry: registry, readiness: [], status: status, logger: logger)
        return [.init(service: server), .init(service: ConsumerLagGauges(runtime: runtime))]
    }
}

/// Publishes a consumer's lag snapshot and skip counts as gauges.
struct ConsumerLagGauges: Service {
    let runtime: ConsumerRuntime
    var interval: Duration = .seconds(2)

    func run() async throws {
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            let snapshot = runtime.lag
            for partition in snapshot.partitions {
                guard let lag = partition.lag else { continue }
                Gauge(label: "outbox_consumer_lag", dimensions: [
                    ("group", snapshot.group), ("topic", partition.topic), ("partition", String(partition.partition)),
                ]).record(lag)
            }
            let skipped = runtime.skipped
            for (reason, count) in [("other_database", skipped.otherDatabase), ("duplicate", skipped.duplicates),
                                    ("sequence_gap", skipped.gaps)] {
                Gauge(label: "outbox_consumer_skipped_events", dimensions: [("group", snapshot.group), ("reason", reason)])
                    .record(count)
            }
            try? await cancelWhenGracefulShutdown { try await Task.sleep(for: interval) }
        }
    }
}
