public import Logging
import Synchronization

/// Produces records and reports, per record, where the broker stored it, so the caller can mark
/// an outbox row processed only after Kafka acknowledged it.
///
/// Records are enqueued on the caller's thread (librdkafka's produce call never blocks); each
/// producer has one dedicated thread serving delivery reports and one serial queue for the calls
/// that block (flush), neither on Swift's cooperative pool.
///
/// librdkafka requires an instance that reports a fatal error (an idempotent producer's sequence
/// failure, say) to be replaced, and this producer replaces its own: records the dead instance
/// had not acknowledged fail with a fatal ``KafkaError`` (whatever the dead instance reports
/// for them later is ignored, so nothing counts as delivered on its word), later records go to a
/// new instance, and ``unrecoveredFatalError`` reports the failure until the new instance has
/// acknowledged a record.
public final class KafkaProducer: Sendable {
    private struct State {
        /// `nil` only while `init` builds the first instance.
        var instance: ProducerInstance?
        var unrecoveredFatalError: KafkaError?
        var isShutDown = false
    }

    private let configuration: KafkaProducerConfiguration
    private let state = Mutex(State())
    /// Set while `unrecoveredFatalError` is, so acknowledgements check the state only then.
    private let awaitingRecovery = Atomic<Bool>(false)
    private let blockingCalls: BlockingCallQueue
    /// Metadata requests for health probes wait on their own queue: on `blockingCalls` a slow
    /// broker's metadata reply would hold up a flush behind it.
    private let probeCalls = BlockingCallQueue(label: "outbox-bridge.kafka.producer.probe")
    private let logger: Logger

    /// - Throws: ``KafkaError`` with code ``KafkaErrorCode/invalidArgument`` naming the property
    ///   when librdkafka rejects one.
    public init(
        configuration: KafkaProducerConfiguration,
        logger: Logger = Logger(label: "outbox-bridge.kafka.producer")
    ) throws(KafkaError) {
        self.configuration = configuration
        self.logger = logger
        blockingCalls = BlockingCallQueue(label: "outbox-bridge.kafka.producer.calls")
        let first = try makeInstance()
        state.withLock { $0.instance = first }
    }

    /// The librdkafka instance records go to now.
    var instance: ProducerInstance {
        state.withLock { $0.instance! }
    }

    /// The fatal error that made this producer replace its librdkafka instance, until the new
    /// instance has acknowledged a record: readiness checks report it.
    public var unrecoveredFatalError: KafkaError? {
        guard awaitingRecovery.load(ordering: .acquiring) else { return nil }
        return state.withLock { $0.unrecoveredFatalError }
    }

    private func makeInstance() throws(KafkaError) -> ProducerInstance {
        let deliveries = DeliveryTracker()
        let client = try RDKafkaClient.make(
            .producer,
            properties: configuration.librdkafkaProperties,
            logger: logger,
            onDelivery: { [weak self] delivery in
                deliveries.complete(delivery) {
                    if case .success = delivery.result { self?.noteAcknowledged() }
                }
            },
            onFatalError: { [weak self] error in self?.replaceInstance(after: error) }
        )
        return ProducerInstance(
            client: client, deliveries: deliveries,
            pollThread: PollThread.start(name: "kafka-poll", polling: client))
    }

    private func noteAcknowledged() {
        guard awaitingRecovery.load(ordering: .relaxed) else { return }
        state.withLock { $0.unrecoveredFatalError = nil }
        awaitingRecovery.store(false, ordering: .releasing)
        logger.notice("the new Kafka producer instance delivers again")
    }

