import Foundation

/// An outbox event as consumers receive it: the JSON document `sql/event.schema.json`
/// describes, decoded. Schema changes (`kind == "ddl"`) carry the table's shape after the
/// change and, for `ALTER TABLE`, what changed, so a consumer never has to query the source
/// database. Domain events (`kind == "domain"`) carry their application's `payload`. Drift
/// events (`kind == "drift"`, command `DRIFT`) report DDL the event triggers never saw, with the
/// same table shape and changes; `drift` says whether the table was created, altered or dropped.
public struct SchemaChangeEvent: Sendable, Hashable, Decodable {
    public var version: Int
    public var kind: String
    public var eventID: String
    /// The command tag (`ALTER TABLE`), or a domain event's type.
    public var command: String
    /// `table`, `table column`, `schema`, `type`; `nil` for domain events.
    public var objectType: String?
    public var objectIdentity: String?
    public var schemaName: String?
    public var tenantID: String?
    public var occurredAt: String
    public var transactionID: Int64?
    public var actor: String?
    /// The table after the change; for drops, the shape that was dropped.
    public var table: TableShape?
    /// What an `ALTER TABLE` or `COMMENT` changed, and for every DDL and drift event since
    /// migration 16 its ``TableChanges/compatibility`` (alone, with empty lists, when there is no
    /// diff); `nil` in snapshot events and in older events without a diff.
    public var changes: TableChanges?
    /// Whether a snapshot of the table existed before this statement.
    public var previousShapeKnown: Bool?
    /// Drops: whether the object went by `CASCADE` rather than by name.
    public var cascade: Bool?
    /// `CREATE SCHEMA` / `DROP SCHEMA`.
    public var schema: SchemaName?
    /// `DROP SCHEMA`: identities of the tables dropped with it (each has its own event too).
    public var droppedTables: [String]?
    /// `CREATE TYPE … AS ENUM` / `ALTER TYPE … ADD VALUE`: every label after the change.
    public var enumType: EnumType?
    /// Drift events: `created`, `altered` or `dropped`.
    public var drift: String?
    /// The source database (`current_database()` where the event was captured); `nil` in events
    /// captured before the field existed.
    public var database: String?
    /// The tenant's sequence number: per tenant, gap-free and in commit order, so a consumer can
    /// tell a missed event from a repeated one. `nil` for events without a tenant and for events
    /// captured before sequence numbers existed.
    public var tenantSeq: Int64?
    /// `snapshot` and `snapshot_end` events: the id shared by every event of one snapshot call.
    public var snapshotID: String?
    /// `snapshot_end` events: every object the snapshot covered for the tenant.
    public var snapshotObjects: [SnapshotObject]?

    enum CodingKeys: String, CodingKey {
        case version, kind, command, actor, table, changes, cascade, schema, drift
        case eventID = "event_id"
        case objectType = "object_type"
        case objectIdentity = "object_identity"
        case schemaName = "schema_name"
        case tenantID = "tenant_id"
        case occurredAt = "occurred_at"
        case transactionID = "transaction_id"
        case previousShapeKnown = "previous_shape_known"
        case droppedTables = "dropped_tables"
        case enumType = "enum"
        case database
        case tenantSeq = "tenant_seq"
        case snapshotID = "snapshot_id"
        case snapshotObjects = "snapshot_objects"
    }

    /// Decodes an event from the bytes of a Kafka record's value.
    public static func decode(_ bytes: some Collection<UInt8>) throws -> SchemaChangeEvent {
        try JSONDecoder().decode(SchemaChangeEvent.self, from: Data(bytes))
    }
}

/// One object a snapshot covered, as a `snapshot_end` event lists it.
public struct SnapshotObject: Sendable, Hashable, Decodable {
    /// `table` or `type`.
    public var objectType: String
    /// `<schema>.<name>`, quoted as in DDL events.
    public var objectIdentity: String

    enum CodingKeys: String, CodingKey {
        case objectType = "object_type"
        case objectIdentity = "object_identity"
    }

