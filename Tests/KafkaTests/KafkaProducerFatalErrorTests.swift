@testable import Kafka
import Synchronization
import Testing
import TestSupport

extension KafkaIntegrationTests {
    /// librdkafka documents that a producer instance that raised a fatal error can never be used
    /// again; whatever it reports afterwards is not to be trusted.
    @Suite
    struct ProducerFatalErrorTests {
        let logger = makeKafkaTestLogger("kafka-tests.producer-fatal")

        @Test("a fatal error fails what the instance had not acknowledged, even records the broker wrote; a new instance takes over")
        func fatalErrorReplacesTheInstance() async throws {
            let scope = "fatal-error-test"
            try await RDKafkaHandleCounter.$scope.withValue(scope) {
                let broker = try KafkaDevelopmentBroker(brokers: 1, logger: logger)
                try broker.createTopic("fatal", partitions: 1)
                let producer = try KafkaProducer(
                    // One produce request carries the records below: the mock broker handles a
                    // connection's next request only after answering the one before.
                    configuration: KafkaProducerConfiguration(
                        bootstrapServers: broker.bootstrapServers, properties: ["linger.ms": "200"]),
                    logger: logger)
                _ = try await producer.send(KafkaRecord(topic: "fatal", key: "k", value: "warm-up"))
                // Mock cluster, its host, the producer's first instance.
                #expect(RDKafkaHandleCounter.live(in: scope) == 3)
                let independent = IndependentKafkaClient(bootstrapServers: broker.bootstrapServers)

                // The broker stores the records at once but acknowledges them 10 s later, so they
                // are in Kafka and unacknowledged when the instance fails.
                try broker.delayResponses(broker: 1, apiKey: .produce, count: 2, milliseconds: 10_000)
                let records = (0..<5).map { KafkaRecord(topic: "fatal", key: "k", value: "in-flight-\($0)") }
                async let outcomes = producer.send(records)
                try await waitUntil("the broker has written the records", timeout: .seconds(60)) {
                    try await independent.consume(topic: "fatal").count == 1 + records.count
                }
                #expect(producer.unrecoveredFatalError == nil)
                #expect(producer.instance.client.raiseFatalErrorForTesting(.outOfOrderSequenceNumber, reason: "test"))

                let results = await outcomes
                for result in results {
                    guard case .failure(let error) = result else {
                        Issue.record("a record was reported delivered by the failed instance: \(result)")
                        continue
                    }
                    #expect(error.isFatal && error.code == .fatal)
                }
                let fatal = try #require(producer.unrecoveredFatalError)
                #expect(fatal.code == .outOfOrderSequenceNumber && fatal.isFatal)
                // The failed instance's handle is destroyed; its replacement was built on the
                // failed instance's thread, outside this scope.
                await RDKafkaHandleCounter.waitUntilLive(is: 2, in: scope)

                let report = try await producer.send(KafkaRecord(topic: "fatal", key: "k", value: "after"))
                #expect(report.offset == Int64(1 + records.count))
                #expect(producer.unrecoveredFatalError == nil, "the new instance acknowledged a record")
                await producer.shutdown()
            }
        }
    }
}
