import Kafka
import Logging
import Outbox
import Postgres
import ServiceLifecycle
import Synchronization

/// The relay's main loop and the state only it touches: the rows in flight and the tenants
/// waiting for a retry.
///
/// Each turn resolves the acknowledgements that arrived, rebalances shard leases when due,
/// claims and publishes more rows while fewer than `maxInFlightBatches` batches await their
/// acks, and otherwise sleeps until an ack, a notification or the poll interval wakes it. So the
/// next claim overlaps the current batch's acks, and a tenant whose records are slow or failing
/// holds up only itself.
final class RelayLoop {
    private let configuration: RelayConfiguration
    private let producer: KafkaProducer
    private let router: EventRouter
    private let leases: ShardLeases
    private let wake: WakeSignal
    private let logger: Logger
    private let acknowledgements: AcknowledgementInbox
    private let clock = ContinuousClock()

    /// `nil` after the connection was lost, until the loop reconnects.
    private(set) var store: OutboxStore?
    private var inFlight: [Int64: OutboxEvent] = [:]
    private var inFlightPerTenant: [String?: Int] = [:]
    private var nextRebalance: ContinuousClock.Instant
    /// Tenants whose record `id` failed and will be retried: their later records that were
    /// acknowledged meanwhile stay pending, to be published again after it.
    private var retryingTenants: [String?: Int64] = [:]

    init(
        configuration: RelayConfiguration, producer: KafkaProducer, store: OutboxStore, leases: ShardLeases,
        wake: WakeSignal, logger: Logger
    ) {
        self.configuration = configuration
        self.producer = producer
        self.router = EventRouter(
            topicTemplate: configuration.topicTemplate, cloudEventsSource: configuration.cloudEventsSource)
        self.store = store
        self.leases = leases
        self.wake = wake
        self.logger = logger
        self.acknowledgements = AcknowledgementInbox(wake: wake)
        self.nextRebalance = clock.now
    }

    private var maxInFlight: Int { configuration.batchSize * configuration.maxInFlightBatches }

