import Foundation
public import Kafka
public import Logging
import Outbox
import Postgres
public import ServiceLifecycle

/// The relay: wakes on `NOTIFY` (and polls regardless, since notifications are lost while
/// disconnected), claims pending outbox rows in id order, publishes them, and marks each row
/// processed with where it landed only after the broker acknowledged it.
///
/// On graceful shutdown it stops claiming, waits for the records in flight to be resolved,
/// gives its shard leases back and returns; the producer is flushed by its own service after
/// this one.
public final class RelayService: Service, Sendable {
    private let configuration: RelayConfiguration
    private let producer: KafkaProducer
    private let logger: Logger
    private let metrics = RelayMetrics()
    /// Whether the relay is making progress, for readiness checks.
    public let health: RelayHealth

    public init(configuration: RelayConfiguration, producer: KafkaProducer, logger: Logger) {
        self.configuration = configuration
        self.producer = producer
        self.logger = logger
        self.health = RelayHealth(bounds: configuration.readiness)
    }

    public func run() async throws {
        let store = try await configuration.connectOutboxStore(logger: logger)
        let connection = store.connection
        let leases = ShardLeases(quotedSchema: store.quotedSchema, leaseDuration: configuration.leaseDuration)
        let logger = {
            var logger = self.logger
            logger[metadataKey: "instance"] = "\(leases.instanceID)"
            return logger
        }()
        logger.info("relay started", metadata: [
            "schema": "\(configuration.schema)", "topic": "\(configuration.topicTemplate)",
            "batch-size": "\(configuration.batchSize)",
            "wake-up": "\(configuration.pollOnly ? "polling only" : "NOTIFY \(configuration.channel) and polling")",
        ])
        if configuration.pollOnly {
            logger.notice("poll-only mode: no LISTEN connection; events wait up to one poll interval", metadata: [
                "poll-interval": "\(configuration.pollInterval)"])
        }

        let database = try await connection.query("SELECT pg_catalog.current_database()::text AS name")[0]
            .require(String.self, column: "name")
        let router = EventRouter(
            topicTemplate: configuration.topicTemplate, cloudEventsSource: configuration.cloudEventsSource,
            database: database)
        let ledger = InFlightLedger()
        health.watch(inFlight: { ledger.ids })
        let markStore = try await configuration.connectOutboxStore(logger: logger)
        let engine = RelayEngine(
            configuration: configuration, producer: producer, router: router, claimStore: store, markStore: markStore,
            leases: leases, ledger: ledger, health: health, logger: logger)
        await withTaskGroup(of: Void.self) { background in
            if !configuration.pollOnly {
                background.addTask { await self.listenForWakeUps(engine, logger: logger) }
            }
            background.addTask { await self.renewLeases(leases, logger: logger) }
            background.addTask {
                await self.lookUpTopics([router.fixedTopic, self.configuration.deadLetterTopic].compactMap { $0 }, logger: logger)
            }
            await withTaskCancellationHandler {
                await withGracefulShutdownHandler {
                    await engine.run()
                } onGracefulShutdown: {
                    engine.post(.stop)
                }
            } onCancel: {
                engine.post(.cancel)
            }
            background.cancelAll()
        }
        do {
            try await leases.releaseAll(on: engine.leaseConnection ?? connection)
        } catch {
            logger.warning("could not give the shard leases back; they expire by themselves", metadata: [
                "error": "\(error)"])
        }
        logger.info("relay stopped")
    }

    /// Looks up the topics known before any event, beside the first claim, so the first events
    /// go out at once. A missing topic is reported, not refused: it may be created before the
    /// first event for it.
    private func lookUpTopics(_ topics: [String], logger: Logger) async {
        do {
            for (topic, problem) in try await producer.lookUpTopics(topics, timeout: .seconds(5)) {
                logger.warning("Kafka topic unavailable", metadata: [
                    "topic": "\(topic)", "error": "\(problem)"])
            }
        } catch {
            logger.warning("could not look up the Kafka topics", metadata: ["error": "\(error)"])
        }
    }

    /// Keeps `LISTEN` running, reconnecting after losses; every (re)connect wakes the engine so
    /// the backlog written while disconnected is drained before waiting again.
    private func listenForWakeUps(_ engine: RelayEngine, logger: Logger) async {
        var options = PostgresListener.Options()
        options.heartbeatInterval = configuration.listenHeartbeat
        // The engine claims at most every turn interval anyway: reading notifications more
        // often would only wake the listening thread for nothing.
        options.readInterval = configuration.turnInterval
        options.connection = configuration.database
        let url = configuration.listenURL ?? configuration.databaseURL
        while !Task.isCancelled {
            do {
                let listener = try await PostgresListener.connect(
                    url, channels: [configuration.channel], options: options, logger: logger
                ) { [metrics] _ in
                    metrics.notified()
                    engine.post(.wake)
                }
                logger.debug("listening", metadata: ["channel": "\(configuration.channel)"])
                engine.post(.wake)
                // Notifications go straight to the engine; the sequence only ends, when the
                // connection is lost.
                for try await _ in listener.notifications {}
            } catch is CancellationError {
                return
            } catch {
                metrics.listenReconnected()
                logger.warning("LISTEN connection lost; polling until it is back", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func renewLeases(_ leases: ShardLeases, logger: Logger) async {
        var database = ReconnectingConnection(url: configuration.databaseURL, options: configuration.database, logger: logger)
        while !Task.isCancelled {
            do {
                try await database.use { try await leases.renewInBackground(on: $0) }
                health.postgresAnswered(true)
            } catch {
                health.postgresAnswered(false)
                logger.warning("could not renew shard leases", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.leaseDuration / 5)
        }
    }
}

extension RelayConfiguration {
    /// A connection of its own to the outbox, with the relay's connection settings: the claims'
    /// and the outcome writes' at start, and each one again after it was lost. Its statements
    /// are prepared when `databaseURL` reaches the server directly.
    func connectOutboxStore(logger: Logger) async throws(PostgresError) -> OutboxStore {
        try await OutboxStore(connection: connect(logger: logger), schema: schema, preparesStatements: databaseURLIsDirect)
    }

    /// A connection to `databaseURL` with the relay's connection settings (the lease
    /// rebalance's, and each outbox store's).
    func connect(logger: Logger) async throws(PostgresError) -> PostgresConnection {
        try await PostgresConnection.connect(databaseURL, options: database, logger: logger)
    }
}
