public import Logging

/// Produces records and reports, per record, where the broker stored it, so the caller can mark
/// an outbox row processed only after Kafka acknowledged it.
///
/// Each producer has one dedicated thread serving delivery reports and one serial queue that
/// enqueues records and runs blocking calls; neither uses Swift's cooperative pool.
public final class KafkaProducer: Sendable {
    private let client: RDKafkaClient
    private let deliveries: DeliveryTracker
    private let blockingCalls: BlockingCallQueue
    /// Metadata requests for health probes wait on their own queue: on `blockingCalls` a slow
    /// broker's metadata reply would hold up every record produced behind it.
    private let probeCalls = BlockingCallQueue(label: "outbox-bridge.kafka.producer.probe")
    private let pollThread: PollThread
    private let logger: Logger

    /// - Throws: ``KafkaError`` with code ``KafkaErrorCode/invalidArgument`` naming the property
    ///   when librdkafka rejects one.
    public init(
        configuration: KafkaProducerConfiguration,
        logger: Logger = Logger(label: "outbox-bridge.kafka.producer")
    ) throws(KafkaError) {
        let deliveries = DeliveryTracker()
        client = try RDKafkaClient.make(
            .producer,
            properties: configuration.librdkafkaProperties,
            logger: logger,
            onDelivery: { deliveries.complete($0) }
        )
        self.deliveries = deliveries
        self.logger = logger
        blockingCalls = BlockingCallQueue(label: "outbox-bridge.kafka.producer.calls")
        pollThread = PollThread.start(name: "kafka-producer-poll", polling: client)
    }

    deinit {
        // Nothing can be awaiting a send here (each send keeps the producer alive), so only the
        // thread needs telling; it lets go of the client, whose deinit destroys the handle.
        pollThread.requestStop()
    }

    /// Sends one record and waits for the broker's acknowledgement.
    ///
    /// Cancelling the task does not withdraw the record: once enqueued it may still land, and
    /// the caller needs to hear where.
    public func send(_ record: KafkaRecord) async throws(KafkaError) -> KafkaDeliveryReport {
        try await send([record])[0].get()
    }

    /// Enqueues every record at once and waits for all acknowledgements, so a batch costs about
    /// one round trip rather than one per record.
    ///
    /// When librdkafka's queue is full (`queue.buffering.max.messages`), enqueueing waits for
    /// acknowledgements to make room instead of failing, so a batch may be larger than the queue.
    /// A record not acknowledged within librdkafka's `message.timeout.ms` (300 000 ms unless set
    /// in the configuration's properties) fails with a retriable ``KafkaErrorCode/messageTimedOut``.
    /// - Returns: one outcome per record, in input order.
    public func send(_ records: [KafkaRecord]) async -> [Result<KafkaDeliveryReport, KafkaError>] {
        await enqueue(records).outcomes()
    }

    /// Enqueues every record and returns as soon as librdkafka holds them, before any
    /// acknowledgement; `onDelivery` then hears each record's index and outcome as it arrives,
    /// on the producer's delivery thread. This lets a caller keep producing while earlier
    /// records are acknowledged, and act on each record without waiting for the slowest.
    public func send(
        _ records: [KafkaRecord],
        onDelivery: @escaping @Sendable (Int, Result<KafkaDeliveryReport, KafkaError>) -> Void
    ) async {
        _ = await enqueue(records, observer: onDelivery)
    }

    /// Returns once librdkafka has taken every record (or refused it), before any acknowledgement.
    func enqueue(
        _ records: [KafkaRecord], observer: (@Sendable (Int, DeliveryBatch.Outcome) -> Void)? = nil
    ) async -> DeliveryBatch {
        let batch = DeliveryBatch(count: records.count, observer: observer)
        await blockingCalls.run { [client, deliveries] in
            Self.enqueue(records, of: batch, on: client, tracking: deliveries)
        }
        return batch
    }

    private static func enqueue(
        _ records: [KafkaRecord], of batch: DeliveryBatch, on client: RDKafkaClient, tracking deliveries: DeliveryTracker
    ) {
        for (index, record) in records.enumerated() {
            guard let token = deliveries.register(batch, index: index) else {
                batch.resolve(index, .failure(shutDownError))
                continue
            }
            while let error = client.produce(record, token: token) {
                guard error.code == .queueFull else {
                    deliveries.complete(RDKafkaDelivery(token: token, result: .failure(error)))
                    break
                }
                // Serving reports here frees queue space as soon as the broker acknowledges.
                client.poll(timeoutMilliseconds: 100)
            }
        }
    }

    /// Waits until every enqueued record has been acknowledged or has failed.
    /// - Throws: ``KafkaErrorCode/timedOut`` if records are still outstanding after `timeout`.
    public func flush(timeout: Duration) async throws(KafkaError) {
        try await blockingCalls.run { [client] () throws(KafkaError) in
            try client.flush(timeoutMilliseconds: timeout.rdKafkaMilliseconds)
        }
    }

    /// Asks the cluster for metadata, so a caller can report "brokers unreachable" quickly
    /// instead of waiting for the first delivery to time out.
    /// - Returns: the number of brokers the cluster advertises.
    @discardableResult
    public func checkConnectivity(timeout: Duration) async throws(KafkaError) -> Int {
        try await probeCalls.run { [client] () throws(KafkaError) in
            try client.fetchBrokerCount(timeoutMilliseconds: timeout.rdKafkaMilliseconds)
        }
    }

    /// Stops accepting records, waits up to `flushTimeout` for outstanding ones, then fails the
    /// rest so no caller waits forever. Records that fail this way may still have landed.
    public func shutdown(flushTimeout: Duration = .seconds(10)) async {
        deliveries.close()
        do {
            try await flush(timeout: flushTimeout)
        } catch {
            logger.warning("shutting down with unacknowledged records", metadata: ["error": "\(error)"])
        }
        await blockingCalls.run { [client] in
            client.purgeOutstanding()
            client.poll(timeoutMilliseconds: 0)
        }
        await pollThread.stop()
        deliveries.failAll(with: Self.shutDownError)
    }

    private static var shutDownError: KafkaError {
        KafkaError(code: .destroyed, message: "the producer was shut down", isRetriable: true)
    }
}