    func run() async {
        while !Task.isCancelled {
            let stopping = Task.isShuttingDownGracefully
            if stopping, inFlight.isEmpty { return }
            do {
                let store = try await connectedStore()
                try await resolve(acknowledgements.takeAll(), store: store)
                if clock.now >= nextRebalance {
                    try await leases.rebalance(on: store.connection, busyShards: Set(inFlight.values.map(\.shard)))
                    nextRebalance = clock.now.advanced(by: configuration.leaseDuration / 5)
                }
                let moreWaiting = stopping ? false : try await claimAndPublish(store: store)
                if !moreWaiting, !acknowledgements.hasArrivals {
                    try await sleepUntilWoken()
                }
            } catch is CancellationError {
                return
            } catch {
                if let error = error as? PostgresError, error.kind == .connectionLost || error.kind == .connectionFailed {
                    logger.error("PostgreSQL unreachable; retrying", metadata: ["error": "\(error)"])
                    store = nil
                } else {
                    logger.error("relay cycle failed; retrying", metadata: ["error": "\(error)"])
                }
                forgetInFlight()
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// After a failed turn the outcomes it was recording may be lost, so the loop stops
    /// tracking its rows. They are still pending in the database and will be claimed and
    /// published again (with the same event ids); a late acknowledgement of an earlier copy
    /// then marks the row with that copy's position, which holds the same event.
    private func forgetInFlight() {
        inFlight = [:]
        inFlightPerTenant = [:]
        retryingTenants = [:]
    }

    private func connectedStore() async throws -> OutboxStore {
        if let store { return store }
        let connection = try await PostgresConnection.connect(configuration.databaseURL, logger: logger)
        let reconnected = try await OutboxStore(connection: connection, schema: configuration.schema)
        store = reconnected
        logger.info("reconnected to PostgreSQL")
        return reconnected
    }

    /// Sleeps until an acknowledgement, a notification or the poll interval. While nothing is
    /// in flight a graceful shutdown ends the sleep at once.
    private func sleepUntilWoken() async throws {
        let interval = min(configuration.pollInterval, configuration.leaseDuration / 5)
        if inFlight.isEmpty {
            await cancelWhenGracefulShutdown { [wake] in await wake.wait(timeout: interval) }
        } else {
            await wake.wait(timeout: interval)
        }
    }

    /// Claims as many rows as there is room for and hands them to the producer without waiting
    /// for acks. Returns whether more rows are probably waiting.
    private func claimAndPublish(store: OutboxStore) async throws -> Bool {
        let room = maxInFlight - inFlight.count
        let (shards, shardCount) = leases.usableShards
        guard room > 0, !shards.isEmpty else { return false }
        let limit = min(configuration.batchSize, room)
        let events = try await store.claimPending(
            limit: limit, shards: shards, shardCount: shardCount, excluding: Array(inFlight.keys))
        guard !events.isEmpty else { return false }
        for event in events {
            inFlight[event.id] = event
            inFlightPerTenant[event.tenantKey, default: 0] += 1
        }
        let ids = events.map(\.id)
        await producer.send(events.map(router.record(for:))) { [acknowledgements] index, outcome in
            acknowledgements.deliver(id: ids[index], outcome: outcome)
        }
        return events.count == limit && room > limit
    }

    /// Records the outcome of every acknowledged or failed row, in id order: acked rows are
    /// marked with where they landed; a tenant's first failure is retried later (or
    /// dead-lettered when it can never succeed), and that tenant's later rows stay pending so
    /// they are published again after it; each copy carries the same event id.
    private func resolve(_ arrivals: [(id: Int64, outcome: Result<KafkaDeliveryReport, KafkaError>)], store: OutboxStore) async throws {
        guard !arrivals.isEmpty else { return }
        var delivered: [OutboxDelivery] = []
        var retries: [OutboxFailure] = []
        var deadLetters: [(OutboxEvent, String, KafkaError)] = []
        var heldBack = 0
        for arrival in arrivals.sorted(by: { $0.id < $1.id }) {
            guard let event = inFlight[arrival.id] else { continue }
            if let failedID = retryingTenants[event.tenantKey], failedID < event.id {
                heldBack += 1
                continue
            }
            switch arrival.outcome {
            case .success(let report):
                delivered.append(OutboxDelivery(
                    eventID: event.id, topic: report.topic, partition: report.partition, offset: report.offset))
            case .failure(let error) where !error.isRetriable:
                deadLetters.append((event, "permanent: \(error)", error))
            case .failure(let error) where event.attempts + 1 >= configuration.maxAttempts:
                deadLetters.append((event, "gave up after \(event.attempts + 1) attempts: \(error)", error))
            case .failure(let error):
                retryingTenants[event.tenantKey] = min(retryingTenants[event.tenantKey] ?? .max, event.id)
                retries.append(OutboxFailure(
                    eventID: event.id, error: "\(error)",
                    retryAfterSeconds: configuration.retryDelay(afterAttempts: event.attempts + 1).seconds))
            }
        }
        try await store.markDelivered(delivered)
        try await store.recordFailures(retries)
        for (event, reason, error) in deadLetters {
            try await deadLetter(event, reason: reason, error: error, store: store)
        }
        // Only rows whose outcome is now in the database leave the in-flight set; if writing
        // failed above they stay, and their outcomes are lost with this connection: the rows
        // are still pending and will be claimed again.
        for arrival in arrivals {
            guard let event = inFlight.removeValue(forKey: arrival.id) else { continue }
            inFlightPerTenant[event.tenantKey, default: 1] -= 1
            if inFlightPerTenant[event.tenantKey] == 0 {
                inFlightPerTenant[event.tenantKey] = nil
                retryingTenants[event.tenantKey] = nil
            }
        }
        if !retries.isEmpty || !deadLetters.isEmpty {
            logger.warning("events failed to publish", metadata: [
                "retrying": "\(retries.count)", "dead-lettered": "\(deadLetters.count)",
                "held-back-behind-a-retry": "\(heldBack)",
                "first-error": "\(retries.first?.error ?? deadLetters.first?.1 ?? "")"])
        }
    }

    /// Publishes an event that can never be delivered to the dead-letter topic, with the
    /// reason in headers, and marks its row dead. If even that fails the row stays pending
    /// with the error: nothing is dropped.
    private func deadLetter(_ event: OutboxEvent, reason: String, error: KafkaError, store: OutboxStore) async throws {
        var record = router.record(for: event)
        record.topic = configuration.deadLetterTopic
        record.headers += [
            KafkaHeader(name: "dead_letter_reason", value: reason),
            KafkaHeader(name: "dead_letter_original_topic", value: router.topic(for: event)),
            KafkaHeader(name: "dead_letter_attempts", value: String(event.attempts + 1)),
            KafkaHeader(name: "outbox_id", value: String(event.id)),
        ]
        if error.code == .messageSizeTooLarge {
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
        } catch {
            try await store.recordFailures([OutboxFailure(
                eventID: event.id, error: "dead-letter publish failed: \(error); original failure: \(reason)",
                retryAfterSeconds: configuration.retryDelay(afterAttempts: event.attempts + 1).seconds)])
        }
    }
}

/// Collects delivery outcomes from librdkafka's delivery thread for the loop, waking it.
final class AcknowledgementInbox: Sendable {
    typealias Arrival = (id: Int64, outcome: Result<KafkaDeliveryReport, KafkaError>)
    private let arrivals = Mutex<[Arrival]>([])
    private let wake: WakeSignal

    init(wake: WakeSignal) {
        self.wake = wake
    }

    func deliver(id: Int64, outcome: Result<KafkaDeliveryReport, KafkaError>) {
        arrivals.withLock { $0.append((id, outcome)) }
        wake.signal()
    }

    var hasArrivals: Bool {
        arrivals.withLock { !$0.isEmpty }
    }

    func takeAll() -> [Arrival] {
        arrivals.withLock { arrivals in
            defer { arrivals.removeAll(keepingCapacity: true) }
            return arrivals
        }
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
