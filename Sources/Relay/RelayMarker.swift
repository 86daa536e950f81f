import Kafka
import Logging
import Outbox
import Postgres

/// Writes outcomes back to the outbox on a connection of its own, so marking one batch runs
/// in parallel with claiming the next. A write that fails is retried on a new connection with
/// the same outcomes; the rows stay in flight meanwhile, so nothing claims them twice.
final class RelayMarker {
    private let configuration: RelayConfiguration
    private let producer: KafkaProducer
    private let router: EventRouter
    private let ledger: InFlightLedger
    private let inbox: AcknowledgementInbox
    /// Woken when rows leave the ledger while the loop waits for room, and when a tenant's
    /// retry is lifted (its failed row and the rows held back behind it are pending again), so
    /// the loop claims them without waiting for the next poll.
    private let roomFreed: WakeSignal
    private let logger: Logger
    private let metrics = RelayMetrics()
    private var store: OutboxStore?

    init(
        configuration: RelayConfiguration, producer: KafkaProducer, router: EventRouter, ledger: InFlightLedger,
        inbox: AcknowledgementInbox, roomFreed: WakeSignal, logger: Logger
    ) {
        self.configuration = configuration
        self.producer = producer
        self.router = router
        self.ledger = ledger
        self.inbox = inbox
        self.roomFreed = roomFreed
        self.logger = logger
    }

    /// Records outcomes as they arrive until cancelled.
    func run() async {
        while !Task.isCancelled {
            let arrivals = inbox.takeAll()
            guard !arrivals.isEmpty else {
                await inbox.signal.wait()
                continue
            }
            let resolution = ledger.plan(arrivals, configuration: configuration)
            while !Task.isCancelled {
                do {
                    try await write(resolution)
                    break
                } catch {
                    logger.error("could not record delivery outcomes; retrying", metadata: ["error": "\(error)"])
                    store = nil
                    try? await Task.sleep(for: .seconds(1))
                }
            }
            if ledger.remove(resolution.resolvedIDs) {
                roomFreed.signal()
            }
            metrics.record(resolution, retryTopic: configuration.topicTemplate, deadLetterTopic: configuration.deadLetterTopic)
        }
    }

    private func write(_ resolution: Resolution) async throws {
        let store = try await connectedStore()
        try await store.markDelivered(resolution.delivered)
        try await store.recordFailures(resolution.retries)
        for deadLetter in resolution.deadLetters {
            try await self.deadLetter(deadLetter, store: store)
        }
        if !resolution.retries.isEmpty || !resolution.deadLetters.isEmpty {
            logger.warning("events failed to publish", metadata: [
                "retrying": "\(resolution.retries.count)", "dead-lettered": "\(resolution.deadLetters.count)",
                "held-back-behind-a-retry": "\(resolution.heldBack)",
                "first-error": "\(resolution.retries.first?.error ?? resolution.deadLetters.first?.reason ?? "")"])
        }
    }

    private func connectedStore() async throws -> OutboxStore {
        if let store { return store }
        let connection = try await PostgresConnection.connect(
            configuration.databaseURL, options: configuration.database, logger: logger)
        let connected = try await OutboxStore(connection: connection, schema: configuration.schema)
        store = connected
        return connected
    }

    /// Publishes an event that can never be delivered to the dead-letter topic, with the
    /// reason in headers, and marks its row dead. If even that fails the row stays pending
    /// with the error: nothing is dropped.
    private func deadLetter(_ deadLetter: Resolution.DeadLetter, store: OutboxStore) async throws {
        let event = deadLetter.event
        var record = router.record(for: event)
        record.topic = configuration.deadLetterTopic
        record.headers += [
            KafkaHeader(name: "dead_letter_reason", value: deadLetter.reason),
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
            try await store.markDead(event.id, reason: deadLetter.reason, deadLetter: OutboxDelivery(
                eventID: event.id, topic: report.topic, partition: report.partition, offset: report.offset))
            logger.error("event moved to the dead-letter topic", metadata: [
                "outbox-id": "\(event.id)", "event-id": "\(event.eventID)", "reason": "\(deadLetter.reason)"])
        } catch let error as KafkaError {
            try await store.recordFailures([OutboxFailure(
                eventID: event.id, error: "dead-letter publish failed: \(error); original failure: \(deadLetter.reason)",
                retryAfterSeconds: configuration.retryDelay(afterAttempts: event.attempts + 1).seconds)])
        }
    }
}
