import Synchronization

/// How far one consumer instance is behind, per partition it has read from: a read-only value the
/// metrics endpoint can publish as gauges (`consumer_lag{group,topic,partition}`).
public struct ConsumerLagSnapshot: Sendable, Hashable {
    public struct Partition: Sendable, Hashable {
        public let topic: String
        public let partition: Int32
        /// The offset this instance processes next: the last committed offset + 1, or the first
        /// offset it was handed when it has not committed yet.
        public let nextOffset: Int64
        /// The offset the broker gives the next record, as of the last refresh (never below
        /// ``nextOffset``). `nil` until the first refresh.
        public let highWatermark: Int64?
        /// Records waiting: `highWatermark - nextOffset`, `nil` until the first refresh.
        public var lag: Int64? {
            highWatermark.map { max($0 - nextOffset, 0) }
        }
    }

    /// The consumer group.
    public let group: String
    /// Sorted by topic, then partition. Partitions this instance has not read from yet (or has
    /// lost in a rebalance and not read since) keep their last known values.
    public let partitions: [Partition]

    /// The sum over ``partitions`` of the known lags.
    public var totalLag: Int64 {
        partitions.reduce(0) { $0 + ($1.lag ?? 0) }
    }
}

/// The mutable state behind ``ConsumerRuntime/lag``: updated by the runtime's loop, read from
/// anywhere.
final class ConsumerLagTracker: Sendable {
    private struct Key: Hashable, Comparable {
        let topic: String
        let partition: Int32
        static func < (lhs: Key, rhs: Key) -> Bool {
            (lhs.topic, lhs.partition) < (rhs.topic, rhs.partition)
        }
    }

    private struct Entry {
        var nextOffset: Int64
        var highWatermark: Int64?
    }

    private let group: String
    private let entries = Mutex<[Key: Entry]>([:])

    init(group: String) {
        self.group = group
    }

    /// The runtime was handed the record at `offset` (not processed yet).
    func received(topic: String, partition: Int32, offset: Int64) {
        entries.withLock { entries in
            let key = Key(topic: topic, partition: partition)
            if entries[key] == nil {
                entries[key] = Entry(nextOffset: offset, highWatermark: nil)
            }
        }
    }

    /// Everything before `nextOffset` is committed.
    func committed(topic: String, partition: Int32, nextOffset: Int64) {
        entries.withLock { entries in
            let key = Key(topic: topic, partition: partition)
            var entry = entries[key] ?? Entry(nextOffset: nextOffset, highWatermark: nil)
            entry.nextOffset = nextOffset
            entries[key] = entry
        }
    }

    func updateHighWatermark(topic: String, partition: Int32, high: Int64) {
        entries.withLock { entries in
            entries[Key(topic: topic, partition: partition)]?.highWatermark = high
        }
    }

    var partitions: [(topic: String, partition: Int32)] {
        entries.withLock { $0.keys.sorted().map { ($0.topic, $0.partition) } }
    }

    var snapshot: ConsumerLagSnapshot {
        let partitions = entries.withLock { entries in
            entries.keys.sorted().map { key in
                let entry = entries[key]!
                return ConsumerLagSnapshot.Partition(
                    topic: key.topic, partition: key.partition, nextOffset: entry.nextOffset,
                    highWatermark: entry.highWatermark.map { max($0, entry.nextOffset) })
            }
        }
        return ConsumerLagSnapshot(group: group, partitions: partitions)
    }
}
