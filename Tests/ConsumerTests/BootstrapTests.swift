import Consumers
import Foundation
import Kafka
import Logging
import TestSupport
import Testing

/// `--bootstrap-from schema-state`: late consumers built from the compacted state topic reach
/// the state of consumers that read the whole history. Events are produced to the mock broker
/// (sql/016's `tenant_seq` is on another branch); once merged this should also run end to end
/// from DDL, and on a topic whose early records were deleted (`rd_kafka_delete_records`), which
/// the Kafka module does not offer yet. Here the late consumers must show that they never read
/// the records the state covers: no duplicate reached them.
@Suite("Bootstrap from schema-state")
struct BootstrapTests {
    static let early = [
        SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 1, table: "orders"),
        SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 2, table: "scratch"),
        SyntheticEvent(
            command: "ALTER TABLE", tenant: "acme", tenantSeq: 3, table: "orders",
            columns: [("id", "integer"), ("total", "numeric(12,2)")]),
        SyntheticEvent(command: "DROP TABLE", tenant: "acme", tenantSeq: 4, table: "scratch"),
        SyntheticEvent(kind: "domain", command: "order.placed", tenant: "acme", tenantSeq: 5, table: nil),
        SyntheticEvent(command: "CREATE TABLE", tenant: "globex", tenantSeq: 1, table: "invoices"),
    ]
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
        let broker = try ExecTestBroker(group: "bootstrap")
        try broker.broker.createTopic("schema-state", partitions: 3)
        try await produce(Self.early, to: broker.topic, on: broker.broker)
        // The state covers the early events only; the later ones arrive after it.
        let stateProducer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: broker.broker.bootstrapServers), logger: testLogger())
        var stateConfiguration = broker.configuration()
        stateConfiguration.groupID = "schema-state"
        let schemaState = try ConsumerRuntime(
            configuration: stateConfiguration,
            handler: SchemaStateHandler(
                stateTopic: "schema-state", producer: stateProducer, brokers: broker.broker.bootstrapServers,
                logger: testLogger()),
            logger: testLogger())
        try await runUntilCommitted(schemaState, records: Self.early.count)
        await stateProducer.shutdown()
        try await produce(Self.later, to: broker.topic, on: broker.broker)

        let fullSDK = try ScratchDirectory()
        let lateSDK = try ScratchDirectory()
        let fullWarehouse = try await TestDatabase.create("bootfull")
        let lateWarehouse = try await TestDatabase.create("bootlate")
        let total = Self.early.count + Self.later.count

        for (name, handler) in [
            ("full-sdk", SDKSyncHandler(outputDirectory: fullSDK.url, logger: testLogger()) as any EventHandler),
            ("full-warehouse", warehouseHandler(fullWarehouse)),
        ] {
            var configuration = broker.configuration()
            configuration.groupID = name
            let runtime = try ConsumerRuntime(configuration: configuration, handler: handler, logger: testLogger())
            try await runUntilCommitted(runtime, records: total)
        }
        for (name, handler) in [
            ("late-sdk", SDKSyncHandler(outputDirectory: lateSDK.url, logger: testLogger()) as any EventHandler),
            ("late-warehouse", warehouseHandler(lateWarehouse)),
        ] {
            var configuration = broker.configuration()
            configuration.groupID = name
            configuration.bootstrapTopic = "schema-state"
            let runtime = try ConsumerRuntime(configuration: configuration, handler: handler, logger: testLogger())
            try await runUntilCommitted(runtime, records: total)
            #expect(runtime.skipped == ConsumerSkipCounts(), "\(name) read nothing the state covered and saw no gap")
        }

        for tenant in ["acme", "globex"] {
            let full = try sdkModel(fullSDK, tenant: tenant)
            #expect(!full.isEmpty)
            #expect(try sdkModel(lateSDK, tenant: tenant) == full, "sdk-sync model of \(tenant)")
        }
        let fullCatalog = try await WarehouseSyncFixture.catalog(of: try await fullWarehouse.connect(), excluding: ["outbox_warehouse"])
        let lateCatalog = try await WarehouseSyncFixture.catalog(of: try await lateWarehouse.connect(), excluding: ["outbox_warehouse"])
        #expect(fullCatalog.contains { $0.contains("note") } && fullCatalog.contains { $0.contains("customers") })
        #expect(lateCatalog == fullCatalog)
        try? await fullWarehouse.drop()
        try? await lateWarehouse.drop()
    }

    private func warehouseHandler(_ database: TestDatabase) -> any EventHandler {
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
    private func sdkModel(_ directory: ScratchDirectory, tenant: String) throws -> [String] {
        let data = try Data(contentsOf: directory.url.appendingPathComponent("\(tenant)/.outbox-sdk-state.json"))
        let state = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try ["tables", "enums"].map { key in
            String(decoding: try JSONSerialization.data(withJSONObject: state[key] ?? [], options: [.sortedKeys]), as: UTF8.self)
        }
    }
}
