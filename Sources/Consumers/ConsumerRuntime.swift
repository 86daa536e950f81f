import Foundation
import Kafka
public import Logging
public import ServiceLifecycle

/// The consumer-group member every consumer runs: it reads the relay's topic, decodes each record
/// into a ``SchemaChangeEvent``, hands it to one ``EventHandler``, and commits the record's offset
/// only after the handler returned, so every event is applied at least once and a crash or a
/// rebalance re-delivers instead of skipping.
///
/// - Membership: any number of instances with the same group share the topic's partitions;
///   Kafka moves partitions between them as they come and go.
/// - Order: records are handled one at a time, in the order the consumer returns them, so a
///   tenant's events (one key, one partition) are applied in the order they happened. The price
///   is that a slow handler holds up every partition of this instance; scale out with instances.
/// - Failures: `.retriable` is retried with exponential backoff up to
///   ``ConsumerRuntimeConfiguration/maxAttempts``; then, like `.permanent` and undecodable
///   records, the record goes to the dead-letter topic with the reason in headers and its offset
///   is committed. A dead letter that cannot be produced is retried until it is, or until
///   shutdown; the offset is never committed past a record that went nowhere.
/// - Shutdown: on graceful shutdown the runtime stops polling, lets the handler finish the
///   current record, commits it, leaves the group and flushes the dead-letter producer, all
///   within ``ConsumerRuntimeConfiguration/shutdownTimeout`` whatever state Kafka is in: a call
///   still blocked on an unreachable broker when shutdown starts (a poll, a lag query, a commit)
///   is no longer waited for, and leaving the group and flushing get what is left of the bound.
///   A record waiting for a retry, or whose commit did not finish, is left uncommitted (it is
///   delivered again to whoever takes over).
/// - Lag: ``lag`` is a snapshot per partition, for the metrics endpoint.
/// - Admission (``EventAdmission``): before the handler sees an event, events of source
///   databases the consumer does not follow and repeated `tenant_seq` numbers are logged,
///   counted in ``skipped`` and committed past. An event after a missing `tenant_seq` is held
///   back, its tenant's recorded sequence checked again with backoff, and after
///   ``ConsumerRuntimeConfiguration/sequenceGapTimeout`` dead-lettered with the gap as the
///   reason, never applied.
///
/// A new consumer is one handler in one file, plus the lines of its command that build this:
///
/// ```swift
/// struct DocsHandler: EventHandler {
///     let name = "docs-sync"
///     let outputDirectory: URL
///     func handle(_ consumed: ConsumedEvent) async throws(EventHandlerError) {
///         guard consumed.event.kind == "ddl", let table = consumed.event.table else { return }
///         // render table into outputDirectory, idempotently, durably; throw .retriable on I/O errors
///     }
/// }
///
/// let runtime = try ConsumerRuntime(
///     configuration: ConsumerRuntimeConfiguration(brokers: brokers, groupID: "docs-sync"),
///     handler: DocsHandler(outputDirectory: directory), logger: logger)
/// try await ServiceGroup(services: [runtime], gracefulShutdownSignals: [.sigterm], logger: logger).run()
/// ```
public final class ConsumerRuntime: Service, Sendable {
    public let configuration: ConsumerRuntimeConfiguration
    private let handler: any EventHandler
    private let consumer: KafkaConsumer
    private let deadLetters: KafkaProducer
    private let lagTracker: ConsumerLagTracker
    private let activity = ConsumerActivity()
    private let admission: EventAdmission
    private let logger: Logger

