import Foundation
import Outbox
@testable import OutboxBridgeCLI
@testable import Relay
import TestSupport
import Testing

/// `{database}` in the topic template: one topic per source database instead of a shared topic.
@Suite("{database} in the topic template, without services")
struct DatabaseTopicTests {
    private func event(tenant: String?, schema: String?, command: String) -> OutboxEvent {
        OutboxEvent(
            id: 1, shard: 0, tenantKey: tenant ?? schema, tenantID: tenant, eventID: "e1", kind: "ddl", command: command,
            schemaName: schema, occurredAt: "2026-01-01T00:00:00Z", attempts: 0, payload: "{}")
    }

    @Test("{database} is the outbox's database, topic-safe, beside the other placeholders")
    func databasePlaceholder() {
        let router = EventRouter(topicTemplate: "ddl.{database}.{tenant}", cloudEventsSource: "test", database: "shop_eu")
        #expect(router.topic(for: event(tenant: "acme", schema: "tenant_acme", command: "ALTER TABLE")) == "ddl.shop_eu.acme")
        #expect(router.topic(for: event(tenant: nil, schema: "public", command: "CREATE TABLE")) == "ddl.shop_eu.public")
        let hostile = EventRouter(topicTemplate: "{database}", cloudEventsSource: "test", database: "Shop EU/ü-1.0")
        #expect(hostile.topic(for: event(tenant: "t", schema: nil, command: "c")) == "Shop_EU__-1.0")
        let shared = EventRouter(topicTemplate: "schema-changes", cloudEventsSource: "test", database: "shop_eu")
        #expect(shared.topic(for: event(tenant: "t", schema: nil, command: "c")) == "schema-changes")
    }

    @Test("the settings check knows {database}, and still refuses a misspelt one")
    func settingsAcceptDatabase() async throws {
        let accepted = try await SettingsReader.layered(yamlFile: nil, environment: ["RELAY_TOPIC": "events.{database}"])
        #expect(try await RelayConfiguration.read(from: accepted).topicTemplate == "events.{database}")
        let misspelt = try await SettingsReader.layered(yamlFile: nil, environment: ["RELAY_TOPIC": "events.{databse}"])
        let error = await #expect(throws: ConfigurationError.self) { try await RelayConfiguration.read(from: misspelt) }
        #expect(error?.key == "relay.topic")
        #expect(error?.description.contains("unknown placeholder {databse} (known: {tenant}, {schema}, {command}, {database})") == true,
                "\(String(describing: error))")
    }
}
