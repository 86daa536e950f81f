public import Logging

/// A consumer-group member that commits only what the application says it has processed.
///
/// Polling, committing and closing block inside librdkafka, so they run on this consumer's own
/// serial queue rather than on Swift's cooperative pool.
public final class KafkaConsumer: Sendable {
    private let handle: ConsumerHandle

    /// - Throws: ``KafkaError`` naming the property when librdkafka rejects one.
    public init(
        configuration: KafkaConsumerConfiguration,
        logger: Logger = Logger(label: "outbox-bridge.kafka.consumer")
    ) throws(KafkaError) {
        handle = try ConsumerHandle(
            properties: configuration.librdkafkaProperties,
            logger: logger,
            label: "outbox-bridge.kafka.consumer.calls"
        )
    }

    /// Joins the group for these topics; partitions are assigned during the following polls.
    public func subscribe(topics: [String]) async throws(KafkaError) {
        try await handle.run { client throws(KafkaError) in
            try client.subscribe(topics: topics)
        }
    }

    /// Waits up to `timeout` for the next message; also serves rebalances, logs and errors.
    /// - Returns: `nil` if no message arrived in time.
    public func poll(timeout: Duration) async throws(KafkaError) -> KafkaMessage? {
        try await handle.run { client throws(KafkaError) in
            try client.consumerPoll(timeoutMilliseconds: timeout.rdKafkaMilliseconds)
        }
    }

    /// Records in the group that `message` and everything before it in its partition are
    /// processed, so a consumer that takes over resumes after it. Waits for the broker's answer.
    public func commit(_ message: KafkaMessage) async throws(KafkaError) {
        try await handle.run { client throws(KafkaError) in
            try client.commit(topic: message.topic, partition: message.partition, nextOffset: message.offset + 1)
        }
    }

    public func watermarks(topic: String, partition: Int32, timeout: Duration = .seconds(10)) async throws(KafkaError) -> KafkaWatermarks {
        try await handle.watermarks(topic: topic, partition: partition, timeout: timeout)
    }

    /// Leaves the group so its partitions move to other members at once instead of after the
    /// session timeout. Called from `deinit` too, but awaiting it here tells you when it is done.
    public func close() async throws(KafkaError) {
        try await handle.close()
    }
}
