import Foundation
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
    private let progress: RelayProgressLog
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
        self.progress = RelayProgressLog(logger: logger)
    }

    /// Records outcomes as they arrive until cancelled.
    func run() async {
        while !Task.isCancelled {
            let arrivals = inbox.takeAll()
            guard !arrivals.published.isEmpty || !arrivals.deadLetters.isEmpty else {
                await inbox.signal.wait()
                continue
            }
            let resolution = ledger.plan(
                arrivals.published, deadLetterArrivals: arrivals.deadLetters, configuration: configuration)
            await publishDeadLetters(resolution.deadLettersToPublish)
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
            metrics.record(resolution, topicTemplate: configuration.topicTemplate, deadLetterTopic: configuration.deadLetterTopic)
            progress.record(resolution)
        }
    }

    /// Writes the whole resolution in one statement: retrying it after a failure, even one
    /// that hid a commit, writes nothing twice.
    private func write(_ resolution: Resolution) async throws {
        if !resolution.outcomes.isEmpty {
            try await connectedStore().record(resolution.outcomes)
        }
        for deadLetter in resolution.deadLetters {
            logger.error("event moved to the dead-letter topic", metadata: [
                "outbox-id": "\(deadLetter.deadLetter.eventID)", "reason": "\(deadLetter.reason)"])
        }
        if !resolution.retries.isEmpty || !resolution.deadLettersToPublish.isEmpty || resolution.unacknowledged > 0 {
            logger.warning("events failed to publish", metadata: [
                "retrying": "\(resolution.retries.count)", "dead-lettering": "\(resolution.deadLettersToPublish.count)",
                "held-back-behind-a-retry": "\(resolution.heldBack)",
                "unacknowledged-by-a-failed-producer": "\(resolution.unacknowledged)",
                "first-error": "\(resolution.retries.first?.error ?? resolution.deadLettersToPublish.first?.reason ?? "")"])
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

    /// Hands events that can never be delivered to the producer for the dead-letter topic, with
    /// the reason in headers, without waiting for the broker: each dead letter's delivery report
    /// comes back through the inbox like any other, so other tenants' outcomes are written
    /// meanwhile. If the dead letter fails, its row stays pending with the error: nothing is
    /// dropped.
    private func publishDeadLetters(_ deadLetters: [Resolution.DeadLetter]) async {
        guard !deadLetters.isEmpty else { return }
        let ids = deadLetters.map(\.event.id)
        await producer.send(deadLetters.map(deadLetterRecord(for:))) { [inbox] index, outcome in
            inbox.deliverDeadLetter(id: ids[index], outcome: outcome)
        }
    }

    private func deadLetterRecord(for deadLetter: Resolution.DeadLetter) -> KafkaRecord {
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
            // The event is what the broker would not take, so the dead letter carries a summary
            // that always fits; the outbox row keeps the whole event.
            record.value = OversizeSummary(event: event, reason: deadLetter.reason).json
            record.headers.append(KafkaHeader(name: "dead_letter_payload", value: "summary: the event is too large; see the outbox row"))
        }
        return record
    }
}

/// What a dead letter says about an event too large to send: enough to find the event in the
/// outbox and know why it is not in Kafka, a few hundred bytes at most.
struct OversizeSummary: Encodable {
    let outboxID: Int64
    let eventID: String
    let tenant: String?
    let sizeBytes: Int
    let reason: String

    init(event: OutboxEvent, reason: String) {
        outboxID = event.id
        eventID = event.eventID
        tenant = event.tenantKey
        sizeBytes = event.payload.utf8.count
        self.reason = String(reason.prefix(500))
    }

    var json: [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        return (try? Array(encoder.encode(self))) ?? Array("{\"outbox_id\":\(outboxID)}".utf8)
    }
}
