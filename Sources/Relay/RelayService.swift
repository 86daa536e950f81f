import Foundation
public import Kafka
public import Logging
import Outbox
import Postgres
public import ServiceLifecycle

/// The relay: wakes on `NOTIFY` (and polls regardless, since notifications are lost while
/// disconnected), claims pending outbox rows in id order, publishes a whole batch before
/// awaiting its acknowledgements, and only then marks the acknowledged rows processed with
/// where they landed.
///
/// On graceful shutdown it stops claiming, lets the batch in flight finish, gives its shard
/// leases back and returns; the producer is flushed by its own service after this one.
public final class RelayService: Service, Sendable {
    private let configuration: RelayConfiguration
    private let producer: KafkaProducer
    private let router: EventRouter
    private let wake = WakeSignal()
    private let logger: Logger

    public init(configuration: RelayConfiguration, producer: KafkaProducer, logger: Logger) {
        self.configuration = configuration
        self.producer = producer
        self.router = EventRouter(
            topicTemplate: configuration.topicTemplate, cloudEventsSource: configuration.cloudEventsSource)
        self.logger = logger
    }

    public func run() async throws {
        let connection = try await PostgresConnection.connect(configuration.databaseURL, logger: logger)
        let store = try await OutboxStore(connection: connection, schema: configuration.schema)
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

        await withTaskGroup(of: Void.self) { background in
            if !configuration.pollOnly {
                background.addTask { await self.listenForWakeUps(logger: logger) }
            }
            background.addTask { await self.renewLeases(leases, logger: logger) }
            await relayUntilShutdown(store: store, leases: leases, logger: logger)
            background.cancelAll()
        }
        do {
            try await leases.releaseAll(on: store.connection)
        } catch {
            logger.warning("could not give the shard leases back; they expire by themselves", metadata: [
                "error": "\(error)"])
        }
        logger.info("relay stopped")
    }

    /// The main loop. A lost database connection is reconnected here; everything still pending
    /// is simply claimed again.
    private func relayUntilShutdown(store initialStore: OutboxStore, leases: ShardLeases, logger: Logger) async {
        var store: OutboxStore? = initialStore
        let clock = ContinuousClock()
        var nextRebalance = clock.now
        while !Task.isShuttingDownGracefully, !Task.isCancelled {
            do {
                let current: OutboxStore
                if let store {
                    current = store
                } else {
                    let connection = try await PostgresConnection.connect(configuration.databaseURL, logger: logger)
                    current = try await OutboxStore(connection: connection, schema: configuration.schema)
                    store = current
                    logger.info("reconnected to PostgreSQL")
                }
                if clock.now >= nextRebalance {
                    try await leases.rebalance(on: current.connection)
                    nextRebalance = clock.now.advanced(by: configuration.leaseDuration / 5)
                }
                let (shards, shardCount) = leases.usableShards
                let claimed = shards.isEmpty
                    ? 0 : try await relayBatch(store: current, shards: shards, shardCount: shardCount, logger: logger)
                if claimed < configuration.batchSize {
                    // Drained (or holding no shards): sleep until a notification or the next poll.
                    await cancelWhenGracefulShutdown {
                        await self.wake.wait(timeout: min(self.configuration.pollInterval, self.configuration.leaseDuration / 5))
                    }
                }
            } catch let error as PostgresError where error.kind == .connectionLost || error.kind == .connectionFailed {
                logger.error("PostgreSQL unreachable; retrying", metadata: ["error": "\(error)"])
                store = nil
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            } catch is CancellationError {
                break
            } catch {
                logger.error("relay cycle failed; retrying", metadata: ["error": "\(error)"])
                try? await cancelWhenGracefulShutdown { try await Task.sleep(for: .seconds(1)) }
            }
        }
    }

    /// Claims one batch, publishes it, and records each row's outcome. Returns how many rows
    /// were claimed.
    func relayBatch(store: OutboxStore, shards: [Int], shardCount: Int, logger: Logger) async throws -> Int {
        let events = try await store.claimPending(
            limit: configuration.batchSize, shards: shards, shardCount: shardCount)
        guard !events.isEmpty else { return 0 }
        let outcomes = await producer.send(events.map(router.record(for:)))
        let plan = DeliveryPlan(events: events, outcomes: outcomes, configuration: configuration)
        try await store.markDelivered(plan.delivered)
        try await store.recordFailures(plan.retries)
        for deadLetter in plan.deadLetters {
            try await self.deadLetter(deadLetter, store: store, logger: logger)
        }
        if let firstError = plan.firstError {
            logger.warning("events failed to publish", metadata: [
                "retrying": "\(plan.retries.count)", "dead-lettered": "\(plan.deadLetters.count)",
                "held-back-behind-a-retry": "\(plan.heldBack)", "first-error": "\(firstError)"])
        }
        return events.count
    }

