import Consumers
import Foundation
import Kafka
import Logging
import TestSupport
import Testing

/// `--bootstrap-from schema-state`: late consumers built from the compacted state topic reach
/// the state of consumers that read the whole history. Events are produced to the mock broker
/// (sql/016's `tenant_seq` was on another branch when this was written). The late consumers must
/// show that they never read the records the state covers (no duplicate reached them), also
/// when the broker no longer holds those records.
@Suite("Bootstrap from schema-state")
struct BootstrapTests {
    static let early = SyntheticEvent.shortHistory
    static let later = [
        SyntheticEvent(
            command: "ALTER TABLE", tenant: "acme", tenantSeq: 6, table: "orders",
            columns: [("id", "integer"), ("total", "numeric(12,2)"), ("note", "text")]),
        SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 7, table: "customers"),
        SyntheticEvent(
            command: "ALTER TABLE", tenant: "globex", tenantSeq: 2, table: "invoices",
            columns: [("id", "integer"), ("amount", "integer")]),
    ]

    @Test("sdk-sync and warehouse-sync joining late, bootstrapped from schema-state, reach exactly the state of two that saw every event")
    func lateConsumersConverge() async throws {
        // The state covers the early events only; the later ones arrive after it.
        let broker = try await brokerWithStateOfEarlyEvents(group: "bootstrap")
        try await produce(Self.later, to: broker.topic, on: broker.broker)

        let consumers = try await ConsumerPairs()
        let total = Self.early.count + Self.later.count
        try await runUntilCommitted(consumers.full, on: broker, records: total)
        for (name, handler) in consumers.late {
            let runtime = try runtime(name, handler, broker, bootstrapFrom: "schema-state")
            try await runUntilCommitted(runtime, records: total)
            #expect(runtime.skipped == ConsumerSkipCounts(), "\(name) read nothing the state covered and saw no gap")
        }
        try await consumers.expectSameState()
    }

    @Test("on a topic whose early records the broker has removed, late consumers bootstrapped from schema-state reach exactly the state of two that saw every event")
    func earlyRecordsGone() async throws {
        let broker = try await brokerWithStateOfEarlyEvents(group: "bootstrap-gone")
        let consumers = try await ConsumerPairs()
        try await runUntilCommitted(consumers.full, on: broker, records: Self.early.count)

        // The mock broker keeps about 5 MiB per partition and drops the oldest batches beyond
        // it: filler from another source database (which every consumer skips) pushes the
        // early events out, as retention does on a real cluster.
        let filler = try await produceFiller(to: broker.topic, on: broker.broker, bytes: 12 << 20)
        let reader = try KafkaRecordReader(bootstrapServers: broker.broker.bootstrapServers, logger: testLogger())
        let watermarks = try await reader.watermarks(topic: broker.topic, partition: 0)
        try? await reader.close()
        #expect(watermarks.low > Int64(Self.early.count), "the early records are gone: \(watermarks)")
        #expect(watermarks.high == Int64(Self.early.count + filler))
        try await produce(Self.later, to: broker.topic, on: broker.broker)

        let total = Self.early.count + filler + Self.later.count
        try await runUntilCommitted(consumers.full, on: broker, records: total)
        for (name, handler) in consumers.late {
            let runtime = try runtime(name, handler, broker, bootstrapFrom: "schema-state")
            try await runUntilCommitted(runtime, records: total)
            #expect(runtime.skipped.duplicates == 0 && runtime.skipped.gaps == 0, "\(name): \(runtime.skipped)")
        }
        try await consumers.expectSameState()
    }

    /// A broker holding the early events, and schema-state's state of them.
    private func brokerWithStateOfEarlyEvents(group: String) async throws -> ExecTestBroker {
        let broker = try ExecTestBroker(group: group)
        try broker.broker.createTopic("schema-state", partitions: 3)
        try await produce(Self.early, to: broker.topic, on: broker.broker)
        try await buildSchemaState(broker, records: Self.early.count)
        return broker
    }

    /// Runs each of `consumers` in turn until it has committed the first `records` events.
    private func runUntilCommitted(_ consumers: [(String, any EventHandler)], on broker: ExecTestBroker, records: Int) async throws {
        for (name, handler) in consumers {
            try await runUntilCommitted(try runtime(name, handler, broker), records: records)
        }
    }

    /// Runs schema-state until it has committed the first `records` events.
    private func buildSchemaState(_ broker: ExecTestBroker, records: Int) async throws {
        let stateProducer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: broker.broker.bootstrapServers), logger: testLogger())
        var stateConfiguration = broker.configuration()
        stateConfiguration.groupID = "schema-state"
        stateConfiguration.sourceDatabases = ["app"]
        let schemaState = try ConsumerRuntime(
            configuration: stateConfiguration,
            handler: SchemaStateHandler(
                stateTopic: "schema-state", producer: stateProducer, brokers: broker.broker.bootstrapServers,
                logger: testLogger()),
            logger: testLogger())
        try await runUntilCommitted(schemaState, records: records)
        await stateProducer.shutdown()
    }

    /// A consumer of the synthetic events' database `app`, in group `name`.
    private func runtime(
        _ name: String, _ handler: any EventHandler, _ broker: ExecTestBroker, bootstrapFrom: String? = nil
    ) throws -> ConsumerRuntime {
        var configuration = broker.configuration()
        configuration.groupID = name
        configuration.sourceDatabases = ["app"]
        configuration.bootstrapTopic = bootstrapFrom
        return try ConsumerRuntime(configuration: configuration, handler: handler, logger: testLogger())
    }

    /// Produces at least `bytes` of incompressible records from another source database;
    /// returns how many.
    private func produceFiller(to topic: String, on broker: KafkaDevelopmentBroker, bytes: Int) async throws -> Int {
        let padding = 256 << 10
        let events = (0..<(bytes / padding + 1)).map { index -> KafkaRecord in
            var event = SyntheticEvent(
                kind: "domain", command: "filler.padding", tenant: "filler", tenantSeq: Int64(index + 1), database: "elsewhere",
                table: nil)
            event.eventID = UUID().uuidString.lowercased()
            let random = Data((0..<(padding * 3 / 4)).map { _ in UInt8.random(in: 0...255) }).base64EncodedString()
            return KafkaRecord(topic: topic, key: event.key, value: "{\"padding\":\"\(random)\"," + event.json.dropFirst())
        }
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers), logger: testLogger())
        for record in events {
            _ = try await producer.send(record)
        }
        await producer.shutdown()
        return events.count
    }

    /// An sdk-sync and a warehouse-sync that see every event, and two that join late.
    private struct ConsumerPairs {
        let fullSDK: ScratchDirectory
        let lateSDK: ScratchDirectory
        let fullWarehouse: TestDatabase
        let lateWarehouse: TestDatabase

        init() async throws {
            fullSDK = try ScratchDirectory()
            lateSDK = try ScratchDirectory()
            fullWarehouse = try await TestDatabase.create("bootfull")
            lateWarehouse = try await TestDatabase.create("bootlate")
        }

        var full: [(String, any EventHandler)] {
            [("full-sdk", SDKSyncHandler(outputDirectory: fullSDK.url, logger: testLogger())),
             ("full-warehouse", BootstrapTests.warehouseHandler(fullWarehouse))]
        }

        var late: [(String, any EventHandler)] {
            [("late-sdk", SDKSyncHandler(outputDirectory: lateSDK.url, logger: testLogger())),
             ("late-warehouse", BootstrapTests.warehouseHandler(lateWarehouse))]
        }

        /// The late pair's sdk-sync models and warehouse catalog equal the full pair's; drops the
        /// warehouses.
        func expectSameState() async throws {
            for tenant in ["acme", "globex"] {
                let full = try BootstrapTests.sdkModel(fullSDK, tenant: tenant)
                #expect(!full.isEmpty)
                #expect(try BootstrapTests.sdkModel(lateSDK, tenant: tenant) == full, "sdk-sync model of \(tenant)")
            }
            let fullCatalog = try await WarehouseSyncFixture.catalog(
                of: try await fullWarehouse.connect(), excluding: ["outbox_warehouse"])
            let lateCatalog = try await WarehouseSyncFixture.catalog(
                of: try await lateWarehouse.connect(), excluding: ["outbox_warehouse"])
            #expect(fullCatalog.contains { $0.contains("note") } && fullCatalog.contains { $0.contains("customers") })
            #expect(lateCatalog == fullCatalog)
            try? await fullWarehouse.drop()
            try? await lateWarehouse.drop()
        }
    }

    fileprivate static func warehouseHandler(_ database: TestDatabase) -> any EventHandler {
        var configuration = WarehouseSyncConfiguration(warehouseURL: database.url)
        configuration.dropPolicy = .drop
        return WarehouseSyncHandler(configuration: configuration, logger: Logger(label: "test.warehouse-sync"))
    }

    /// Runs `runtime` until the group has committed every record of the one-partition topic.
    private func runUntilCommitted(_ runtime: ConsumerRuntime, records: Int) async throws {
        try await withRunningConsumer(runtime) {
            try await waitUntil("\(runtime.configuration.groupID) committed all \(records) records", timeout: .seconds(120)) {
                runtime.lag.partitions.contains { $0.lag == 0 && $0.nextOffset == Int64(records) }
            }
        }
    }

    /// The tables and enums of a tenant's sdk-sync state: what the package is generated from,
    /// without version history.
    fileprivate static func sdkModel(_ directory: ScratchDirectory, tenant: String) throws -> [String] {
        let data = try Data(contentsOf: directory.url.appendingPathComponent("\(tenant)/.outbox-sdk-state.json"))
        let state = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try ["tables", "enums"].map { key in
            String(decoding: try JSONSerialization.data(withJSONObject: state[key] ?? [], options: [.sortedKeys]), as: UTF8.self)
        }
    }
}