    /// Creates the consumer and the dead-letter producer; nothing is contacted until ``run()``.
    /// - Throws: ``ConsumerRuntimeError/invalidConfiguration(_:)`` for a configuration with
    ///   ``ConsumerRuntimeConfiguration/problems``, or the ``KafkaError`` naming a librdkafka
    ///   property it rejected.
    public init(configuration: ConsumerRuntimeConfiguration, handler: any EventHandler, logger: Logger) throws {
        if let problem = configuration.problems.first {
            throw ConsumerRuntimeError.invalidConfiguration(problem)
        }
        var logger = logger
        logger[metadataKey: "consumer"] = "\(handler.name)"
        logger[metadataKey: "group"] = "\(configuration.groupID)"
        self.configuration = configuration
        self.handler = handler
        self.logger = logger
        consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: configuration.brokers, groupID: configuration.groupID,
                properties: configuration.kafkaProperties.merging(configuration.consumerProperties) { _, consumer in consumer }),
            logger: logger)
        deadLetters = try KafkaProducer(
            configuration: KafkaProducerConfiguration(
                bootstrapServers: configuration.brokers, properties: configuration.kafkaProperties),
            logger: logger)
        lagTracker = ConsumerLagTracker(group: configuration.groupID)
        admission = EventAdmission(sourceDatabases: configuration.sourceDatabases)
    }

    /// Events not applied since start, by reason, for the metrics endpoint.
    public var skipped: ConsumerSkipCounts {
        admission.counts
    }

    /// Consumer lag per partition this instance has read from, as of the last refresh
    /// (every ``ConsumerRuntimeConfiguration/lagRefreshInterval``) and the last commit.
    public var lag: ConsumerLagSnapshot {
        lagTracker.snapshot
    }

    /// The status page's document: the lag, the last event applied per tenant and the latest
    /// dead letters of this process, with the readiness problems its owner reports.
    public func status(readinessProblems: [String]) -> ConsumerStatus {
        activity.status(lag: lagTracker.snapshot, readinessProblems: readinessProblems)
    }

    public func run() async throws {
        logger.info("consumer started", metadata: [
            "topics": "\(configuration.topics.joined(separator: ","))",
            "dead-letter-topic": "\(configuration.effectiveDeadLetterTopic)",
        ])
        do {
            try await bootstrapIfEmpty()
            try await untilShutdown { [consumer, configuration] in try await consumer.subscribe(topics: configuration.topics) }
            try await consumeUntilShutdown()
        } catch is AbandonedWait {
            // Shutdown came while subscribing.
        } catch {
            logger.error("consumer failed", metadata: ["error": "\(error)"])
            await close()
            throw error
        }
        await close()
        logger.info("consumer stopped")
    }

    /// With ``ConsumerRuntimeConfiguration/bootstrapTopic`` and a handler that holds no state
    /// yet: reads the state topic to its end, hands the handler one event per object and tenant
    /// cursor, then commits the group's events-topic offsets after the positions the state
    /// covers, so consuming continues where the state ends (earlier records may be long gone).
    /// Anything the state does not cover is read from the start of what the topic still holds;
    /// events there that the state already holds are skipped by their `tenant_seq`.
    private func bootstrapIfEmpty() async throws {
        guard let stateTopic = configuration.bootstrapTopic else { return }
        guard let bootstrappable = handler as? any BootstrappableHandler else {
            throw ConsumerRuntimeError.invalidConfiguration("\(handler.name) cannot bootstrap from a state topic")
        }
        guard try await untilShutdown({ try await bootstrappable.holdsNoState() }) else {
            logger.info("state present; not bootstrapping", metadata: ["state-topic": "\(stateTopic)"])
            return
        }
        let reader = try KafkaRecordReader(
            bootstrapServers: configuration.brokers, properties: configuration.kafkaProperties, logger: logger)
        let contents = try await untilShutdown { [logger] in
            try await SchemaStateContents.read(topic: stateTopic, reader: reader, logger: logger)
        }
        try? await reader.close()
        let events = try contents.replayEvents()
        for consumed in events {
            var attempts = 0
            while true {
                attempts += 1
                do {
                    try await untilShutdown { [handler] in try await handler.handle(consumed) }
                    break
                } catch let error as EventHandlerError {
                    guard case .retriable = error, attempts < configuration.maxAttempts else { throw error }
                    guard await pause(for: configuration.retryDelay(afterFailedAttempts: attempts)) else { throw AbandonedWait.cancelled }
                }
            }
            admission.applied(consumed.event)
        }
        for topic in configuration.topics {
            for (partition, offset) in contents.covered[topic] ?? [:] {
                let position = KafkaMessage(topic: topic, partition: partition, offset: offset, key: nil, value: nil, headers: [])
                try await untilShutdown { [consumer] in try await consumer.commit(position) }
            }
        }
        logger.info("bootstrapped from the state topic", metadata: [
            "state-topic": "\(stateTopic)", "objects": "\(contents.objects.count)", "tenants": "\(contents.cursors.count)",
            "continuing-after": "\(contents.covered)"])
    }

    /// Waits for `operation` unless graceful shutdown (or cancellation) comes first, then throws
    /// ``AbandonedWait`` and leaves the call to finish on its own.
    private func untilShutdown<Value: Sendable>(
        _ operation: @escaping @Sendable () async throws -> Value
    ) async throws -> Value {
        try await cancelWhenGracefulShutdown {
            try await abandonable(operation)
        }
    }

    private var shouldStop: Bool {
        Task.isShuttingDownGracefully || Task.isCancelled
    }

    private func consumeUntilShutdown() async throws {
        let clock = ContinuousClock()
        var nextLagRefresh = clock.now
        while !shouldStop {
            if clock.now >= nextLagRefresh {
                await refreshLag()
                nextLagRefresh = clock.now.advanced(by: configuration.lagRefreshInterval)
            }
            let message: KafkaMessage?
            do {
                message = try await untilShutdown { [consumer, configuration] in
                    try await consumer.poll(timeout: configuration.pollTimeout)
                }
            } catch is AbandonedWait {
                break
            } catch {
                if (error as? KafkaError)?.isFatal == true { throw error }
                // Broker down, partition errors: librdkafka recovers by itself; keep polling,
                // but not in a tight loop when the error comes back at once.
                logger.warning("poll reported an error; continuing", metadata: ["error": "\(error)"])
                guard await pause(for: configuration.pollTimeout) else { break }
                continue
            }
            guard let message else { continue }
            lagTracker.received(topic: message.topic, partition: message.partition, offset: message.offset)
            guard await process(message) else {
                logger.info("stopping with a record unfinished; it will be delivered again", metadata: [
                    "partition": "\(message.partition)", "offset": "\(message.offset)"])
                break
            }
            await commit(message)
        }
    }

    /// Applies or dead-letters one record. Returns `false` only when shutdown interrupted it
    /// before either happened, so the record must not be committed.
    private func process(_ message: KafkaMessage) async -> Bool {
        guard let value = message.value, !value.isEmpty else {
            return await deadLetter(message, reason: "empty record value", attempts: 0)
        }
        let event: SchemaChangeEvent
        do {
            event = try SchemaChangeEvent.decode(value)
        } catch {
            return await deadLetter(message, reason: "undecodable event: \(error)", attempts: 0)
        }
        let consumed = ConsumedEvent(
            event: event, topic: message.topic, partition: message.partition, offset: message.offset,
            key: message.key.map { String(decoding: $0, as: UTF8.self) }, value: value)
        if let settled = await admit(event, message: message) {
            return settled
        }
        var attempts = 0
        while true {
            attempts += 1
            // Finishes even during a graceful shutdown; only the shutdown bound's cancellation
            // abandons it, uncommitted.
            let outcome: Result<Void, EventHandlerError>
            do {
                outcome = try await abandonable { [handler] () async -> Result<Void, EventHandlerError> in
                    do throws(EventHandlerError) {
                        try await handler.handle(consumed)
                        return .success(())
                    } catch {
                        return .failure(error)
                    }
                }
            } catch {
                return false
            }
            switch outcome {
            case .success:
                activity.applied(consumed)
                admission.applied(event)
                return true
            case .failure(.permanent(let reason)):
                admission.applied(event)
                return await deadLetter(message, reason: reason, attempts: attempts, eventID: event.eventID)
            case .failure(.retriable(let reason)):
                guard attempts < configuration.maxAttempts else {
                    admission.applied(event)
                    return await deadLetter(
                        message, reason: "gave up after \(attempts) attempts: \(reason)", attempts: attempts,
                        eventID: event.eventID)
                }
                let delay = configuration.retryDelay(afterFailedAttempts: attempts)
                logger.warning("handler failed; retrying", metadata: [
                    "event-id": "\(event.eventID)", "attempt": "\(attempts)", "retry-in": "\(delay)",
                    "reason": "\(reason)"])
                guard await pause(for: delay) else { return false }
            }
        }
    }

    /// Settles an event the handler must not see: `nil` when it is to be applied; otherwise
    /// whether it was dealt with (skipped, or dead-lettered after a gap that did not close), or
    /// `false` when shutdown came first.
    private func admit(_ event: SchemaChangeEvent, message: KafkaMessage) async -> Bool? {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: configuration.sequenceGapTimeout)
        var waits = 0
        while true {
            let verdict: EventAdmission.Verdict
            do {
                verdict = try await admission.verdict(on: event, handler: handler, refresh: waits > 0)
            } catch {
                // The handler's state cannot be read; the handler meets the same problem and
                // retries or dead-letters with it.
                return nil
            }
            let metadata: Logger.Metadata = [
                "event-id": "\(event.eventID)", "tenant": "\(event.tenantID ?? "-")",
                "tenant-seq": "\(event.tenantSeq.map(String.init) ?? "-")", "database": "\(event.database ?? "-")",
                "partition": "\(message.partition)", "offset": "\(message.offset)"]
            switch verdict {
            case .apply:
                return nil
            case .otherDatabase(let followed):
                logger.warning("skipping an event of a source database this consumer does not follow", metadata: metadata.merging(
                    ["following": "\(followed.sorted().joined(separator: ","))"]) { $1 })
                return true
            case .duplicate(let lastApplied):
                logger.info("skipping an event whose tenant_seq was already applied", metadata: metadata.merging(
                    ["last-applied": "\(lastApplied)"]) { $1 })
                return true
            case .gap(let expected):
                if waits == 0 {
                    admission.countGap()
                    logger.error("tenant_seq gap: an earlier event of the tenant is missing; not applying past it", metadata: metadata.merging(
                        ["expected": "\(expected)", "gives-up-in": "\(configuration.sequenceGapTimeout)"]) { $1 })
                }
                let now = clock.now
                guard now < deadline else {
                    return await deadLetter(
                        message,
                        reason: "tenant_seq gap: expected \(expected) for tenant \(event.tenantID ?? "-"), got \(event.tenantSeq ?? 0); not applied",
                        attempts: 0, eventID: event.eventID)
                }
                waits += 1
                guard await pause(for: min(configuration.retryDelay(afterFailedAttempts: waits), deadline - now)) else {
                    return false
                }
            }
        }
    }

    /// Produces the record to the dead-letter topic with why, trying until the broker has it.
    /// Returns `false` if shutdown came first.
    private func deadLetter(
        _ message: KafkaMessage, reason: String, attempts: Int, eventID: String? = nil
    ) async -> Bool {
        var headers = message.headers
        headers.append(KafkaHeader(name: "dead_letter_reason", value: reason))
        headers.append(KafkaHeader(name: "dead_letter_consumer", value: handler.name))
        headers.append(KafkaHeader(name: "dead_letter_original_topic", value: message.topic))
        headers.append(KafkaHeader(name: "dead_letter_original_partition", value: String(message.partition)))
        headers.append(KafkaHeader(name: "dead_letter_original_offset", value: String(message.offset)))
        headers.append(KafkaHeader(name: "dead_letter_attempts", value: String(attempts)))
        let record = KafkaRecord(
            topic: configuration.effectiveDeadLetterTopic, key: message.key, value: message.value ?? [],
            headers: headers)
        var failures = 0
        while true {
            do {
                let report = try await untilShutdown { [deadLetters] in try await deadLetters.send(record) }
                activity.deadLettered(
                    eventID: eventID, topic: message.topic, partition: message.partition, offset: message.offset, reason: reason)
                logger.error("record dead-lettered", metadata: [
                    "event-id": "\(eventID ?? "-")", "partition": "\(message.partition)", "offset": "\(message.offset)",
                    "reason": "\(reason)", "dead-letter": "\(report.topic)[\(report.partition)]@\(report.offset)"])
                return true
            } catch is AbandonedWait {
                return false
            } catch {
                failures += 1
                logger.warning("could not produce a dead letter; retrying", metadata: ["error": "\(error)"])
                guard await pause(for: configuration.retryDelay(afterFailedAttempts: failures)) else { return false }
            }
        }
    }

    /// Commits `message`, the last thing done for a record, even when shutdown has begun; a
    /// commit still blocked when the shutdown bound's cancellation comes is abandoned.
    private func commit(_ message: KafkaMessage) async {
        do {
            try await abandonable { [consumer] in try await consumer.commit(message) }
            lagTracker.committed(topic: message.topic, partition: message.partition, nextOffset: message.offset + 1)
        } catch {
            // The next commit on this partition covers this one; if none comes (a rebalance
            // took the partition), the record is delivered again and the handler skips it.
            logger.warning("commit failed; the record may be delivered again", metadata: [
                "partition": "\(message.partition)", "offset": "\(message.offset)", "error": "\(error)"])
        }
    }

    private func refreshLag() async {
        for (topic, partition) in lagTracker.partitions {
            do {
                let marks = try await untilShutdown { [consumer] in
                    try await consumer.watermarks(topic: topic, partition: partition, timeout: .seconds(2))
                }
                lagTracker.updateHighWatermark(topic: topic, partition: partition, high: marks.high)
            } catch is AbandonedWait {
                return
            } catch {
                logger.debug("could not refresh the high watermark", metadata: [
                    "partition": "\(partition)", "error": "\(error)"])
            }
        }
    }

    /// Sleeps for `duration` unless shutdown comes first. Returns whether to carry on.
    private func pause(for duration: Duration) async -> Bool {
        try? await cancelWhenGracefulShutdown {
            try await Task.sleep(for: duration)
        }
        return !shouldStop
    }

    /// Leaves the group and flushes the dead-letter producer, each given at most half the
    /// shutdown bound, so the runtime returns within it even when Kafka does not answer.
    private func close() async {
        let share = configuration.shutdownTimeout / 2
        do {
            try await abandonable(within: share) { [consumer] in try await consumer.close() }
        } catch {
            logger.warning("leaving the consumer group failed; partitions move after the session timeout", metadata: [
                "error": "\(error)"])
        }
        do {
            try await abandonable(within: share) { [deadLetters] in await deadLetters.shutdown(flushTimeout: share) }
        } catch {
            logger.warning("dead-letter producer not flushed in time", metadata: ["error": "\(error)"])
        }
    }
}

/// Why a ``ConsumerRuntime`` could not be built.
public enum ConsumerRuntimeError: Error, Sendable, CustomStringConvertible {
    case invalidConfiguration(String)

    public var description: String {
        switch self {
        case .invalidConfiguration(let problem): "invalid consumer configuration: \(problem)"
        }
    }
}
