import Kafka
import Testing
import TestSupport

extension KafkaIntegrationTests {
    @Suite
    struct ConsumerTests {
        let logger = makeKafkaTestLogger("kafka-tests.consumer")

        func produce(_ values: [String], to topic: String, on broker: KafkaDevelopmentBroker) async throws -> [KafkaDeliveryReport] {
            let producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers),
                logger: logger
            )
            let outcomes = await producer.send(values.map { KafkaRecord(topic: topic, key: "tenant-1", value: $0) })
            await producer.shutdown()
            return try outcomes.map { try $0.get() }
        }

        func poll(_ consumer: KafkaConsumer, count: Int) async throws -> [KafkaMessage] {
            let deadline = ContinuousClock.now + .seconds(30)
            var messages: [KafkaMessage] = []
            while messages.count < count, ContinuousClock.now < deadline {
                if let message = try await consumer.poll(timeout: .milliseconds(500)) {
                    messages.append(message)
                }
            }
            return messages
        }

        @Test
        func secondGroupMemberResumesAfterTheCommittedOffset() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("group-topic", partitions: 1)
            _ = try await produce((0..<10).map { "event-\($0)" }, to: "group-topic", on: broker)
            let configuration = KafkaConsumerConfiguration(
                bootstrapServers: broker.bootstrapServers, groupID: "sdk-sync", properties: MockConsumerGroup.properties)

            let first = try KafkaConsumer(configuration: configuration, logger: logger)
            try await first.subscribe(topics: ["group-topic"])
            let firstBatch = try await poll(first, count: 4)
            #expect(firstBatch.map { $0.value.map { String(decoding: $0, as: UTF8.self) } } == ["event-0", "event-1", "event-2", "event-3"])
            try await first.commit(try #require(firstBatch.last))
            try await first.close()

            let second = try KafkaConsumer(configuration: configuration, logger: logger)
            try await second.subscribe(topics: ["group-topic"])
            let resumed = try await poll(second, count: 1)
            #expect(resumed.first?.offset == 4)
            #expect(resumed.first?.value == Array("event-4".utf8))
            try await second.close()
        }

        @Test
        func readerReturnsExactlyTheRecordAtAnOffset() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("audit", partitions: 2)
            let reports = try await produce((0..<5).map { "event-\($0)" }, to: "audit", on: broker)
            let reader = try KafkaRecordReader(bootstrapServers: broker.bootstrapServers, logger: logger)

            let third = reports[2]
            let record = try await reader.read(topic: "audit", partition: third.partition, offset: third.offset)
            #expect(record?.value == Array("event-2".utf8))
            #expect(record?.key == Array("tenant-1".utf8))
            #expect(record?.offset == third.offset)

            let marks = try await reader.watermarks(topic: "audit", partition: third.partition)
            #expect(marks == KafkaWatermarks(low: 0, high: 5))
            #expect(try await reader.read(topic: "audit", partition: third.partition, offset: marks.high) == nil)
            let gone = await #expect(throws: KafkaError.self) {
                try await reader.read(topic: "audit", partition: third.partition, offset: marks.low - 1)
            }
            #expect(gone?.code == .offsetOutOfRange)
            try await reader.close()
        }

        @Test
        func readerReadsManyOffsetsOfAPartitionInOnePass() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("audit-pass", partitions: 1)
            _ = try await produce((0..<10).map { "event-\($0)" }, to: "audit-pass", on: broker)
            let reader = try KafkaRecordReader(bootstrapServers: broker.bootstrapServers, logger: logger)

            // Unsorted, repeated, with gaps, and on both sides of the stored range.
            let lookups = try await reader.read(topic: "audit-pass", partition: 0, offsets: [7, 1, 4, 7, 10, 13, -1001])
            #expect(Set(lookups.keys) == [1, 4, 7, 10, 13, -1001])
            for offset: Int64 in [1, 4, 7] {
                guard case .record(let record)? = lookups[offset] else {
                    Issue.record("no record at \(offset): \(String(describing: lookups[offset]))")
                    continue
                }
                #expect(record.offset == offset)
                #expect(record.value == Array("event-\(offset)".utf8))
            }
            #expect(lookups[10] == .notWritten(partitionEnd: 10))
            #expect(lookups[13] == .notWritten(partitionEnd: 10))
            #expect(lookups[-1001] == .deleted(partitionStart: 0))
            try await reader.close()
        }

        @Test
        func readerReportsRecordsThatNeverArriveAsTimedOutRatherThanAsMissing() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("audit-stalled", partitions: 1)
            _ = try await produce(["event-0", "event-1"], to: "audit-stalled", on: broker)
            let reader = try KafkaRecordReader(bootstrapServers: broker.bootstrapServers, logger: logger)
            #expect(try await reader.read(topic: "audit-stalled", partition: 0, offset: 0) != nil)

            // Watermarks still answer, but every fetch fails and librdkafka keeps retrying it.
            broker.pushRequestErrors(apiKey: .fetch, errors: Array(repeating: .notLeaderForPartition, count: 100))
            let stalled = await #expect(throws: KafkaError.self) {
                try await reader.read(topic: "audit-stalled", partition: 0, offsets: [1], idleTimeout: .milliseconds(500))
            }
            #expect(stalled?.code == .timedOut)
            #expect(stalled?.message.contains("waiting for offset 1") == true, "\(String(describing: stalled))")
            broker.clearRequestErrors(apiKey: .fetch)
            try await reader.close()
        }
    }
}
