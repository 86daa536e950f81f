public import Logging

/// Reads single records by position, outside any consumer group, so an audit can check that an
/// acknowledged event really is where its delivery report said.
public final class KafkaRecordReader: Sendable {
    private let handle: ConsumerHandle

    /// Defaults, overridable through `properties`:
    /// - `enable.auto.commit=false`, `enable.auto.offset.store=false`: reading never moves any
    ///   group's position.
    /// - `auto.offset.reset=error`: a position that vanished while reading is reported, not
    ///   silently replaced by another record.
    /// - `group.id=outbox-bridge.record-reader`: librdkafka 2.0 refuses `assign` without a group
    ///   id (`_UNKNOWN_GROUP`); the reader never joins or commits to this group.
    public static let defaultProperties: [String: String] = [
        "group.id": "outbox-bridge.record-reader",
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "error",
    ]

    public init(
        bootstrapServers: String,
        properties: [String: String] = [:],
        logger: Logger = Logger(label: "outbox-bridge.kafka.reader")
    ) throws(KafkaError) {
        handle = try ConsumerHandle(
            properties: Self.defaultProperties
                .merging(["bootstrap.servers": bootstrapServers]) { _, new in new }
                .merging(properties) { _, user in user },
            logger: logger,
            label: "outbox-bridge.kafka.reader.calls"
        )
    }

    /// Reads the record stored at exactly `offset`.
    /// - Returns: the record, or `nil` when no record has that offset: not yet written (at or
    ///   beyond the high watermark) or removed by compaction.
    /// - Throws: ``KafkaErrorCode/offsetOutOfRange`` when retention already deleted the offset
    ///   (below the low watermark); ``KafkaErrorCode/timedOut`` when the broker did not deliver
    ///   the record within `timeout`.
    public func read(topic: String, partition: Int32, offset: Int64, timeout: Duration = .seconds(10)) async throws(KafkaError) -> KafkaMessage? {
        try await handle.run { client throws(KafkaError) in
            let deadline = ContinuousClock.now + timeout
            let marks = try client.queryWatermarks(topic: topic, partition: partition, timeoutMilliseconds: timeout.rdKafkaMilliseconds)
            guard offset >= marks.low else {
                throw KafkaError(
                    code: .offsetOutOfRange,
                    message: "\(topic)[\(partition)]@\(offset) was deleted; the partition now starts at \(marks.low)",
                    isRetriable: false
                )
            }
            guard offset < marks.high else { return nil }
            try client.assign(topic: topic, partition: partition, offset: offset)
            defer { client.unassign() }
            while case let remaining = deadline - ContinuousClock.now, remaining > .zero {
                guard let message = try client.consumerPoll(timeoutMilliseconds: remaining.rdKafkaMilliseconds),
                      message.topic == topic, message.partition == partition
                else { continue }
                return message.offset == offset ? message : nil
            }
            throw KafkaError(code: .timedOut, message: "\(topic)[\(partition)]@\(offset) was not delivered within \(timeout)")
        }
    }

    public func watermarks(topic: String, partition: Int32, timeout: Duration = .seconds(10)) async throws(KafkaError) -> KafkaWatermarks {
        try await handle.watermarks(topic: topic, partition: partition, timeout: timeout)
    }

    /// Releases the connection now rather than when the reader is deallocated.
    public func close() async throws(KafkaError) {
        try await handle.close()
    }
}
