import Consumers
import Foundation
import Kafka
import TestSupport

/// Events as the capture SQL emits them under the issue-15 contract (`tenant_seq`, `database`,
/// `snapshot` kinds), built here because that SQL is not on this branch. The tests that use them
/// should also run end to end, from DDL through the relay, once it is (see each test's note).
struct SyntheticEvent: Sendable {
    var eventID = UUID().uuidString.lowercased()
    var kind = "ddl"
    var command = "CREATE TABLE"
    var tenant: String? = "acme"
    var tenantSeq: Int64?
    var database: String? = "app"
    var table: String? = "orders"
    var columns: [(name: String, type: String)] = [("id", "integer")]
    /// `snapshot` and `snapshot_end` events: the snapshot call's id.
    var snapshotID: String?
    /// `snapshot_end` events: the identities of the tables the snapshot covered.
    var snapshotTables: [String]?

    /// A snapshot call for `tenant`: one `snapshot` event per table, then `snapshot_end`
    /// listing them, numbered from `firstSequence`.
    static func snapshot(
        tenant: String, firstSequence: Int64, tables: [(name: String, columns: [(name: String, type: String)])]
    ) -> [SyntheticEvent] {
        let id = UUID().uuidString.lowercased()
        var events = tables.enumerated().map { index, table in
            SyntheticEvent(
                kind: "snapshot", command: "SNAPSHOT", tenant: tenant, tenantSeq: firstSequence + Int64(index),
                table: table.name, columns: table.columns, snapshotID: id)
        }
        events.append(SyntheticEvent(
            kind: "snapshot_end", command: "SNAPSHOT END", tenant: tenant, tenantSeq: firstSequence + Int64(tables.count),
            table: nil, snapshotID: id, snapshotTables: tables.map { "tenant_\(tenant).\($0.name)" }))
        return events
    }

    var consumed: ConsumedEvent {
        ConsumedEvent(
            event: try! SchemaChangeEvent.decode(Array(json.utf8)), topic: "schema-changes", partition: 0, offset: 0,
            key: key, value: Array(json.utf8))
    }

    /// The record key the relay uses: the tenant.
    var key: String { tenant ?? "-" }

    var json: String {
        var document: [String: Any] = [
            "version": 1, "kind": kind, "event_id": eventID, "command": command,
            "occurred_at": "2026-11-30T06:00:00Z", "transaction_id": 1, "actor": "app",
            "tenant_id": tenant as Any? ?? NSNull(), "tenant_seq": tenantSeq as Any? ?? NSNull(),
            "database": database as Any? ?? NSNull(),
            "schema_name": tenant.map { "tenant_\($0)" } as Any? ?? NSNull(),
        ]
        if let table {
            let schema = tenant.map { "tenant_\($0)" } ?? "public"
            document["object_type"] = "table"
            document["object_identity"] = "\(schema).\(table)"
            document["table"] = [
                "schema": schema, "name": table, "partitioned": false, "primary_key": [String](),
                "columns": columns.enumerated().map { index, column in
                    [
                        "name": column.name, "type": column.type, "nullable": true, "position": index + 1,
                        "attnum": index + 1,
                    ] as [String: Any]
                },
            ] as [String: Any]
        }
        if kind == "ddl", command == "CREATE TABLE" {
            // As capture labels it (sql/016): a new table is additive.
            document["changes"] = ["compatibility": "additive"]
        }
        if let snapshotID {
            document["snapshot_id"] = snapshotID
        }
        if let snapshotTables {
            document["snapshot_objects"] = snapshotTables.map { ["object_type": "table", "object_identity": $0] }
        }
        let data = try! JSONSerialization.data(withJSONObject: document, options: [.sortedKeys])
        return String(decoding: data, as: UTF8.self)
    }
}

/// Produces `events` in order (each keyed by its tenant, as the relay does) and waits for the
/// broker's acknowledgements.
func produce(_ events: [SyntheticEvent], to topic: String, on broker: KafkaDevelopmentBroker) async throws {
    let producer = try KafkaProducer(
        configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers),
        logger: makeKafkaTestLogger("test.synthetic-producer"))
    for event in events {
        _ = try await producer.send(KafkaRecord(topic: topic, key: event.key, value: event.json))
    }
    await producer.shutdown()
}

extension SyntheticEvent {
    /// Two tenants' short history: acme creates `orders` and `scratch`, widens `orders`, drops
    /// `scratch` and places an order (a domain event); globex creates `invoices`.
    static let shortHistory = [
        SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 1, table: "orders"),
        SyntheticEvent(command: "CREATE TABLE", tenant: "acme", tenantSeq: 2, table: "scratch"),
        SyntheticEvent(
            command: "ALTER TABLE", tenant: "acme", tenantSeq: 3, table: "orders",
            columns: [("id", "integer"), ("total", "numeric(12,2)")]),
        SyntheticEvent(command: "DROP TABLE", tenant: "acme", tenantSeq: 4, table: "scratch"),
        SyntheticEvent(kind: "domain", command: "order.placed", tenant: "acme", tenantSeq: 5, table: nil),
        SyntheticEvent(command: "CREATE TABLE", tenant: "globex", tenantSeq: 1, table: "invoices"),
    ]
}
