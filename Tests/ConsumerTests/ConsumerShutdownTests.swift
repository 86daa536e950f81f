import Foundation
import Kafka
import Postgres
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A consumer told to stop must stop within its `--shutdown-timeout`, whatever Kafka is doing:
/// here the only broker has been down for longer than that bound when SIGTERM arrives, so the
/// consumer's poll, lag query and commit calls all wait on a broker that does not answer.
@Suite("Consumers stop within their shutdown bound with Kafka unreachable")
struct ConsumerShutdownTests {
    static let bound = 3

    enum Consumer: String, CaseIterable, Sendable {
        case sdkSync = "sdk-sync"
        case warehouseSync = "warehouse-sync"
    }

    @Test("SIGTERM with the broker down longer than the bound: the process exits within the bound plus a margin",
          arguments: Consumer.allCases)
    func stopsWithinBound(_ consumer: Consumer) async throws {
        let broker = try KafkaDevelopmentBroker(brokers: 1, logger: makeKafkaTestLogger("shutdown.broker"))
        try broker.createTopic("schema-changes", partitions: 2)
        var arguments = [consumer.rawValue, "--brokers", broker.bootstrapServers, "--shutdown-timeout", "\(Self.bound)",
                         "--log-level", "debug"]
        var warehouse: TestDatabase?
        switch consumer {
        case .sdkSync:
            let output = FileManager.default.temporaryDirectory.appendingPathComponent("shutdown-sdk-\(UUID().uuidString)")
            arguments += ["--out", output.path]
        case .warehouseSync:
            let database = try await TestDatabase.create("shutdown_warehouse")
            warehouse = database
            arguments += ["--warehouse-url", database.url]
        }
        let process = try RelayProcess.launch(arguments, label: "shutdown-\(consumer.rawValue)")
        defer { process.stop() }

        // A record it cannot decode: dead-lettered and committed, so the consumer has a
        // partition whose lag it queries.
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers),
            logger: makeKafkaTestLogger("shutdown.producer"))
        _ = try await producer.send(KafkaRecord(topic: "schema-changes", key: "t1", value: "not an event"))
        await producer.shutdown()
        try await process.waitForStandardError(containing: "record dead-lettered", timeout: .seconds(120))

        try broker.setBrokerDown(1)
        try await process.waitForStandardError(containing: "brokers are down", timeout: .seconds(120))
        // The outage itself, not a wait for something to happen: it must outlast the bound, so
        // every call the consumer makes meanwhile is stuck on the broker.
        try await Task.sleep(for: .seconds(Self.bound * 2))

        let clock = ContinuousClock()
        let signalled = clock.now
        process.kill(SIGTERM)
        let margin = 12
        let status = try await process.waitForExit(timeout: .seconds(Self.bound + margin + 60))
        let elapsed = clock.now - signalled
        #expect(elapsed < .seconds(Self.bound + margin), "\(consumer.rawValue) took \(elapsed) to stop after SIGTERM")
        #expect(status == 0, "\(consumer.rawValue) exit \(status):\n\(process.standardErrorLines.suffix(10).joined(separator: "\n"))")
        #expect(process.standardError.contains("consumer stopped"))
        print("\(consumer.rawValue) stopped \(elapsed) after SIGTERM with the broker down")
        try broker.setBrokerUp(1)
        try? await warehouse?.drop()
    }
}
