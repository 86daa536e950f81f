import Configuration
import Foundation
import Kafka
import Outbox
@testable import OutboxBridgeCLI
@testable import Relay
import TestSupport
import Testing

@Suite("Routing and settings, without services")
struct RoutingAndSettingsTests {
    private func event(tenant: String?, schema: String?, command: String, kind: String = "ddl") -> OutboxEvent {
        OutboxEvent(
            id: 1, shard: 0, tenantKey: tenant ?? schema, tenantID: tenant, eventID: "e1", kind: kind, command: command,
            schemaName: schema, occurredAt: "2026-01-01T00:00:00Z", attempts: 0, payload: "{}")
    }

    @Test("topic templates fill placeholders with topic-safe text")
    func topicTemplates() {
        let router = EventRouter(topicTemplate: "ddl.{tenant}.{schema}.{command}", cloudEventsSource: "test")
        #expect(router.topic(for: event(tenant: "acme", schema: "tenant_acme", command: "ALTER TABLE"))
            == "ddl.acme.tenant_acme.alter_table")
        #expect(router.topic(for: event(tenant: "a/b c", schema: "tenant_ü", command: "DROP TABLE"))
            == "ddl.a_b_c.tenant__.drop_table")
        #expect(router.topic(for: event(tenant: nil, schema: nil, command: "OrderPlaced", kind: "domain"))
            == "ddl.none.none.orderplaced")
        #expect(EventRouter(topicTemplate: "plain", cloudEventsSource: "x").topic(for: event(tenant: "t", schema: nil, command: "c"))
            == "plain")
    }

    @Test("CloudEvents type: derived from the command tag for schema changes, as given for domain events")
    func cloudEventsType() {
        #expect(EventRouter.cloudEventsType(for: event(tenant: "t", schema: "s", command: "CREATE TABLE AS"))
            == "outboxbridge.schema.create_table_as")
        #expect(EventRouter.cloudEventsType(for: event(tenant: "t", schema: nil, command: "Order.Placed", kind: "domain"))
            == "Order.Placed")
    }

    @Test("config/bridge.yaml documents exactly the defaults the relay uses")
    func documentedDefaults() async throws {
        let file = OutboxTestEnvironment.sqlDirectory.deletingLastPathComponent().appendingPathComponent("config/bridge.yaml")
        let settings = try await SettingsReader.layered(yamlFile: file.path, environment: [:])
        let documented = try await RelayConfiguration.read(from: settings)
        let defaults = RelayConfiguration()
        #expect(documented.databaseURL == defaults.databaseURL)
        #expect(documented.listenURL == defaults.listenURL)
        #expect(documented.pollOnly == defaults.pollOnly)
        #expect(documented.listenHeartbeat == defaults.listenHeartbeat)
        #expect(documented.schema == defaults.schema)
        #expect(documented.channel == defaults.channel)
        #expect(documented.topicTemplate == defaults.topicTemplate)
        #expect(documented.deadLetterTopic == defaults.deadLetterTopic)
        #expect(documented.cloudEventsSource == defaults.cloudEventsSource)
        #expect(documented.batchSize == defaults.batchSize)
        #expect(documented.maxInFlightBatches == defaults.maxInFlightBatches)
        #expect(documented.pollInterval == defaults.pollInterval)
        #expect(documented.maxAttempts == defaults.maxAttempts)
        #expect(documented.retryBackoff == defaults.retryBackoff)
        #expect(documented.maxRetryBackoff == defaults.maxRetryBackoff)
        #expect(documented.leaseDuration == defaults.leaseDuration)
        #expect(documented.brokers == defaults.brokers)
        #expect(documented.kafkaProperties == defaults.kafkaProperties)
    }

    @Test("the YAML file, environment variables and options override each other in that order")
    func precedence() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("settings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let file = directory.appendingPathComponent("bridge.yaml")
        try "relay:\n  batchSize: 10\n  topic: from-file\n  maxAttempts: 3\n".write(to: file, atomically: true, encoding: .utf8)
        let settings = try await SettingsReader.layered(
            yamlFile: file.path, environment: ["RELAY_BATCH_SIZE": "20", "RELAY_TOPIC": "from-env"],
            commandLine: [AbsoluteConfigKey(["relay", "batchSize"]): .init(.int(30), isSecret: false)])
        let configuration = try await RelayConfiguration.read(from: settings)
        #expect(configuration.batchSize == 30)
        #expect(configuration.topicTemplate == "from-env")
        #expect(configuration.maxAttempts == 3)
    }

    @Test("an unusable setting names its key")
    func invalidSettings() async throws {
        for (variables, key) in [(["RELAY_BATCH_SIZE": "0"], "relay.batchSize"), (["RELAY_MAX_ATTEMPTS": "many"], "relay.maxAttempts"),
                                 (["KAFKA_PROPERTIES": "novalue"], "kafka.properties"), (["OUTBOX_SCHEMA": ""], "outbox.schema")] {
            let settings = try await SettingsReader.layered(yamlFile: nil, environment: variables)
            let error = await #expect(throws: ConfigurationError.self) { try await RelayConfiguration.read(from: settings) }
            #expect(error?.key == key)
            #expect(error?.description.hasPrefix("invalid configuration: \(key):") == true)
        }
    }
}

