import Foundation
public import Kafka
public import Logging

/// The `schema-state` consumer: keeps a compacted topic holding, per tenant object, its latest
/// shape, so a consumer added later can start from the state instead of the whole history
/// (`--bootstrap-from schema-state`).
///
/// - Key: `<tenant>/<schema>.<name>` (names as in the catalog, unquoted).
/// - Value: ``StateRecord``, JSON with sorted keys: the table or enum shape, the event id and
///   `tenant_seq` that produced it, and the events-topic position it was read from.
/// - A dropped table writes a tombstone (null value) for its key; a renamed one a tombstone
///   for the old key and the shape under the new one. A `snapshot` event writes the shape like
///   any other; its `snapshot_end` writes tombstones for the tenant's keys it did not list. Tombstones carry the same facts as
///   headers (``Header``), so the position they cover survives as long as they do.
/// - Deterministic: the output is a function of the input record alone, so a redelivered
///   event writes the same bytes again (compaction folds them).
/// - The runtime commits an input offset only after this returned, and this returns only after
///   the broker acknowledged every output record.
///
/// - Besides the objects, key `<tenant>` (no slash) holds the tenant's cursor: the last event of
///   the tenant (any kind, domain events too) with its `tenant_seq` and position, so a consumer
///   bootstrapping from the state knows which sequence number comes next and where to continue.
///
/// Events without a tenant write nothing.
public struct SchemaStateHandler: EventHandler {
    /// Header names on every record written, tombstones included.
    public enum Header {
        public static let eventID = "event_id"
        public static let tenantSequence = "tenant_seq"
        public static let sourceTopic = "source_topic"
        public static let sourcePartition = "source_partition"
        public static let sourceOffset = "source_offset"
    }

    public let name = "schema-state"
    /// Where the state goes. Default in the command: `schema-state`.
    public let stateTopic: String
    private let producer: KafkaProducer
    private let readerProperties: (brokers: String, properties: [String: String])
    private let logger: Logger

    /// `brokers` and `kafkaProperties` serve the reader that looks the tenant's keys up in the
    /// state topic when a `snapshot_end` comes.
    public init(
        stateTopic: String, producer: KafkaProducer, brokers: String, kafkaProperties: [String: String] = [:],
        logger: Logger
    ) {
        self.stateTopic = stateTopic
        self.producer = producer
        readerProperties = (brokers, kafkaProperties)
        self.logger = logger
    }

    public func handle(_ consumed: ConsumedEvent) async throws(EventHandlerError) {
        var records = try Self.records(for: consumed, stateTopic: stateTopic)
        if consumed.event.kind == "snapshot_end" {
            records = try await tombstonesForUnlisted(consumed) + records
        }
        guard !records.isEmpty else { return }
        for result in await producer.send(records) {
            if case .failure(let error) = result {
                throw .retriable("writing to \(stateTopic): \(error)")
            }
        }
        logger.debug("state written", metadata: [
            "event-id": "\(consumed.event.eventID)", "keys": "\(records.compactMap(\.key).map { String(decoding: $0, as: UTF8.self) })"])
    }

    /// After a snapshot of a tenant, tombstones for the keys of the tenant's objects that the
    /// state topic holds and the snapshot did not list: they are gone from the source. The state
    /// topic is a function of the events before this one, so this is too.
    private func tombstonesForUnlisted(_ consumed: ConsumedEvent) async throws(EventHandlerError) -> [KafkaRecord] {
        let event = consumed.event
        guard let tenant = event.tenantID else { return [] }
        let contents: SchemaStateContents
        do {
            let reader = try KafkaRecordReader(
                bootstrapServers: readerProperties.brokers, properties: readerProperties.properties, logger: logger)
            contents = try await SchemaStateContents.read(topic: stateTopic, reader: reader, logger: logger)
            try? await reader.close()
        } catch {
            throw .retriable("reading \(stateTopic) for the end of snapshot \(event.snapshotID ?? "?"): \(error)")
        }
        let listed = Set((event.snapshotObjects ?? []).compactMap(\.schemaAndName).map { "\(tenant)/\($0.schema).\($0.name)" })
        let headers = Self.headers(for: consumed)
        return contents.objects.filter { $0.value.tenant == tenant && !listed.contains($0.key) }.keys.sorted().map { key in
            KafkaRecord(topic: stateTopic, key: key, value: [UInt8](), headers: headers)
        }
    }

    private static func headers(for consumed: ConsumedEvent) -> [KafkaHeader] {
        var headers = [
            KafkaHeader(name: Header.eventID, value: consumed.event.eventID),
            KafkaHeader(name: Header.sourceTopic, value: consumed.topic),
            KafkaHeader(name: Header.sourcePartition, value: String(consumed.partition)),
            KafkaHeader(name: Header.sourceOffset, value: String(consumed.offset)),
        ]
        if let sequence = consumed.event.tenantSeq {
            headers.append(KafkaHeader(name: Header.tenantSequence, value: String(sequence)))
        }
        return headers
    }

