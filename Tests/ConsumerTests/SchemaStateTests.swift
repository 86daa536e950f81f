import Consumers
import Foundation
import Kafka
import TestSupport
import Testing

/// `schema-state`: the compacted topic of latest shapes. Events are produced to the mock broker
/// (with `tenant_seq`, which sql/016 adds on another branch); the same checks should run end to
/// end from DDL once it is merged.
@Suite("schema-state: latest shape per tenant object in a compacted topic")
struct SchemaStateTests {
    static let events = [
        SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 1, table: "orders"),
        SyntheticEvent(
            command: "ALTER TABLE", tenant: "acme", tenantSeq: 2, table: "orders",
            columns: [("id", "integer"), ("total", "numeric(12,2)")]),
        SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 3, table: "scratch"),
        SyntheticEvent(command: "DROP TABLE", tenant: "acme", tenantSeq: 4, table: "scratch"),
        SyntheticEvent(kind: "domain", command: "order.placed", tenant: "acme", tenantSeq: 5, table: nil),
        SyntheticEvent(command: "CREATE TABLE", tenant: "globex", tenantSeq: 1, table: "invoices"),
        SyntheticEvent(command: "CREATE TABLE", tenant: nil, database: "app", table: "shared"),
    ]

    @Test("Each key holds the object's latest shape with event id and tenant_seq; a drop is a tombstone; the same input gives the same output")
    func latestShapesAndTombstones() async throws {
        let broker = try ExecTestBroker(group: "schema-state")
        try broker.broker.createTopic("schema-state", partitions: 3)
        try broker.broker.createTopic("schema-state-again", partitions: 3)
        try await produce(Self.events, to: broker.topic, on: broker.broker)
        try await runSchemaState(broker, group: "schema-state", stateTopic: "schema-state")
        try await runSchemaState(broker, group: "schema-state-again", stateTopic: "schema-state-again")

        let kafka = IndependentKafkaClient(bootstrapServers: broker.broker.bootstrapServers)
        let records = try await kafka.consume(topic: "schema-state")
        let latest = Dictionary(records.map { ($0.key ?? "", $0) }, uniquingKeysWith: { earlier, later in
            earlier.offset > later.offset && earlier.partition == later.partition ? earlier : later })
        #expect(Set(latest.keys) == ["acme/tenant_acme.orders", "acme/tenant_acme.scratch", "acme", "globex/tenant_globex.invoices", "globex"])
        #expect(latest["acme/tenant_acme.scratch"]?.payload == nil, "a dropped table is a tombstone")
        #expect(latest["acme/tenant_acme.scratch"]?.header("tenant_seq") == "4")

        let orders = try JSONDecoder().decode(StateRecord.self, from: Data(try #require(latest["acme/tenant_acme.orders"]?.payload).utf8))
        #expect(orders.eventID == Self.events[1].eventID)
        #expect(orders.tenantSeq == 2)
        #expect(orders.objectType == "table")
        guard case .object(let shape) = orders.shape, case .array(let columns)? = shape["columns"] else {
            Issue.record("no columns in \(orders.shape)")
            return
        }
        #expect(columns.count == 2)
        let cursor = try JSONDecoder().decode(StateRecord.self, from: Data(try #require(latest["acme"]?.payload).utf8))
        #expect(cursor.tenantSeq == 5, "the tenant cursor follows domain events too")
        #expect(cursor.source.offset == 4)

        // kcat interleaves partitions as they arrive: compare each partition in offset order.
        func inOrder(_ records: [IndependentKafkaClient.Record]) -> [[String]] {
            records.sorted { ($0.partition, $0.offset) < ($1.partition, $1.offset) }
                .map { [$0.partition.description, $0.offset.description, $0.key ?? "", $0.payload ?? "<null>"] }
        }
        let again = try await kafka.consume(topic: "schema-state-again")
        #expect(inOrder(again) == inOrder(records), "the same input gives the same output")
    }

    @Test("A snapshot's end tombstones the tenant's keys it did not list, and only those")
    func snapshotEndTombstonesUnlisted() async throws {
        let broker = try ExecTestBroker(group: "schema-state-snapshot")
        try broker.broker.createTopic("schema-state", partitions: 3)
        let history = [
            SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 1, table: "orders"),
            SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 2, table: "vanished"),
            SyntheticEvent(command: "CREATE TABLE", tenant: "globex", tenantSeq: 1, table: "invoices"),
        ]
        try await produce(history, to: broker.topic, on: broker.broker)
        try await runSchemaState(broker, group: "schema-state-snapshot", stateTopic: "schema-state")
        try await produce(
            SyntheticEvent.snapshot(tenant: "acme", firstSequence: 3, tables: [("orders", [("id", "integer")])]),
            to: broker.topic, on: broker.broker)
        try await runSchemaState(broker, group: "schema-state-snapshot", stateTopic: "schema-state")

        let records = try await IndependentKafkaClient(bootstrapServers: broker.broker.bootstrapServers).consume(topic: "schema-state")
        let latest = Dictionary(records.map { ($0.key ?? "", $0) }, uniquingKeysWith: { $0.offset > $1.offset ? $0 : $1 })
        #expect(latest["acme/tenant_acme.vanished"].map { $0.payload == nil } == true, "unlisted: tombstoned")
        #expect(latest["acme/tenant_acme.orders"]?.payload != nil)
        #expect(latest["globex/tenant_globex.invoices"]?.payload != nil, "another tenant's keys are not touched")
    }

    /// Runs the schema-state consumer until every input record is committed, which happens only
    /// after its output was acknowledged.
    private func runSchemaState(_ broker: ExecTestBroker, group: String, stateTopic: String) async throws {
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: broker.broker.bootstrapServers), logger: testLogger())
        var configuration = broker.configuration()
        configuration.groupID = group
        let runtime = try ConsumerRuntime(
            configuration: configuration,
            handler: SchemaStateHandler(
                stateTopic: stateTopic, producer: producer, brokers: broker.broker.bootstrapServers, logger: testLogger()),
            logger: testLogger())
        try await withRunningConsumer(runtime) {
            try await waitUntil("every event is committed", timeout: .seconds(120)) {
                runtime.lag.partitions.first.map { $0.lag == 0 && $0.highWatermark == $0.nextOffset } == true
            }
        }
        await producer.shutdown()
    }
}