    /// Schema and name from ``objectIdentity``, unquoted (`"My ""Schema"""."t"` gives
    /// `My "Schema"` and `t`); `nil` when it is not two dot-separated identifiers.
    public var schemaAndName: (schema: String, name: String)? {
        var parts: [String] = []
        var current = ""
        var quoted = false
        var characters = Array(objectIdentity)[...]
        while let character = characters.popFirst() {
            if quoted {
                if character == "\"" {
                    if characters.first == "\"" {
                        current.append("\"")
                        characters.removeFirst()
                    } else {
                        quoted = false
                    }
                } else {
                    current.append(character)
                }
            } else if character == "\"" {
                quoted = true
            } else if character == "." {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        parts.append(current)
        guard parts.count == 2, !quoted else { return nil }
        return (parts[0], parts[1])
    }
}

public struct SchemaName: Sendable, Hashable, Decodable {
    public var name: String
}

public struct TableShape: Sendable, Hashable, Decodable {
    public var schema: String
    public var name: String
    public var comment: String?
    public var partitioned: Bool?
    /// In attnum order; `nil` only in a drop event for a table whose shape was never captured.
    public var columns: [Column]?
    /// Column names in key order; empty when there is no primary key.
    public var primaryKey: [String]?

    enum CodingKeys: String, CodingKey {
        case schema, name, comment, partitioned, columns
        case primaryKey = "primary_key"
    }
}

public struct Column: Sendable, Hashable, Decodable {
    public var name: String
    /// `format_type` output: `integer`, `numeric(12,2)`, `character varying(20)`, `text[]`.
    public var type: String
    /// `false` only while a validated NOT NULL holds; a NOT VALID one leaves room for NULL rows.
    public var nullable: Bool
    /// `validated`, `not valid` (PostgreSQL 18+), or `nil` (no NOT NULL).
    public var notNull: String?
    public var `default`: String?
    public var generated: String?
    /// `stored`, `virtual` (PostgreSQL 18+: computed on read, never stored), or `nil`.
    public var generatedKind: String?
    /// `always`, `by default`, or `nil`.
    public var identity: String?
    /// 1-based ordinal among live columns.
    public var position: Int
    /// PostgreSQL's attnum: stable across renames, with gaps after drops.
    public var attnum: Int
    public var comment: String?

    enum CodingKeys: String, CodingKey {
        case name, type, nullable, `default`, generated, identity, position, attnum, comment
        case notNull = "not_null"
        case generatedKind = "generated_kind"
    }
}

public struct Rename: Sendable, Hashable, Decodable {
    public var old: String
    public var new: String

    public init(old: String, new: String) {
        self.old = old
        self.new = new
    }
}

public struct TableChanges: Sendable, Hashable, Decodable {
    public struct Retype: Sendable, Hashable, Decodable {
        public var column: String
        public var oldType: String
        public var newType: String
        enum CodingKeys: String, CodingKey {
            case column
            case oldType = "old_type"
            case newType = "new_type"
        }
    }

    public struct NullabilityChange: Sendable, Hashable, Decodable {
        public var column: String
        public var oldNullable: Bool
        public var newNullable: Bool
        enum CodingKeys: String, CodingKey {
            case column
            case oldNullable = "old_nullable"
            case newNullable = "new_nullable"
        }
    }

    public struct DefaultChange: Sendable, Hashable, Decodable {
        public var column: String
        public var oldDefault: String?
        public var newDefault: String?
        enum CodingKeys: String, CodingKey {
            case column
            case oldDefault = "old_default"
            case newDefault = "new_default"
        }
    }

    public struct CommentChange: Sendable, Hashable, Decodable {
        public var column: String?
        public var old: String?
        public var new: String?
        enum CodingKeys: String, CodingKey {
            case column, old, new
            case oldComment = "old_comment"
            case newComment = "new_comment"
        }

        public init(from decoder: any Decoder) throws {
            let container = try decoder.container(keyedBy: CodingKeys.self)
            column = try container.decodeIfPresent(String.self, forKey: .column)
            old = try container.decodeIfPresent(String.self, forKey: .old)
                ?? container.decodeIfPresent(String.self, forKey: .oldComment)
            new = try container.decodeIfPresent(String.self, forKey: .new)
                ?? container.decodeIfPresent(String.self, forKey: .newComment)
        }
    }

    public struct KeyChange: Sendable, Hashable, Decodable {
        public var old: [String]
        public var new: [String]
    }

    public struct GeneratedChange: Sendable, Hashable, Decodable {
        public var column: String
        public var oldExpression: String?
        public var newExpression: String?
        public var oldKind: String?
        public var newKind: String?
        enum CodingKeys: String, CodingKey {
            case column
            case oldExpression = "old_expression"
            case newExpression = "new_expression"
            case oldKind = "old_kind"
            case newKind = "new_kind"
        }
    }

    /// What the change means to readers and writers, computed in capture (`sql/README.md`, the
    /// compatibility table); `nil` in events captured before migration 16.
    public var compatibility: Compatibility?
    public var tableRenamed: Rename?
    public var schemaChanged: Rename?
    public var columnsAdded: [Column]
    public var columnsDropped: [Column]
    public var columnsRenamed: [Rename]
    public var columnsRetyped: [Retype]
    public var nullabilityChanged: [NullabilityChange]
    public var defaultsChanged: [DefaultChange]
    public var columnCommentsChanged: [CommentChange]
    public var commentChanged: CommentChange?
    public var primaryKeyChanged: KeyChange?
    /// SET / DROP EXPRESSION and generated columns added or dropped; `nil` in events captured
    /// before migration 14.
    public var generatedChanged: [GeneratedChange]?

    public enum Compatibility: String, Sendable, Hashable, Decodable {
        /// A drop, rename or retype, a nullability change, a NOT NULL column without a default.
        case breaking
        /// A new table, schema, enum, enum label, or column existing inserts need not name.
        case additive
        /// Comments only.
        case cosmetic
    }

    enum CodingKeys: String, CodingKey {
        case compatibility
        case tableRenamed = "table_renamed"
        case schemaChanged = "schema_changed"
        case columnsAdded = "columns_added"
        case columnsDropped = "columns_dropped"
        case columnsRenamed = "columns_renamed"
        case columnsRetyped = "columns_retyped"
        case nullabilityChanged = "nullability_changed"
        case defaultsChanged = "defaults_changed"
        case columnCommentsChanged = "column_comments_changed"
        case commentChanged = "comment_changed"
        case primaryKeyChanged = "primary_key_changed"
        case generatedChanged = "generated_changed"
    }

    /// Events without a diff (a CREATE, a DROP, an enum) carry only `compatibility`: their lists
    /// decode as empty.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        compatibility = try container.decodeIfPresent(Compatibility.self, forKey: .compatibility)
        tableRenamed = try container.decodeIfPresent(Rename.self, forKey: .tableRenamed)
        schemaChanged = try container.decodeIfPresent(Rename.self, forKey: .schemaChanged)
        columnsAdded = try container.decodeIfPresent([Column].self, forKey: .columnsAdded) ?? []
        columnsDropped = try container.decodeIfPresent([Column].self, forKey: .columnsDropped) ?? []
        columnsRenamed = try container.decodeIfPresent([Rename].self, forKey: .columnsRenamed) ?? []
        columnsRetyped = try container.decodeIfPresent([Retype].self, forKey: .columnsRetyped) ?? []
        nullabilityChanged = try container.decodeIfPresent([NullabilityChange].self, forKey: .nullabilityChanged) ?? []
        defaultsChanged = try container.decodeIfPresent([DefaultChange].self, forKey: .defaultsChanged) ?? []
        columnCommentsChanged = try container.decodeIfPresent([CommentChange].self, forKey: .columnCommentsChanged) ?? []
        commentChanged = try container.decodeIfPresent(CommentChange.self, forKey: .commentChanged)
        primaryKeyChanged = try container.decodeIfPresent(KeyChange.self, forKey: .primaryKeyChanged)
        generatedChanged = try container.decodeIfPresent([GeneratedChange].self, forKey: .generatedChanged)
    }
}

public struct EnumType: Sendable, Hashable, Decodable {
    public var schema: String
    public var name: String
    /// Every label in sort order, after the change.
    public var values: [String]
}