    /// Runs on the dead instance's poll thread, inside its error callback. The new instance is
    /// in place before the dead one's records are failed, so the caller's next attempt at them
    /// goes to the new one.
    private func replaceInstance(after error: KafkaError) {
        let dead: ProducerInstance? = state.withLock { state in
            guard !state.isShutDown else { return nil }
            state.unrecoveredFatalError = error
            return state.instance
        }
        guard let dead else { return }
        awaitingRecovery.store(true, ordering: .releasing)
        logger.critical("the Kafka producer failed fatally; replacing its librdkafka instance", metadata: [
            "error": "\(error)"])
        do {
            let replacement = try makeInstance()
            state.withLock { $0.instance = replacement }
        } catch {
            logger.critical("could not build a new Kafka producer instance; records fail until restart", metadata: [
                "error": "\(error)"])
        }
        dead.retire(failingOutstandingWith: KafkaError(
            code: .fatal, message: "not acknowledged before the producer instance failed (\(error)); send it again",
            isRetriable: true, isFatal: true))
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

    /// Hands every record to librdkafka and returns at once, before any acknowledgement;
    /// `onDelivery` then hears each record's index and outcome as it arrives, on the producer's
    /// delivery thread. This lets a caller keep producing while earlier records are
    /// acknowledged, and act on each record without waiting for the slowest.
    ///
    /// Nothing here waits, so a caller that must never block (the relay's engine, running on
    /// whichever thread brought it a reply) can produce inline. A record librdkafka has no room
    /// for (`queue.buffering.max.messages` or `.kbytes`) fails at once with
    /// ``KafkaErrorCode/queueFull``, reported on the calling thread.
    public func produce(
        _ records: some Collection<KafkaRecord>,
        onDelivery: @escaping @Sendable (Int, Result<KafkaDeliveryReport, KafkaError>) -> Void
    ) {
        let batch = DeliveryBatch(count: records.count, observer: onDelivery)
        let instance = instance
        for (index, record) in records.enumerated() {
            guard let token = instance.deliveries.register(batch, index: index) else {
                batch.resolve(index, .failure(Self.shutDownError))
                continue
            }
            if !produceUnlessFull(record, token: token, on: instance) {
                instance.deliveries.complete(RDKafkaDelivery(token: token, result: .failure(KafkaError(
                    code: .queueFull, message: "librdkafka's queue is full; the record was not sent", isRetriable: true))))
            }
        }
    }

    /// Returns once librdkafka has taken every record (or refused it), before any acknowledgement.
    ///
    /// Produces on the caller's thread: `rd_kafka_produceva` never blocks (it copies the record
    /// into librdkafka's queue or refuses it), so a hop to another thread would only add two
    /// wake-ups per batch. When the queue is full this waits, without blocking a thread, for the
    /// next delivery report to make room.
    func enqueue(_ records: [KafkaRecord]) async -> DeliveryBatch {
        let batch = DeliveryBatch(count: records.count)
        let instance = instance
        let deliveries = instance.deliveries
        for (index, record) in records.enumerated() {
            guard let token = deliveries.register(batch, index: index) else {
                batch.resolve(index, .failure(Self.shutDownError))
                continue
            }
            while true {
                let served = deliveries.reportsServed
                if produceUnlessFull(record, token: token, on: instance) { break }
                await deliveries.nextReport(after: served)
                // Shut down or retired meanwhile: the record already has its outcome.
                guard deliveries.isPending(token) else { break }
            }
        }
        return batch
    }

    /// Hands `record` to librdkafka; a refusal other than a full queue is the record's outcome.
    /// Returns `false` when the queue was full, leaving the record pending for another try.
    private func produceUnlessFull(_ record: KafkaRecord, token: UInt64, on instance: ProducerInstance) -> Bool {
        guard let error = instance.client.produce(record, token: token) else { return true }
        guard error.code == .queueFull else {
            instance.deliveries.complete(RDKafkaDelivery(token: token, result: .failure(error)))
            return true
        }
        return false
    }

    /// Waits until every enqueued record has been acknowledged or has failed.
    /// - Throws: ``KafkaErrorCode/timedOut`` if records are still outstanding after `timeout`.
    public func flush(timeout: Duration) async throws(KafkaError) {
        try await blockingCalls.run { [self] () throws(KafkaError) in
            try instance.client.flush(timeoutMilliseconds: timeout.rdKafkaMilliseconds)
        }
    }

    /// Asks the cluster for metadata, so a caller can report "brokers unreachable" quickly
    /// instead of waiting for the first delivery to time out.
    /// - Returns: the number of brokers the cluster advertises.
    @discardableResult
    public func checkConnectivity(timeout: Duration) async throws(KafkaError) -> Int {
        try await probeCalls.run { [self] () throws(KafkaError) in
            try instance.client.fetchBrokerCount(timeoutMilliseconds: timeout.rdKafkaMilliseconds)
        }
    }

    /// Looks up `topics` now instead of at their first record, which would otherwise wait up to
    /// a second for librdkafka's topic scan; brokers that create topics on first use create
    /// them now.
    /// - Returns: the topics the cluster reported an error for, such as an unknown topic.
    public func lookUpTopics(_ topics: [String], timeout: Duration) async throws(KafkaError) -> [String: KafkaError] {
        try await probeCalls.run { [self] () throws(KafkaError) in
            try instance.client.lookUpTopics(topics, timeoutMilliseconds: timeout.rdKafkaMilliseconds)
        }
    }

    /// Stops accepting records, waits up to `flushTimeout` for outstanding ones, then fails the
    /// rest so no caller waits forever. Records that fail this way may still have landed.
    public func shutdown(flushTimeout: Duration = .seconds(10)) async {
        let instance = state.withLock { state in
            state.isShutDown = true
            return state.instance!
        }
        instance.deliveries.close()
        do {
            try await flush(timeout: flushTimeout)
        } catch {
            logger.warning("shutting down with unacknowledged records", metadata: ["error": "\(error)"])
        }
        await blockingCalls.run {
            instance.client.purgeOutstanding()
            instance.client.poll(timeoutMilliseconds: 0)
        }
        await instance.pollThread.stop()
        instance.deliveries.failAll(with: Self.shutDownError)
    }

    private static var shutDownError: KafkaError {
        KafkaError(code: .destroyed, message: "the producer was shut down", isRetriable: true)
    }
}

/// One librdkafka producer instance with its delivery bookkeeping and its poll thread.
final class ProducerInstance: Sendable {
    let client: RDKafkaClient
    let deliveries: DeliveryTracker
    let pollThread: PollThread

    init(client: RDKafkaClient, deliveries: DeliveryTracker, pollThread: PollThread) {
        self.client = client
        self.deliveries = deliveries
        self.pollThread = pollThread
    }

    deinit {
        // Nothing can be awaiting a send here (each send keeps the instance alive), so only the
        // thread needs telling; it lets go of the client, whose deinit destroys the handle.
        pollThread.requestStop()
    }

    /// Gives up on an instance that failed fatally: its outstanding records fail with `error`
    /// now, and reports it serves later find nothing to resolve. Called from its own poll
    /// thread, so the purge must not wait for that thread.
    func retire(failingOutstandingWith error: KafkaError) {
        deliveries.close()
        deliveries.failAll(with: error)
        client.purgeOutstanding(waiting: false)
        pollThread.requestStop()
    }
}
