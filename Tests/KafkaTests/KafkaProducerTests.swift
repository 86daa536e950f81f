import Kafka
import Testing
import TestSupport

extension KafkaIntegrationTests {
    @Suite
    struct ProducerTests {
        let logger = makeKafkaTestLogger("kafka-tests.producer")

        @Test
        func oneRecordLandsWhereTheDeliveryReportSays() async throws {
            let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
            try broker.createTopic("schema-changes", partitions: 3)
            let producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers),
                logger: logger
            )
            let record = KafkaRecord(
                topic: "schema-changes",
                key: "tenant-7",
                value: "{\"ddl\":\"ALTER TABLE a\"}",
                headers: [KafkaHeader(name: "event-id", value: "42")]
            )
            let report = try await producer.send(record)
            await producer.shutdown()

            let landed = try await IndependentKafkaClient(bootstrapServers: broker.bootstrapServers)
                .consume(topic: "schema-changes", partition: report.partition, offset: String(report.offset), count: 1)
            #expect(landed.count == 1)
            #expect(landed.first?.offset == report.offset)
            #expect(landed.first?.key == "tenant-7")
            #expect(landed.first?.payload == "{\"ddl\":\"ALTER TABLE a\"}")
            #expect(landed.first?.headers == ["event-id", "42"])
        }
    }
}
