import Foundation
import Kafka
import Logging
import Synchronization

/// An independent consumer in the benchmark's process that notes when each record first became
/// readable in Kafka, by the `event_id` in its value, on ``wallClockSeconds()``. The value, not
/// the `event_id` header: the Python peers publish the stored event JSON without headers.
///
/// This is the one latency definition fair to all three relays: the article relay marks a row
/// before publishing it, so "commit → marked" is not commit-to-ack for it, while "commit → the
/// record is readable" means the same for every relay. It slightly overstates the ack, by the
/// broker handing the record to a fetch; ``measureFloor(samples:)`` measures that floor with
/// librdkafka alone.
///
/// The consumer is its own group (so it starts at the end of the topic) and fetches with
/// `fetch.wait.max.ms=1`: librdkafka's default of 500 ms lets an idle fetch wait at the broker
/// that long for data, which would put up to half a second under every measurement.
final class KafkaArrivals: Sendable {
    /// The one field of an event's JSON that identifies it.
    private struct IdentifiedEvent: Decodable {
        let eventID: String
        enum CodingKeys: String, CodingKey { case eventID = "event_id" }
    }

    private struct Seen {
        var firstArrival: [String: Double] = [:]
        var records = 0
    }

    private let consumer: KafkaConsumer
    private let producer: KafkaProducer
    private let topic: String
    private let seen = Mutex(Seen())
    private let stopping = Atomic(false)
    private let pollLoopDone = Mutex<Task<Void, Never>?>(nil)

    /// Subscribes, starts polling, and returns once a probe record produced after the
    /// subscription has been read back (so the group has its partitions).
    static func start(bootstrapServers: String, topic: String) async throws -> KafkaArrivals {
        let quiet = Logger(label: "bench.arrivals", factory: { _ in SwiftLogNoOpLogHandler() })
        let consumer = try KafkaConsumer(
            configuration: KafkaConsumerConfiguration(
                bootstrapServers: bootstrapServers, groupID: "bench.arrivals.\(UInt32.random(in: 0...UInt32.max))",
                properties: ["auto.offset.reset": "latest", "fetch.wait.max.ms": "1"]),
            logger: quiet)
        // linger.ms=0 like the bridge: the probes measure the broker and consumer, not batching.
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: bootstrapServers, properties: ["linger.ms": "0"]),
            logger: quiet)
        let arrivals = KafkaArrivals(consumer: consumer, producer: producer, topic: topic)
        try await consumer.subscribe(topics: [topic])
        arrivals.pollLoopDone.withLock { $0 = Task.detached { await arrivals.pollUntilStopped() } }
        let deadline = ContinuousClock.now + .seconds(60)
        var probe = 0
        while arrivals.recordCount == 0 {
            guard ContinuousClock.now < deadline else {
                throw BenchmarkFailure("the arrival consumer read no probe record within 60 s")
            }
            _ = try await arrivals.sendProbe("ready-\(probe)")
            probe += 1
            _ = await arrivals.waitForRecords(atLeast: 1, timeout: .milliseconds(500))
        }
        return arrivals
    }

    private init(consumer: KafkaConsumer, producer: KafkaProducer, topic: String) {
        self.consumer = consumer
        self.producer = producer
        self.topic = topic
    }

    private func pollUntilStopped() async {
        while !stopping.load(ordering: .relaxed) {
            // A poll error (a transient broker error) is no arrival; the loop keeps reading.
            guard let message = try? await consumer.poll(timeout: .milliseconds(100)) else { continue }
            let arrivedAt = wallClockSeconds()
            let eventID = message.value.flatMap { try? JSONDecoder().decode(IdentifiedEvent.self, from: Data($0)).eventID }
            seen.withLock { seen in
                seen.records += 1
                if let eventID, seen.firstArrival[eventID] == nil { seen.firstArrival[eventID] = arrivedAt }
            }
        }
    }

    /// Records read so far, duplicates and probes included.
    var recordCount: Int { seen.withLock { $0.records } }

    /// When the record with this event id was first read, on ``wallClockSeconds()``.
    func firstArrival(of eventID: String) -> Double? {
        seen.withLock { $0.firstArrival[eventID] }
    }

    /// Waits until at least `count` records have been read in all; false on timeout. It checks
    /// every millisecond, which bounds only how soon the caller goes on, not the measurement:
    /// arrival times are taken by the poll loop.
    func waitForRecords(atLeast count: Int, timeout: Duration) async -> Bool {
        let deadline = ContinuousClock.now + timeout
        while recordCount < count {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(1))
        }
        return true
    }

    private func sendProbe(_ eventID: String) async throws -> Double {
        let sentAt = wallClockSeconds()
        _ = try await producer.send(KafkaRecord(topic: topic, key: "bench-probe", value: #"{"event_id": "\#(eventID)"}"#))
        return sentAt
    }

    /// The practical limit of the latency measurement: librdkafka alone (same producer settings
    /// as the bridge, no PostgreSQL) producing one record at a time, from the call to produce to
    /// the record being read by this consumer.
    /// Each record follows a pause of `idlePause`, as the idle DDL samples do, so the consumer
    /// is in the same state (fetching an empty partition) when the record comes.
    func measureFloor(samples: Int, idlePause: Duration) async throws -> LatencyDistribution {
        var committed: [Double] = []
        var arrived: [Double?] = []
        for sample in 0..<samples {
            let eventID = "floor-\(sample)"
            let before = recordCount
            committed.append(try await sendProbe(eventID))
            _ = await waitForRecords(atLeast: before + 1, timeout: .seconds(10))
            arrived.append(firstArrival(of: eventID))
            try await Task.sleep(for: idlePause)
        }
        return LatencyDistribution(committed: committed, arrived: arrived, observedUntil: wallClockSeconds())
    }

    func stop() async {
        stopping.store(true, ordering: .relaxed)
        await pollLoopDone.withLock { $0 }?.value
        await producer.shutdown()
        try? await consumer.close()
    }
}
