import Logging
import Synchronization

/// A consumer `rd_kafka_t` with the serial queue its blocking calls run on, shared by
/// ``KafkaConsumer`` and ``KafkaRecordReader``. Closing leaves the consumer group (if any) and is
/// idempotent; later calls fail with ``KafkaErrorCode/destroyed``.
final class ConsumerHandle: Sendable {
    private let client: RDKafkaClient
    private let blockingCalls: BlockingCallQueue
    private let isClosed = Mutex(false)

    init(properties: [String: String], logger: Logger, label: String) throws(KafkaError) {
        client = try RDKafkaClient.make(.consumer, properties: properties, logger: logger)
        client.redirectMainQueueToConsumer()
        blockingCalls = BlockingCallQueue(label: label)
    }

    deinit {
        // `rd_kafka_consumer_close` blocks while leaving the group, so it and the final release
        // (which destroys the handle) happen on the queue, not on whichever thread dropped us.
        guard !isClosed.withLock({ $0 }) else { return }
        blockingCalls.detach { [client] in
            try? client.closeConsumer()
        }
    }

    func run<Value: Sendable>(
        _ body: @escaping @Sendable (RDKafkaClient) throws(KafkaError) -> Value
    ) async throws(KafkaError) -> Value {
        try await blockingCalls.run { [self] () throws(KafkaError) -> Value in
            guard !isClosed.withLock({ $0 }) else {
                throw KafkaError(code: .destroyed, message: "the consumer was closed", isRetriable: false)
            }
            return try body(client)
        }
    }

    func close() async throws(KafkaError) {
        try await blockingCalls.run { [self] () throws(KafkaError) in
            let wasClosed = isClosed.withLock { isClosed in
                defer { isClosed = true }
                return isClosed
            }
            guard !wasClosed else { return }
            try client.closeConsumer()
        }
    }

    func watermarks(topic: String, partition: Int32, timeout: Duration) async throws(KafkaError) -> KafkaWatermarks {
        try await run { client throws(KafkaError) in
            try client.queryWatermarks(topic: topic, partition: partition, timeoutMilliseconds: timeout.rdKafkaMilliseconds)
        }
    }
}
