import Foundation
import Kafka
import Logging

/// A handler that can be built from the `schema-state` topic instead of the whole history
/// (`--bootstrap-from schema-state`).
public protocol BootstrappableHandler: TenantSequenceRecording {
    /// Whether the handler holds no state at all yet: only then is it built from the state
    /// topic, so a consumer restarted later never has its state replaced.
    func holdsNoState() async throws(EventHandlerError) -> Bool
}

/// What the state topic holds, read to its end: each object's latest shape, each tenant's
/// cursor, and how far into the events topic that state goes.
struct SchemaStateContents {
    /// Live objects by key (tombstoned keys removed).
    var objects: [String: StateRecord] = [:]
    /// The cursor record of each tenant, by tenant.
    var cursors: [String: StateRecord] = [:]
    /// Per events-topic partition, the highest offset the state covers.
    var covered: [String: [Int32: Int64]] = [:]

    /// Reads every partition of `topic` from its first stored record to its high watermark.
    static func read(topic: String, reader: KafkaRecordReader, logger: Logger) async throws(KafkaError) -> SchemaStateContents {
        var contents = SchemaStateContents()
        var partition: Int32 = 0
        while true {
            let marks: KafkaWatermarks
            do {
                marks = try await reader.watermarks(topic: topic, partition: partition)
            } catch where [.unknownPartition, .unknownTopicOrPartition].contains(error.code) && partition > 0 {
                break
            }
            if marks.high > marks.low {
                let lookups = try await reader.read(topic: topic, partition: partition, offsets: marks.low..<marks.high)
                for offset in lookups.keys.sorted() {
                    guard case .record(let message)? = lookups[offset] else { continue }
                    contents.add(message, logger: logger)
                }
            }
            partition += 1
        }
        return contents
    }

    private mutating func add(_ message: KafkaMessage, logger: Logger) {
        guard let key = message.key.map({ String(decoding: $0, as: UTF8.self) }) else { return }
        func header(_ name: String) -> String? {
            message.headers.last { $0.name == name }?.value.map { String(decoding: $0, as: UTF8.self) }
        }
        if let topic = header(SchemaStateHandler.Header.sourceTopic),
           let partition = header(SchemaStateHandler.Header.sourcePartition).flatMap(Int32.init),
           let offset = header(SchemaStateHandler.Header.sourceOffset).flatMap(Int64.init) {
            covered[topic, default: [:]][partition] = max(covered[topic]?[partition] ?? offset, offset)
        }
        guard let value = message.value, !value.isEmpty else {
            objects[key] = nil
            return
        }
        do {
            let record = try JSONDecoder().decode(StateRecord.self, from: Data(value))
            if record.objectType == StateRecord.tenantCursor {
                cursors[record.tenant] = record
            } else {
                objects[key] = record
            }
        } catch {
            logger.warning("skipping an unreadable state record", metadata: ["key": "\(key)", "error": "\(error)"])
        }
    }

    /// The events that rebuild this state in an empty handler: per tenant, each object as a
    /// `CREATE` with its full shape (in `tenant_seq` order), then the cursor as a domain event,
    /// so the handler records the tenant's last sequence number. Each keeps the id and position
    /// of the event the state came from.
    func replayEvents() throws -> [ConsumedEvent] {
        var events: [ConsumedEvent] = []
        for tenant in Set(objects.values.map(\.tenant)).union(cursors.keys).sorted() {
            let records = objects.filter { $0.value.tenant == tenant }
                .sorted { ($0.value.tenantSeq ?? 0, $0.key) < ($1.value.tenantSeq ?? 0, $1.key) }.map(\.value)
            for record in records + (cursors[tenant].map { [$0] } ?? []) {
                events.append(try record.replayEvent())
            }
        }
        return events
    }
}

extension StateRecord {
    /// This record as the event a handler would have seen for an object that did not exist
    /// before: `CREATE TABLE` / `CREATE TYPE` with the full shape, or, for a cursor, a domain
    /// event carrying only the tenant's sequence number.
    func replayEvent() throws -> ConsumedEvent {
        var document: [String: JSONValue] = [
            "version": .number(1), "event_id": .string(eventID), "tenant_id": .string(tenant),
            "occurred_at": .string(occurredAt), "tenant_seq": tenantSeq.map { .number(Double($0)) } ?? .null,
            "database": database.map(JSONValue.string) ?? .null,
        ]
        switch objectType {
        case "table", "type":
            guard case .object(let shape) = shape, case .string(let schema)? = shape["schema"],
                  case .string(let name)? = shape["name"] else {
                throw SchemaStateBootstrapError.unreadable("state record of \(tenant) without a schema and name")
            }
            let isTable = objectType == "table"
            document["kind"] = .string("ddl")
            document["command"] = .string(isTable ? "CREATE TABLE" : "CREATE TYPE")
            document["object_type"] = .string(objectType)
            document["object_identity"] = .string("\(schema).\(name)")
            document["schema_name"] = .string(schema)
            document[isTable ? "table" : "enum"] = self.shape
            document["previous_shape_known"] = .bool(false)
        default:
            document["kind"] = .string("domain")
            document["command"] = .string("outbox-bridge.bootstrap")
        }
        let value = Array(try JSONEncoder().encode(document))
        return ConsumedEvent(
            event: try SchemaChangeEvent.decode(value), topic: source.topic, partition: source.partition,
            offset: source.offset, key: tenant, value: value)
    }
}

enum SchemaStateBootstrapError: Error, CustomStringConvertible {
    case unreadable(String)

    var description: String {
        switch self {
        case .unreadable(let problem): "cannot bootstrap from the state topic: \(problem)"
        }
    }
}
