@testable import Kafka
import Testing
import TestSupport

extension KafkaIntegrationTests {
    @Suite
    struct HandleTests {
        let logger = makeKafkaTestLogger("kafka-tests.handles")

        /// Covers both ways a client ends: shut down explicitly, and simply released (its deinit
        /// hands destruction to the client's own thread or queue).
        @Test(.serialized, .timeLimit(.minutes(1)), arguments: [true, false])
        func everyHandleIsDestroyedExactlyOnce(closeExplicitly: Bool) async throws {
            let scope = "handle-test-\(closeExplicitly)"
            try await RDKafkaHandleCounter.$scope.withValue(scope) {
                try await useEveryKindOfClient(closeExplicitly: closeExplicitly, scope: scope)
            }
            await RDKafkaHandleCounter.waitUntilLive(is: 0, in: scope)
            #expect(RDKafkaHandleCounter.live(in: scope) == 0)
        }

        private func useEveryKindOfClient(closeExplicitly: Bool, scope: String) async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            let producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers),
                logger: logger
            )
            let consumer = try KafkaConsumer(
                configuration: KafkaConsumerConfiguration(bootstrapServers: broker.bootstrapServers, groupID: "handles"),
                logger: logger
            )
            let reader = try KafkaRecordReader(bootstrapServers: broker.bootstrapServers, logger: logger)
            // Mock cluster and its host, producer, consumer, reader.
            #expect(RDKafkaHandleCounter.live(in: scope) == 5)

            let report = try await producer.send(KafkaRecord(topic: "handles", key: "k", value: "v"))
            try await consumer.subscribe(topics: ["handles"])
            _ = try await consumer.poll(timeout: .milliseconds(100))
            #expect(try await reader.read(topic: "handles", partition: report.partition, offset: report.offset) != nil)
            if closeExplicitly {
                await producer.shutdown()
                try await consumer.close()
                try await reader.close()
            }
            _ = try #require(throws: KafkaError.self) {
                try KafkaProducer(
                    configuration: KafkaProducerConfiguration(bootstrapServers: "", properties: ["bogus": "1"]),
                    logger: logger
                )
            }
        }
    }
}
