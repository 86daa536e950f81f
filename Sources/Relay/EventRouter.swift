public import Kafka
public import Outbox

/// Decides where an event goes and how it is labelled: topic from the template, the tenant as
/// key (so a tenant's events share a partition), and CloudEvents binary-mode headers so any
/// consumer can route and de-duplicate without parsing the value.
///
/// It runs for every event, so the template is parsed once and text is handled as bytes.
public struct EventRouter: Sendable {
    private enum Segment: Sendable {
        case literal(String)
        case tenant, schema, command, database
    }

    private let segments: [Segment]
    public let cloudEventsSource: String
    /// The headers with the same value on every event, built once: a header's value is an array
    /// of its own, and allocating them for every event cost about 5% of the relay's instructions
    /// per drained event.
    private let specVersionHeader = KafkaHeader(name: "ce_specversion", value: "1.0")
    private let sourceHeader: KafkaHeader
    private let contentTypeHeader = KafkaHeader(name: "content-type", value: "application/json")
    /// The database holding the outbox: every event in it was captured there (`database` in the
    /// event is `current_database()`), so `{database}` needs no per-event parsing.
    private let database: String

    /// The topic of every event when the template has no per-event placeholder, else `nil`.
    public let fixedTopic: String?

    public init(topicTemplate: String, cloudEventsSource: String, database: String = "") {
        self.segments = Self.parse(topicTemplate)
        self.cloudEventsSource = cloudEventsSource
        self.sourceHeader = KafkaHeader(name: "ce_source", value: cloudEventsSource)
        self.database = database
        self.fixedTopic = Self.fixedTopic(of: segments, database: database)
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
        if let fixedTopic { return fixedTopic }
        var topic = ""
        for segment in segments {
            switch segment {
            case .literal(let text): topic += text
            case .tenant: topic += Self.topicSafe(event.tenantID ?? event.tenantKey ?? "none")
            case .schema: topic += Self.topicSafe(event.schemaName ?? "none")
            case .command: topic += Self.topicSafe(Self.lowercasedASCII(event.command))
            case .database: topic += Self.topicSafe(database)
            }
        }
        return topic
    }

    private static func fixedTopic(of segments: [Segment], database: String) -> String? {
        var topic = ""
        for segment in segments {
            switch segment {
            case .literal(let text): topic += text
            case .database: topic += Self.topicSafe(database)
            case .tenant, .schema, .command: return nil
            }
        }
        return topic
    }

    func headers(for event: OutboxEvent) -> [KafkaHeader] {
        let eventID = Array(event.eventID.utf8)
        var headers = [
            KafkaHeader(name: "event_id", value: eventID),
            specVersionHeader,
            KafkaHeader(name: "ce_id", value: eventID),
            sourceHeader,
            KafkaHeader(name: "ce_type", value: Self.cloudEventsType(for: event)),
            KafkaHeader(name: "ce_time", value: event.occurredAt),
            contentTypeHeader,
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
        return "outboxbridge.schema." + topicSafe(lowercasedASCII(event.command))
    }

    /// Kafka topic names allow `[a-zA-Z0-9._-]`; any other character becomes `_`.
    static func topicSafe(_ text: String) -> String {
        guard !text.utf8.allSatisfy(isTopicByte) else { return text }
        var scalars = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            scalars.append(scalar.isASCII && isTopicByte(UInt8(scalar.value)) ? scalar : "_")
        }
        return String(scalars)
    }

    private static func isTopicByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    /// Command tags are ASCII; lowering only ASCII letters avoids Unicode case tables per event.
    private static func lowercasedASCII(_ text: String) -> String {
        String(decoding: text.utf8.map { (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains($0) ? $0 + 32 : $0 }, as: UTF8.self)
    }

    private static func parse(_ template: String) -> [Segment] {
        var segments: [Segment] = []
        var literal = ""
        var rest = Substring(template)
        let placeholders: [(String, Segment)] = [
            ("{tenant}", .tenant), ("{schema}", .schema), ("{command}", .command), ("{database}", .database),
        ]
        while let first = rest.first {
            if let (text, segment) = placeholders.first(where: { rest.hasPrefix($0.0) }) {
                if !literal.isEmpty { segments.append(.literal(literal)) }
                literal = ""
                segments.append(segment)
                rest = rest.dropFirst(text.count)
            } else {
                literal.append(first)
                rest = rest.dropFirst()
            }
        }
        if !literal.isEmpty || segments.isEmpty { segments.append(.literal(literal)) }
        return segments
    }
}
