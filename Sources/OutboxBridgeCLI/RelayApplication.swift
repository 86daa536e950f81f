import Foundation
import Synchronization
public import Kafka
public import Logging
import Operations
import Outbox
public import Prometheus
import Postgres
public import Relay
public import ServiceLifecycle
import UnixSignals

/// Assembles the relay's services from a configuration, so tests build exactly what
/// `outbox-bridge run` runs.
public enum RelayApplication {
    /// A failure to start, reported as one line with exit status 1.
    public struct StartupError: Error, CustomStringConvertible {
        public let description: String
    }

    /// The running relay and what it depends on. `developmentBroker` is set when no brokers were
    /// configured and the in-memory broker was started instead.
    public struct Assembly: Sendable {
        public let serviceGroup: ServiceGroup
        public let developmentBroker: KafkaDevelopmentBroker?
        /// Replaces its librdkafka instance by itself after a fatal error.
        public let producer: KafkaProducer
    }

    /// Checks that PostgreSQL, the outbox schema and Kafka are reachable, then builds the
    /// relay service and the producer's flush-on-shutdown service, ordered so the relay stops
    /// claiming first and the producer flushes after it.
    public static func assemble(
        configuration: RelayConfiguration, shutdownTimeout: Duration, retention: RetentionPolicy? = nil,
        observability: ObservabilityEndpoint? = nil, driftInterval: Duration? = nil, logger: Logger
    ) async throws -> Assembly {
        try await checkOutboxInstalled(configuration)
        var configuration = configuration
        var developmentBroker: KafkaDevelopmentBroker?
        if configuration.brokers.isEmpty {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            developmentBroker = broker
            configuration.brokers = broker.bootstrapServers
            logger.warning(
                """
                NO BROKERS CONFIGURED: relaying to an in-memory development broker at \
                \(broker.bootstrapServers). Everything it holds is lost when this process stops. \
                For trying things out only; set --brokers or KAFKA_BROKERS for real use.
                """)
        }

        let producer: KafkaProducer
        do {
            producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(
                    bootstrapServers: configuration.brokers,
                    properties: ProducerGuarantees.producerProperties(passThrough: configuration.kafkaProperties)),
                logger: logger)
            _ = try await producer.checkConnectivity(timeout: .seconds(10))
        } catch {
            throw StartupError(description: "Kafka brokers \(configuration.brokers) unusable: \(error)")
        }

        let relay = RelayService(configuration: configuration, producer: producer, logger: logger)
        let flusher = ProducerFlushService(producer: producer, timeout: shutdownTimeout)
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = [.init(service: flusher)]
        let outbox = OutboxDatabase(url: configuration.databaseURL, options: configuration.database, schema: configuration.schema)
        if let retention {
            services.append(.init(service: RetentionService(
                database: outbox, keepProcessed: retention.keepProcessed, interval: retention.interval, logger: logger)))
        }
        if let driftInterval {
            services.append(.init(service: DriftReconciliationService(database: outbox, interval: driftInterval, logger: logger)))
        }
        if let observability {
            // Probes read cached verdicts: a hundred concurrent probes cost one evaluation, and
            // the metadata request runs on the producer's probe queue, never in front of a
            // record being produced.
            let relayProgress = CachedReadiness(for: .seconds(1)) { relay.health.problem() }
            let kafkaReachable = CachedReadiness(for: .seconds(1)) {
                do {
                    _ = try await producer.checkConnectivity(timeout: .seconds(2))
                    return nil
                } catch {
                    return "Kafka unreachable: \(error)"
                }
            }
            let server = try await ObservabilityServer(
                host: observability.host, port: observability.port, registry: observability.registry,
                readiness: [
                    {
                        producer.unrecoveredFatalError.map {
                            "the Kafka producer failed fatally and was replaced; nothing acknowledged since: \($0)"
                        }
                    },
                    { await relayProgress.check() },
                    { await kafkaReachable.check() },
                ],
                status: StatusEndpoint(token: observability.statusToken) { [statusReport = OutboxStatusReport(database: outbox, logger: logger)] readinessProblems in
                    try await statusReport.json(readinessProblems: readinessProblems, inFlight: relay.health.inFlightCount)
                },
                logger: logger)
            services.append(.init(service: server))
            services.append(.init(service: BacklogGauges(database: outbox, logger: logger)))
        }
        // Services stop in reverse order: the relay first, so the producer flushes after it.
        services.append(.init(service: relay, successTerminationBehavior: .gracefullyShutdownGroup))
        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = shutdownTimeout
        return Assembly(
            serviceGroup: ServiceGroup(configuration: groupConfiguration), developmentBroker: developmentBroker,
            producer: producer)
    }

    private static func checkOutboxInstalled(_ configuration: RelayConfiguration) async throws {
        do {
            let connection = try await PostgresConnection.connect(configuration.databaseURL, options: configuration.database)
            _ = try await OutboxOperations.installed(on: connection, schema: configuration.schema)
        } catch where error.sqlState == PostgresError.SQLState.undefinedTable {
            throw StartupError(description: ExitStatus.notInstalled(schema: configuration.schema))
        } catch {
            throw StartupError(description: "\(error)")
        }
    }
}

