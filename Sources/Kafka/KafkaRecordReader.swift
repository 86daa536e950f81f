public import Logging

/// What a positioned read found at one offset of a partition.
public enum KafkaRecordLookup: Sendable, Hashable {
    /// The record stored at exactly that offset.
    case record(KafkaMessage)
    /// The offset is below the partition's first stored offset (its low watermark, given here):
    /// retention deleted it, or it was never a valid offset (librdkafka's logical offsets are
    /// negative).
    case deleted(partitionStart: Int64)
    /// The offset is at or beyond the partition's end (its high watermark, given here): nothing
    /// was ever written there, or the partition was truncated or recreated since.
    case notWritten(partitionEnd: Int64)
    /// The offset lies inside the partition but holds no record a consumer can see: compaction
    /// removed it, or it is a transaction's commit or abort marker.
    case absent
}

/// Reads records by position, outside any consumer group, so an audit can check that an
/// acknowledged event really is where its delivery report said.
///
/// Reads are sequential: ``read(topic:partition:offsets:idleTimeout:)`` assigns a partition once
/// at the lowest wanted offset and consumes forward past the highest, so many records cost about
/// one fetch per batch of records rather than a watermark query, an assignment and a fetch each.
public final class KafkaRecordReader: Sendable {
    private let handle: ConsumerHandle

    /// Defaults, overridable through `properties`:
    /// - `enable.auto.commit=false`, `enable.auto.offset.store=false`: reading never moves any
    ///   group's position.
    /// - `auto.offset.reset=error`: a position that vanished while reading is reported, not
    ///   silently replaced by another record.
    /// - `group.id=outbox-bridge.record-reader`: librdkafka 2.0 refuses `assign` without a group
    ///   id (`_UNKNOWN_GROUP`); the reader never joins or commits to this group.
    /// - `enable.partition.eof=true` (librdkafka: false): reaching the partition's end is
    ///   reported, so a wanted offset near the end that holds no record (compacted, a
    ///   transaction marker) is known to be absent at once instead of after a timeout.
    /// - `queued.min.messages=10000` (librdkafka: 100000): how far librdkafka prefetches ahead
    ///   of the reader. A pass wants at most an audit page of records, so prefetching further
    ///   only fetches records that are dropped when the pass unassigns the partition.
    /// - `queued.max.messages.kbytes=32768` (librdkafka: 65536): bounds that prefetch in memory.
    /// - `max.partition.fetch.bytes=4194304` (librdkafka: 1048576): a pass reads one partition,
    ///   so one fetch may carry more of it: fewer round trips per pass.
    /// - `fetch.max.bytes=16777216` (librdkafka: 52428800): one partition's fetch never needs
    ///   more than `max.partition.fetch.bytes`; a smaller cap keeps a response's buffer small.
    /// - `fetch.wait.max.ms=100` (librdkafka: 500): a fetch at the partition's end waits this
    ///   long on the broker for new records before the end is reported; the reader never needs
    ///   records written after it started.
    public static let defaultProperties: [String: String] = [
        "group.id": "outbox-bridge.record-reader",
        "enable.auto.commit": "false",
        "enable.auto.offset.store": "false",
        "auto.offset.reset": "error",
        "enable.partition.eof": "true",
        "queued.min.messages": "10000",
        "queued.max.messages.kbytes": "32768",
        "max.partition.fetch.bytes": "4194304",
        "fetch.max.bytes": "16777216",
        "fetch.wait.max.ms": "100",
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
        switch try await read(topic: topic, partition: partition, offsets: [offset], idleTimeout: timeout)[offset] {
        case .record(let message)?:
            return message
        case .deleted(let partitionStart)?:
            throw KafkaError(
                code: .offsetOutOfRange,
                message: "\(topic)[\(partition)]@\(offset) was deleted; the partition now starts at \(partitionStart)",
                isRetriable: false
            )
        case .notWritten?, .absent?, nil:
            return nil
        }
    }

    /// Reads what one partition holds at each of `offsets`, in a single forward pass from the
    /// lowest offset still stored to the highest wanted one.
    ///
    /// Memory holds only the wanted records, never the records passed over between them.
    /// - Parameter idleTimeout: the longest wait for the broker's next record; a long range is
    ///   fine as long as records keep arriving.
    /// - Returns: one lookup for every distinct offset in `offsets`.
    /// - Throws: ``KafkaErrorCode/timedOut`` when the broker delivered nothing for
    ///   `idleTimeout`; ``KafkaErrorCode/unknownTopicOrPartition`` (from the watermark query)
    ///   when the partition does not exist; a consume error, with librdkafka's code, otherwise.
    public func read(
        topic: String, partition: Int32, offsets: some Sequence<Int64>, idleTimeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> [Int64: KafkaRecordLookup] {
        let wanted = Set(offsets).sorted()
        guard !wanted.isEmpty else { return [:] }
        return try await handle.run { client throws(KafkaError) in
            var pass = PartitionPass(topic: topic, partition: partition, wanted: wanted)
            try pass.read(with: client, idleTimeout: idleTimeout)
            return pass.lookups
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

/// One forward read of a partition; its blocking calls run on the reader's queue.
private struct PartitionPass {
    let topic: String
    let partition: Int32
    /// Ascending and distinct.
    let wanted: [Int64]
    private(set) var lookups: [Int64: KafkaRecordLookup] = [:]

    init(topic: String, partition: Int32, wanted: [Int64]) {
        self.topic = topic
        self.partition = partition
        self.wanted = wanted
    }

    /// Decides offsets outside the partition from its watermarks, then consumes the rest in
    /// order: each record either is the next wanted offset, or proves that the wanted offsets
    /// below it hold nothing.
    mutating func read(with client: RDKafkaClient, idleTimeout: Duration) throws(KafkaError) {
        let marks = try client.queryWatermarks(
            topic: topic, partition: partition, timeoutMilliseconds: idleTimeout.rdKafkaMilliseconds)
        var stored: ArraySlice<Int64> = []
        for offset in wanted {
            if offset < marks.low {
                lookups[offset] = .deleted(partitionStart: marks.low)
            } else if offset >= marks.high {
                lookups[offset] = .notWritten(partitionEnd: marks.high)
            } else {
                stored.append(offset)
            }
        }
        guard let first = stored.first else { return }
        try client.assign(topic: topic, partition: partition, offset: first)
        defer { client.unassign() }
        var lastProgress = ContinuousClock.now
        while let next = stored.first {
            let remaining = idleTimeout - (ContinuousClock.now - lastProgress)
            guard remaining > .zero else {
                throw KafkaError(
                    code: .timedOut,
                    message: "\(topic)[\(partition)]: nothing delivered within \(idleTimeout) while waiting for offset \(next)"
                )
            }
            switch try client.consumerPollEvent(timeoutMilliseconds: remaining.rdKafkaMilliseconds) {
            case .message(let message)? where message.topic == topic && message.partition == partition:
                lastProgress = .now
                while let skipped = stored.first, skipped < message.offset {
                    lookups[skipped] = .absent
                    stored.removeFirst()
                }
                if stored.first == message.offset {
                    lookups[message.offset] = .record(message)
                    stored.removeFirst()
                }
            case .partitionEnd(topic, partition, let end)?:
                for offset in stored {
                    lookups[offset] = offset < end ? .absent : .notWritten(partitionEnd: end)
                }
                stored = []
            case .message?, .partitionEnd?, nil:
                // Nothing yet, or an event left over from an earlier assignment.
                continue
            }
        }
    }
}