    /// Publishes an event that can never be delivered to the dead-letter topic, with the
    /// reason in headers, and marks its row dead. If even that fails the row stays pending
    /// with the error: nothing is dropped.
    private func deadLetter(_ deadLetter: DeliveryPlan.DeadLetter, store: OutboxStore, logger: Logger) async throws {
        let (event, reason) = (deadLetter.event, deadLetter.reason)
        var record = router.record(for: event)
        record.topic = configuration.deadLetterTopic
        record.headers += [
            KafkaHeader(name: "dead_letter_reason", value: reason),
            KafkaHeader(name: "dead_letter_original_topic", value: router.topic(for: event)),
            KafkaHeader(name: "dead_letter_attempts", value: String(event.attempts + 1)),
            KafkaHeader(name: "outbox_id", value: String(event.id)),
        ]
        if deadLetter.error.code == .messageSizeTooLarge {
            // The value is what could not be sent; the dead letter points at the outbox row,
            // which keeps the whole event.
            record.value = []
            record.headers.append(KafkaHeader(name: "dead_letter_payload", value: "omitted: too large; see the outbox row"))
        }
        do {
            let report = try await producer.send(record)
            try await store.markDead(event.id, reason: reason, deadLetter: OutboxDelivery(
                eventID: event.id, topic: report.topic, partition: report.partition, offset: report.offset))
            logger.error("event moved to the dead-letter topic", metadata: [
                "outbox-id": "\(event.id)", "event-id": "\(event.eventID)", "reason": "\(reason)"])
        } catch let error as KafkaError {
            try await store.recordFailures([OutboxFailure(
                eventID: event.id, error: "dead-letter publish failed: \(error); original failure: \(reason)",
                retryAfterSeconds: configuration.retryDelay(afterAttempts: event.attempts + 1).seconds)])
        }
    }

    /// Keeps `LISTEN` running, reconnecting after losses; every (re)connect wakes the loop so
    /// the backlog written while disconnected is drained before waiting again.
    private func listenForWakeUps(logger: Logger) async {
        var options = PostgresListener.Options()
        options.heartbeatInterval = configuration.listenHeartbeat
        let url = configuration.listenURL ?? configuration.databaseURL
        while !Task.isCancelled {
            do {
                let listener = try await PostgresListener.connect(
                    url, channels: [configuration.channel], options: options, logger: logger)
                logger.debug("listening", metadata: ["channel": "\(configuration.channel)"])
                wake.signal()
                for try await _ in listener.notifications {
                    wake.signal()
                }
            } catch is CancellationError {
                return
            } catch {
                logger.warning("LISTEN connection lost; polling until it is back", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: .seconds(1))
        }
    }

    private func renewLeases(_ leases: ShardLeases, logger: Logger) async {
        var connection: PostgresConnection?
        while !Task.isCancelled {
            do {
                let current: PostgresConnection
                if let connection {
                    current = connection
                } else {
                    current = try await PostgresConnection.connect(configuration.databaseURL, logger: logger)
                    connection = current
                }
                try await leases.renewInBackground(on: current)
            } catch {
                connection = nil
                logger.warning("could not renew shard leases", metadata: ["error": "\(error)"])
            }
            try? await Task.sleep(for: configuration.leaseDuration / 5)
        }
    }
}

/// What to do with each row of a published batch, decided in id order per tenant: acked rows
/// are marked; the first failure of a tenant is retried later (or dead-lettered when it can
/// never succeed); and the tenant's later rows in the batch stay pending even if they were
/// acked, so that they are published again after the failed one and the tenant's order holds
/// for its last copy of each event (those copies carry the same event id).
struct DeliveryPlan {
    var delivered: [OutboxDelivery] = []
    var retries: [OutboxFailure] = []
    struct DeadLetter {
        let event: OutboxEvent
        let reason: String
        let error: KafkaError
    }

    var deadLetters: [DeadLetter] = []
    var heldBack = 0
    var firstError: String?

    init(events: [OutboxEvent], outcomes: [Result<KafkaDeliveryReport, KafkaError>], configuration: RelayConfiguration) {
        var waitingTenants = Set<String?>()
        for (event, outcome) in zip(events, outcomes) {
            if waitingTenants.contains(event.tenantKey) {
                heldBack += 1
                continue
            }
            switch outcome {
            case .success(let report):
                delivered.append(OutboxDelivery(
                    eventID: event.id, topic: report.topic, partition: report.partition, offset: report.offset))
            case .failure(let error) where !error.isRetriable:
                firstError = firstError ?? "\(error)"
                deadLetters.append(DeadLetter(event: event, reason: "permanent: \(error)", error: error))
            case .failure(let error) where event.attempts + 1 >= configuration.maxAttempts:
                firstError = firstError ?? "\(error)"
                deadLetters.append(DeadLetter(
                    event: event, reason: "gave up after \(event.attempts + 1) attempts: \(error)", error: error))
            case .failure(let error):
                firstError = firstError ?? "\(error)"
                waitingTenants.insert(event.tenantKey)
                retries.append(OutboxFailure(
                    eventID: event.id, error: "\(error)",
                    retryAfterSeconds: configuration.retryDelay(afterAttempts: event.attempts + 1).seconds))
            }
        }
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