/// Where `/metrics`, `/health/*` and the status page are served, and the registry the metrics
/// are kept in.
public struct ObservabilityEndpoint: Sendable {
    /// IPv4 address to listen on. Default: `0.0.0.0`, every interface.
    public var host = "0.0.0.0"
    /// Default: 9090; 0 picks a free port (logged at start).
    public var port: UInt16 = 9090
    /// The bearer token that opens the status page and `/api/status` to clients off the
    /// loopback interface. Default: none, loopback clients only.
    public var statusToken: String?
    public let registry: PrometheusCollectorRegistry

    public init(registry: PrometheusCollectorRegistry) {
        self.registry = registry
    }
}

/// How long the running bridge keeps processed events, and how often it deletes older ones.
public struct RetentionPolicy: Sendable {
    /// Default: 7 days.
    public var keepProcessed: Duration = .seconds(7 * 86_400)
    /// Default: 10 minutes.
    public var interval: Duration = .seconds(600)

    public init() {}
}

extension PostgresConnection.Options {
    /// The `database.*` bounds every PostgreSQL connection of the relay gets; keys the URL sets
    /// win over them (see config/bridge.yaml).
    static func read(from settings: SettingsReader) async throws -> PostgresConnection.Options {
        var options = PostgresConnection.Options()
        let defaults = options
        options.connectTimeoutSeconds = try await settings.int(
            "database.connectTimeoutSeconds", default: defaults.connectTimeoutSeconds, in: 1...600)
        options.keepalivesIdleSeconds = try await settings.int(
            "database.keepalivesIdleSeconds", default: defaults.keepalivesIdleSeconds, in: 1...7200)
        options.keepalivesIntervalSeconds = try await settings.int(
            "database.keepalivesIntervalSeconds", default: defaults.keepalivesIntervalSeconds, in: 1...600)
        options.keepalivesCount = try await settings.int(
            "database.keepalivesCount", default: defaults.keepalivesCount, in: 1...100)
        options.tcpUserTimeout = try await settings.seconds(
            "database.tcpUserTimeoutSeconds", default: defaults.tcpUserTimeout, in: 1...3600)
        options.statementTimeout = try await settings.seconds(
            "database.statementTimeoutSeconds", default: defaults.statementTimeout, in: 0.1...86_400)
        options.idleInTransactionTimeout = try await settings.seconds(
            "database.idleInTransactionTimeoutSeconds", default: defaults.idleInTransactionTimeout, in: 0.1...86_400)
        options.queryTimeout = try await settings.seconds(
            "database.queryTimeoutSeconds", default: defaults.queryTimeout, in: 0.1...86_400)
        guard options.queryTimeout > options.statementTimeout else {
            throw ConfigurationError(
                key: "database.queryTimeoutSeconds",
                problem: "must be longer than database.statementTimeoutSeconds (\(options.statementTimeout)), so the server's own timeout answers first")
        }
        return options
    }
}

extension RelayHealth.Bounds {
    /// The `readiness.*` bounds of `/health/ready`.
    static func read(from settings: SettingsReader) async throws -> RelayHealth.Bounds {
        var bounds = RelayHealth.Bounds()
        let defaults = bounds
        bounds.markDelay = try await settings.seconds("readiness.markDelaySeconds", default: defaults.markDelay, in: 0.1...86_400)
        bounds.claimStall = try await settings.seconds("readiness.claimStallSeconds", default: defaults.claimStall, in: 0.1...86_400)
        bounds.failingFor = try await settings.seconds("readiness.failingForSeconds", default: defaults.failingFor, in: 0.1...86_400)
        return bounds
    }
}

/// A readiness verdict computed at most once per `lifetime`, however many probes ask: probes
/// arriving while it is computed share that computation.
final class CachedReadiness: Sendable {
    private struct State {
        var verdict: (at: ContinuousClock.Instant, problem: String?)?
        var computing: Task<String?, Never>?
    }

    private let state = Mutex(State())
    private let lifetime: Duration
    private let evaluate: @Sendable () async -> String?

    init(for lifetime: Duration, evaluate: @escaping @Sendable () async -> String?) {
        self.lifetime = lifetime
        self.evaluate = evaluate
    }

    /// Why the service is not ready, or `nil` when it is.
    func check() async -> String? {
        let computing = state.withLock { state -> Task<String?, Never>? in
            if let verdict = state.verdict, ContinuousClock.now - verdict.at < lifetime { return nil }
            if let computing = state.computing { return computing }
            let computing = Task { [evaluate] in
                let problem = await evaluate()
                self.state.withLock { $0 = State(verdict: (.now, problem), computing: nil) }
                return problem
            }
            state.computing = computing
            return computing
        }
        guard let computing else { return state.withLock { $0.verdict?.problem } }
        return await computing.value
    }
}

/// Waits for shutdown, then flushes the producer: records the relay already enqueued get
/// their chance to be acknowledged (their rows stay pending otherwise and are sent again).
struct ProducerFlushService: Service {
    let producer: KafkaProducer
    let timeout: Duration

    func run() async throws {
        try? await gracefulShutdown()
        // Cancelled means the group escalated: the whole shutdown timeout is spent already (the
        // relay was waiting for acks that never came). Fail the outstanding records now rather
        // than flush for another full timeout; their rows stay pending and are sent again.
        await producer.shutdown(flushTimeout: Task.isCancelled ? .zero : timeout)
    }
}