@Suite("Log lines")
struct LogFormatTests {
    @Test("logfmt quotes values with spaces, quotes or newlines; JSON escapes them")
    func escaping() throws {
        let fields = [("message", "relay started"), ("error", "a \"quoted\"\nline"), ("count", "3")]
        #expect(StructuredLogHandler.logfmt(fields) == #"message="relay started" error="a \"quoted\"\nline" count=3"#)
        let json = try JSONSerialization.jsonObject(with: Data(StructuredLogHandler.json(fields).utf8)) as? [String: String]
        #expect(json == ["message": "relay started", "error": "a \"quoted\"\nline", "count": "3"])
    }
}

@Suite("Resolving acknowledgements")
struct ResolutionTests {
    private func event(_ id: Int64, tenant: String) -> OutboxEvent {
        OutboxEvent(
            id: id, shard: 0, tenantKey: tenant, tenantID: tenant, eventID: "e\(id)", kind: "ddl", command: "CREATE TABLE",
            schemaName: "tenant_\(tenant)", occurredAt: "", attempts: 0, payload: "{}")
    }

    @Test("an ack without an offset is published again, and the tenant's later acks wait behind it")
    func ackWithoutOffset() {
        let ledger = InFlightLedger()
        ledger.add([event(1, tenant: "a"), event(2, tenant: "a"), event(3, tenant: "b")])
        let report = { (offset: Int64) in KafkaDeliveryReport(topic: "t", partition: 0, offset: offset) }
        let resolution = ledger.plan(
            [(1, .success(report(-1001)), 0, 0), (2, .success(report(7)), 0, 0), (3, .success(report(8)), 0, 0)],
            configuration: RelayConfiguration())
        #expect(resolution.retries.map(\.eventID) == [1])
        #expect(resolution.delivered.map(\.eventID) == [3])
        #expect(resolution.heldBack == 1)
        #expect(resolution.resolvedIDs.sorted() == [1, 2, 3])
    }

    @Test("a tenant with a failed row is claimed for again only once its rows in flight are resolved")
    func failedTenantPausesUntilItsRowsInFlightAreResolved() {
        let ledger = InFlightLedger()
        let configuration = RelayConfiguration()
        let ok = { (offset: Int64) -> Result<KafkaDeliveryReport, KafkaError> in
            .success(KafkaDeliveryReport(topic: "t", partition: 0, offset: offset))
        }
        ledger.add([event(1, tenant: "a"), event(2, tenant: "a"), event(3, tenant: "a"), event(4, tenant: "b")])
        var resolution = ledger.plan([(1, ok(-1001), 0, 0), (2, ok(5), 0, 0)], configuration: configuration)
        #expect(resolution.retries.map(\.eventID) == [1] && resolution.heldBack == 1)
        #expect(!ledger.remove(resolution.resolvedIDs), "3 is still in flight: nothing to wake the loop for")
        // Claiming for "a" now would publish rows that land before 1's new copy.
        #expect(ledger.retryingTenants == ["a"])

        resolution = ledger.plan([(3, ok(6), 0, 0), (4, ok(7), 0, 0)], configuration: configuration)
        #expect(resolution.heldBack == 1 && resolution.delivered.map(\.eventID) == [4])
        #expect(ledger.remove(resolution.resolvedIDs), "the loop is woken to claim 1, 2 and 3 again, in order")
        #expect(ledger.retryingTenants.isEmpty)
    }
}
