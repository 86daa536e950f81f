import Kafka
import Testing
import TestSupport

extension KafkaIntegrationTests {
    @Suite
    struct DevelopmentBrokerTests {
        let logger = makeKafkaTestLogger("kafka-tests.dev-broker")

        @Test
        func createdTopicsHaveExactlyTheirPartitionsAndAutoCreatedOnesTheMockDefault() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 3, logger: logger)
            try broker.createTopic("exact", partitions: 7, replicationFactor: 2)
            let producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers),
                logger: logger
            )
            _ = try await producer.send(KafkaRecord(topic: "auto-created", key: "tenant-1", value: "v"))
            await producer.shutdown()

            let independent = IndependentKafkaClient(bootstrapServers: broker.bootstrapServers)
            #expect(try await independent.partitionCount(topic: "exact") == 7)
            #expect(try await independent.partitionCount(topic: "auto-created") == KafkaDevelopmentBroker.autoCreatedTopicPartitions)
            #expect(try await independent.brokerIDs() == [1, 2, 3])
        }

        @Test
        func independentClientsShareTheClusterWithOurs() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 2, logger: logger)
            try broker.createTopic("shared", partitions: 3, replicationFactor: 2)
            let independent = IndependentKafkaClient(bootstrapServers: broker.bootstrapServers)
            let stored = try await independent.produceWithKafkaPython(
                topic: "shared", key: "tenant-9", value: "from-python", header: ("origin", "kafka-python")
            )

            let reader = try KafkaRecordReader(bootstrapServers: broker.bootstrapServers, logger: logger)
            let record = try await reader.read(topic: "shared", partition: stored.partition, offset: stored.offset)
            try await reader.close()
            #expect(record?.key == Array("tenant-9".utf8))
            #expect(record?.value == Array("from-python".utf8))
            #expect(record?.headers == [KafkaHeader(name: "origin", value: "kafka-python")])
        }

        @Test
        func roundTripTimeDelaysAcknowledgements() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("slow", partitions: 1)
            let producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers),
                logger: logger
            )
            try await producer.checkConnectivity(timeout: .seconds(5))
            try broker.setRoundTripTime(broker: 1, milliseconds: 400)
            let started = ContinuousClock.now
            _ = try await producer.send(KafkaRecord(topic: "slow", key: "tenant-1", value: "v"))
            #expect(ContinuousClock.now - started >= .milliseconds(400))
            await producer.shutdown()
        }

        /// librdkafka 2.0.2 treats a topic error in metadata as passing: it holds the record until
        /// `message.timeout.ms`, then fails it as retriable, so the outbox row stays pending.
        @Test
        func topicErrorFailsDeliveryOnceTheMessageTimesOut() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("forbidden", partitions: 1)
            broker.setTopicError("forbidden", error: .topicAuthorizationFailed)
            let producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(
                    bootstrapServers: broker.bootstrapServers,
                    properties: ["message.timeout.ms": "1000"]
                ),
                logger: logger
            )
            let outcome = await producer.send([KafkaRecord(topic: "forbidden", key: "tenant-1", value: "v")])[0]
            await producer.shutdown()
            guard case .failure(let error) = outcome else {
                Issue.record("a topic the broker refuses was reported delivered")
                return
            }
            #expect(error.code == .messageTimedOut)
            #expect(error.isRetriable)
        }

        @Test
        func aClusterNeedsABroker() {
            #expect(throws: KafkaError.self) {
                try KafkaDevelopmentBroker(brokers: 0, logger: logger)
            }
        }
    }
}