    /// The state records one event becomes; empty when it changes no object's state.
    static func records(for consumed: ConsumedEvent, stateTopic: String) throws(EventHandlerError) -> [KafkaRecord] {
        let event = consumed.event
        guard let tenant = event.tenantID else { return [] }
        let headers = Self.headers(for: consumed)
        func key(_ schema: String, _ name: String) -> String { "\(tenant)/\(schema).\(name)" }
        func tombstone(_ schema: String, _ name: String) -> KafkaRecord {
            KafkaRecord(topic: stateTopic, key: key(schema, name), value: [UInt8](), headers: headers)
        }
        func shape(_ document: StateRecord) throws(EventHandlerError) -> [UInt8] {
            do {
                return try document.encoded()
            } catch {
                throw .permanent("cannot encode the state of \(event.objectIdentity ?? "?"): \(error)")
            }
        }
        let source = StateRecord.Source(topic: consumed.topic, partition: consumed.partition, offset: consumed.offset)
        let cursor = KafkaRecord(
            topic: stateTopic, key: tenant,
            value: try shape(StateRecord(
                tenant: tenant, database: event.database, objectType: StateRecord.tenantCursor, shape: .null,
                eventID: event.eventID, tenantSeq: event.tenantSeq, occurredAt: event.occurredAt, source: source)),
            headers: headers)
        guard ["ddl", "drift", "snapshot"].contains(event.kind) else { return [cursor] }
        if let table = event.table, let raw = Self.member("table", of: consumed.value) {
            if event.command.hasPrefix("DROP") || event.drift == "dropped" {
                return [tombstone(table.schema, table.name), cursor]
            }
            var records: [KafkaRecord] = []
            let oldSchema = event.changes?.schemaChanged?.old ?? table.schema
            let oldName = event.changes?.tableRenamed?.old ?? table.name
            if oldSchema != table.schema || oldName != table.name {
                records.append(tombstone(oldSchema, oldName))
            }
            let document = StateRecord(
                tenant: tenant, database: event.database, objectType: "table", shape: raw, eventID: event.eventID,
                tenantSeq: event.tenantSeq, occurredAt: event.occurredAt, source: source)
            records.append(KafkaRecord(topic: stateTopic, key: key(table.schema, table.name), value: try shape(document), headers: headers))
            return records + [cursor]
        }
        if let enumType = event.enumType, let raw = Self.member("enum", of: consumed.value) {
            let document = StateRecord(
                tenant: tenant, database: event.database, objectType: "type", shape: raw, eventID: event.eventID,
                tenantSeq: event.tenantSeq, occurredAt: event.occurredAt, source: source)
            return [
                KafkaRecord(topic: stateTopic, key: key(enumType.schema, enumType.name), value: try shape(document), headers: headers),
                cursor,
            ]
        }
        return [cursor]
    }

    /// One member of the event's JSON object, unchanged, so the state holds the shape exactly as
    /// the capture wrote it (including fields this version does not decode).
    private static func member(_ name: String, of value: [UInt8]) -> JSONValue? {
        guard let object = try? JSONDecoder().decode([String: JSONValue].self, from: Data(value)) else { return nil }
        return object[name]
    }
}

/// The value of one `schema-state` record.
public struct StateRecord: Sendable, Codable, Equatable {
    public struct Source: Sendable, Codable, Equatable {
        public var topic: String
        public var partition: Int32
        public var offset: Int64
    }

    /// ``objectType`` of a tenant's cursor record (key `<tenant>`), whose shape is null.
    public static let tenantCursor = "tenant"

    public var tenant: String
    public var database: String?
    /// `table`, `type`, or ``tenantCursor``.
    public var objectType: String
    /// The `table` or `enum` member of the event that produced it.
    public var shape: JSONValue
    public var eventID: String
    public var tenantSeq: Int64?
    public var occurredAt: String
    /// The events-topic record it was read from: bootstrapping continues after it.
    public var source: Source

    enum CodingKeys: String, CodingKey {
        case tenant, database, shape, source
        case objectType = "object_type"
        case eventID = "event_id"
        case tenantSeq = "tenant_seq"
        case occurredAt = "occurred_at"
    }

    func encoded() throws -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return Array(try encoder.encode(self))
    }
}

/// Any JSON value, kept as it was read so it can be written back unchanged.
public enum JSONValue: Sendable, Codable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JSONValue].self))
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        switch self {
        case .null: try container.encodeNil()
        case .bool(let value): try container.encode(value)
        case .number(let value):
            if value == value.rounded(), abs(value) < 1e15 {
                try container.encode(Int64(value))
            } else {
                try container.encode(value)
            }
        case .string(let value): try container.encode(value)
        case .array(let value): try container.encode(value)
        case .object(let value): try container.encode(value)
        }
    }
}
