import Foundation
@testable import Kafka
import Synchronization
import Testing
import TestSupport

extension KafkaIntegrationTests {
    @Suite
    struct ProducerTests {
        let logger = makeKafkaTestLogger("kafka-tests.producer")

        func makeProducer(_ broker: KafkaDevelopmentBroker, _ properties: [String: String] = [:]) throws -> KafkaProducer {
            try KafkaProducer(
                configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers, properties: properties),
                logger: logger
            )
        }

        @Test
        func hundredThousandKeyedRecordsLandWhereReportedOnJavasPartitions() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 3, logger: logger)
            try broker.createTopic("schema-changes", partitions: 6, replicationFactor: 3)
            let producer = try makeProducer(broker)
            let records = (0..<100_000).map { index in
                KafkaRecord(
                    topic: "schema-changes",
                    key: "tenant-\(index % 1000)",
                    value: "event-\(index)",
                    headers: [KafkaHeader(name: "event-id", value: "\(index)")]
                )
            }

            let started = ContinuousClock.now
            let outcomes = await producer.send(records)
            let elapsed = ContinuousClock.now - started
            await producer.shutdown()
            // Speed is the benchmark's business (scripts/bench-relay.sh); here it is only reported.
            print("100,000 keyed records acknowledged in \(elapsed)")
            let reports = try outcomes.map { try $0.get() }

            let keys = Set(records.map { String(decoding: $0.key!, as: UTF8.self) })
            let javaPartitions = try await IndependentKafkaClient.javaPartitions(forKeys: keys, partitionCount: 6)
            let landed = try await IndependentKafkaClient(bootstrapServers: broker.bootstrapServers)
                .consume(topic: "schema-changes")
            #expect(landed.count == records.count)
            let landedByPosition = Dictionary(landed.map { (Position($0.partition, $0.offset), $0) }) { first, _ in first }

            var mismatches: [String] = []
            for (record, report) in zip(records, reports) {
                let key = String(decoding: record.key!, as: UTF8.self)
                let value = String(decoding: record.value, as: UTF8.self)
                let found = landedByPosition[Position(report.partition, report.offset)]
                if report.partition != javaPartitions[key] {
                    mismatches.append("\(key) on partition \(report.partition), Java picks \(javaPartitions[key].map(String.init) ?? "?")")
                }
                if found?.key != key || found?.payload != value || found?.headers != ["event-id", String(value.dropFirst(6))] {
                    mismatches.append("\(value) reported at \(report.partition)/\(report.offset) but found \(String(describing: found))")
                }
                if mismatches.count > 10 { break }
            }
            #expect(mismatches.isEmpty)
        }

        @Test
        func recordsBeyondTheQueueCapacityWaitForRoomInsteadOfFailing() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            let producer = try makeProducer(broker, ["queue.buffering.max.messages": "100"])
            let records = (0..<3000).map { KafkaRecord(topic: "small-queue", key: "k\($0 % 7)", value: "v\($0)") }
            let outcomes = await producer.send(records)
            await producer.shutdown()
            #expect(outcomes.allSatisfy { (try? $0.get()) != nil })
        }

        @Test(arguments: [KafkaErrorCode.messageSizeTooLarge, .topicAuthorizationFailed])
        func nonRetriableProduceErrorFailsThatRecordsDelivery(_ injected: KafkaErrorCode) async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("rejected", partitions: 1)
            let producer = try makeProducer(broker)
            broker.pushRequestErrors(apiKey: .produce, errors: [injected])

            let outcome = await producer.send([KafkaRecord(topic: "rejected", key: "tenant-1", value: "v")])[0]
            await producer.shutdown()

            guard case .failure(let error) = outcome else {
                Issue.record("an injected \(injected) was reported as success: \(outcome)")
                return
            }
            #expect(error.code == injected)
            #expect(!error.isRetriable)
            #expect(error.code.name == String(describing: injected.name))
        }

        @Test(arguments: [KafkaErrorCode.notEnoughReplicas, .requestTimedOut, .notLeaderForPartition])
        func retriableProduceErrorIsRetriedUntilTheRecordLands(_ injected: KafkaErrorCode) async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("flaky", partitions: 1)
            let producer = try makeProducer(broker, ["retry.backoff.ms": "10"])
            broker.pushRequestErrors(apiKey: .produce, errors: [injected, injected])

            let report = try await producer.send(KafkaRecord(topic: "flaky", key: "tenant-1", value: "after-retries"))
            await producer.shutdown()

            let landed = try await IndependentKafkaClient(bootstrapServers: broker.bootstrapServers)
                .consume(topic: "flaky", partition: 0)
            #expect(landed.map(\.payload) == ["after-retries"])
            #expect(landed.first?.offset == report.offset)
        }

        @Test
        func unknownPropertyIsRejectedByName() throws {
            let error = #expect(throws: KafkaError.self) {
                try KafkaProducer(
                    configuration: KafkaProducerConfiguration(
                        bootstrapServers: "127.0.0.1:9092",
                        properties: ["linger.ms": "1", "no.such.property": "1"]
                    ),
                    logger: logger
                )
            }
            #expect(error?.code == .invalidArgument)
            #expect(error?.message.contains("no.such.property") == true)
        }

        @Test
        func unreachableBrokersFailTheConnectivityCheckWithinItsTimeout() async throws {
            // Port 1 on loopback: nothing listens there, so connections are refused at once.
            let producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(bootstrapServers: "127.0.0.1:1"),
                logger: logger
            )
            let started = ContinuousClock.now
            let error = await #expect(throws: KafkaError.self) {
                try await producer.checkConnectivity(timeout: .seconds(1))
            }
            // Bounded by the 1 s asked for, not by librdkafka's own 60 s socket timeout; the
            // rest of the allowance is for a loaded machine (4.3 s was seen in a busy run).
            #expect(ContinuousClock.now - started < .seconds(15))
            #expect(error?.message.contains("brokers unreachable: 127.0.0.1:1") == true)
            await producer.shutdown()
        }

        @Test
        func connectivityCheckCountsTheBrokers() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 3, logger: logger)
            let producer = try makeProducer(broker)
            #expect(try await producer.checkConnectivity(timeout: .seconds(5)) == 3)
            await producer.shutdown()
        }

        @Test("looking topics up before any record makes a broker that creates topics on first use create them")
        func lookingUpTopicsCreatesThemBeforeAnyRecord() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            let independent = IndependentKafkaClient(bootstrapServers: broker.bootstrapServers)
            let producer = try makeProducer(broker)
            #expect(try await !independent.topicNames().contains("orders"))

            let problems = try await producer.lookUpTopics(["orders", "orders.dead-letter"], timeout: .seconds(10))

            #expect(problems.isEmpty)
            #expect(try await independent.topicNames().isSuperset(of: ["orders", "orders.dead-letter"]))
            await producer.shutdown()
        }

        @Test
        func recordProducedWhileTheBrokerIsDownIsDeliveredOnceItIsUp() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("outage", partitions: 1)
            let producer = try makeProducer(broker, ["reconnect.backoff.max.ms": "100", "retry.backoff.ms": "20"])
            try await producer.checkConnectivity(timeout: .seconds(5))

            try broker.setBrokerDown(1)
            let pending = await producer.enqueue([KafkaRecord(topic: "outage", key: "tenant-1", value: "during-outage")])
            // Proves the record is stuck rather than delivered before the broker went down.
            await #expect(throws: KafkaError.self) {
                try await producer.flush(timeout: .milliseconds(500))
            }
            try broker.setBrokerUp(1)

            let delivered = try await pending.outcomes()[0].get()
            await producer.shutdown()
            let landed = try await IndependentKafkaClient(bootstrapServers: broker.bootstrapServers)
                .consume(topic: "outage", partition: 0)
            #expect(landed.map(\.payload) == ["during-outage"])
            #expect(landed.first?.offset == delivered.offset)
        }

        @Test("produce never waits: a record librdkafka has no room for fails at once with queueFull, and the records it took are delivered")
        func produceFailsAtOnceWhenTheQueueIsFull() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("full", partitions: 1)
            let producer = try makeProducer(broker, ["queue.buffering.max.messages": "2"])
            try await producer.checkConnectivity(timeout: .seconds(5))
            try broker.setBrokerDown(1)

            let outcomes = Mutex<[Int: Result<KafkaDeliveryReport, KafkaError>]>([:])
            let threadOfTheCall = pthread_self()
            let refusedOnTheCallingThread = Mutex<[Int: Bool]>([:])
            producer.produce((0..<3).map { KafkaRecord(topic: "full", key: "tenant-1", value: "record-\($0)") }) { index, outcome in
                refusedOnTheCallingThread.withLock { $0[index] = pthread_equal(pthread_self(), threadOfTheCall) != 0 }
                outcomes.withLock { $0[index] = outcome }
            }
            let refused = outcomes.withLock { $0 }
            #expect(refused.count == 1, "only the third record is decided before produce returns")
            #expect(refused[2].map { if case .failure(let error) = $0 { error.code == .queueFull } else { false } } == true)
            #expect(refusedOnTheCallingThread.withLock { $0[2] } == true)

            try broker.setBrokerUp(1)
            try await waitUntil("both records librdkafka took are acknowledged") { outcomes.withLock { $0.count } == 3 }
            let delivered = outcomes.withLock { $0 }.filter { (try? $0.value.get()) != nil }.keys.sorted()
            #expect(delivered == [0, 1])
            await producer.shutdown()
            let landed = try await IndependentKafkaClient(bootstrapServers: broker.bootstrapServers)
                .consume(topic: "full", partition: 0)
            #expect(landed.map(\.payload) == ["record-0", "record-1"])
        }

        @Test
        func shutdownFailsWaitersInsteadOfLeavingThemHanging() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("never", partitions: 1)
            let producer = try makeProducer(broker)
            try await producer.checkConnectivity(timeout: .seconds(5))
            try broker.setBrokerDown(1)

            let pending = await producer.enqueue([KafkaRecord(topic: "never", key: "tenant-1", value: "lost")])
            await #expect(throws: KafkaError.self) {
                try await producer.flush(timeout: .milliseconds(200))
            }
            await producer.shutdown(flushTimeout: .milliseconds(100))

            guard case .failure(let error) = await pending.outcomes()[0] else {
                Issue.record("a record that never reached a broker was reported delivered")
                return
            }
            #expect(error.isRetriable)
            let afterShutdown = await producer.send([KafkaRecord(topic: "never", key: nil, value: "late")])[0]
            #expect(throws: KafkaError.self) { try afterShutdown.get() }
        }
    }
}

/// A record's place in a topic.
struct Position: Hashable {
    let partition: Int32
    let offset: Int64

    init(_ partition: Int32, _ offset: Int64) {
        self.partition = partition
        self.offset = offset
    }
}
