import Foundation
public import Kafka
public import Outbox

/// Decides where an event goes and how it is labelled: topic from the template, the tenant as
/// key (so a tenant's events share a partition), and CloudEvents binary-mode headers so any
/// consumer can route and de-duplicate without parsing the value.
public struct EventRouter: Sendable {
    public let topicTemplate: String
    public let cloudEventsSource: String

    public init(topicTemplate: String, cloudEventsSource: String) {
        self.topicTemplate = topicTemplate
        self.cloudEventsSource = cloudEventsSource
    }

    public func record(for event: OutboxEvent) -> KafkaRecord {
        KafkaRecord(
            topic: topic(for: event),
            key: event.tenantKey,
            value: event.payload,
            headers: headers(for: event))
    }

    /// The topic for `event`, with placeholders filled with topic-safe text.
    public func topic(for event: OutboxEvent) -> String {
        topicTemplate
            .replacingOccurrences(of: "{tenant}", with: Self.topicSafe(event.tenantID ?? event.tenantKey ?? "none"))
            .replacingOccurrences(of: "{schema}", with: Self.topicSafe(event.schemaName ?? "none"))
            .replacingOccurrences(of: "{command}", with: Self.topicSafe(event.command.lowercased()))
    }

    func headers(for event: OutboxEvent) -> [KafkaHeader] {
        var headers = [
            KafkaHeader(name: "event_id", value: event.eventID),
            KafkaHeader(name: "ce_specversion", value: "1.0"),
            KafkaHeader(name: "ce_id", value: event.eventID),
            KafkaHeader(name: "ce_source", value: cloudEventsSource),
            KafkaHeader(name: "ce_type", value: Self.cloudEventsType(for: event)),
            KafkaHeader(name: "ce_time", value: event.occurredAt),
            KafkaHeader(name: "content-type", value: "application/json"),
        ]
        if let tenantID = event.tenantID {
            headers.append(KafkaHeader(name: "tenant_id", value: tenantID))
        }
        if let schema = event.schemaName {
            headers.append(KafkaHeader(name: "ce_subject", value: schema))
        }
        return headers
    }

    /// Schema changes get a reverse-DNS style type derived from the command tag
    /// (`ALTER TABLE` → `outboxbridge.schema.alter_table`); domain events keep the type their
    /// application gave them.
    static func cloudEventsType(for event: OutboxEvent) -> String {
        guard event.kind == "ddl" else { return event.command }
        return "outboxbridge.schema." + event.command.lowercased().replacingOccurrences(of: " ", with: "_")
    }

    /// Kafka topic names allow `[a-zA-Z0-9._-]`; anything else becomes `_`.
    static func topicSafe(_ text: String) -> String {
        String(text.map { character in
            character.isASCII && (character.isLetter || character.isNumber || "._-".contains(character))
                ? character : "_"
        })
    }
}
