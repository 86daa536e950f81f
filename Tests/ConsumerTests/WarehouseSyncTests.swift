import Consumers
import Foundation
import Logging
import Outbox
import Postgres
import TestSupport
import Testing

@Suite("Warehouse sync mirrors tenant tables from real captured events")
struct WarehouseSyncTests {
    static let lifecycle = """
        CREATE SCHEMA tenant_acme;
        CREATE TYPE tenant_acme.status AS ENUM ('on', 'off');
        CREATE TABLE tenant_acme.sensors (
            id integer PRIMARY KEY, name varchar(20) NOT NULL, reading real, price numeric(8,2),
            status tenant_acme.status, tags text[], created timestamptz NOT NULL DEFAULT now());
        COMMENT ON TABLE tenant_acme.sensors IS 'IoT sensors';
        ALTER TABLE tenant_acme.sensors ADD COLUMN humidity numeric(5,2) NOT NULL DEFAULT 0;
        ALTER TABLE tenant_acme.sensors ALTER COLUMN id TYPE bigint, ALTER COLUMN name TYPE varchar(50),
            ALTER COLUMN reading TYPE double precision, ALTER COLUMN price TYPE numeric(12,2);
        ALTER TABLE tenant_acme.sensors ALTER COLUMN humidity TYPE text;
        ALTER TABLE tenant_acme.sensors RENAME COLUMN reading TO temperature;
        COMMENT ON COLUMN tenant_acme.sensors.temperature IS 'Celsius';
        ALTER TABLE tenant_acme.sensors RENAME TO devices;
        ALTER TABLE tenant_acme.devices DROP COLUMN status;
        ALTER TABLE tenant_acme.devices ALTER COLUMN name DROP NOT NULL;
        CREATE TABLE tenant_acme.scratch (a int);
        DROP TABLE tenant_acme.scratch;
        CREATE TABLE tenant_acme.report AS SELECT 1::int AS n, 'x'::text AS label;
        CREATE TABLE public.not_a_tenant (a int);
        SELECT platform.emit('acme', 'OrderPlaced', '{"order": 1}');
        """

    @Test("keep policy: create, add, widen, rename column and table, comments, dropped column and table kept as deprecated")
    func lifecycleKeep() async throws {
        var fixture = try await WarehouseSyncFixture.make("whkeep")
        let events = try await fixture.capture(Self.lifecycle)
        let handler = fixture.handler(.keep)
        try await handler.apply(events)

        let catalog = try await fixture.warehouseCatalog()
        let date = String(events[0].event.occurredAt.prefix(10).filter(\.isNumber))
        let dropColumnEvent = try #require(events.first { $0.event.changes?.columnsDropped.isEmpty == false })
        let dropTableEvent = try #require(events.first { $0.event.command == "DROP TABLE" })
        let deprecatedColumn = "status__deprecated_\(date)_\(dropColumnEvent.event.eventID.prefix(8))"
        let deprecatedTable = "scratch__deprecated_\(date)_\(dropTableEvent.event.eventID.prefix(8))"
        #expect(catalog == [
            "column tenant_acme.devices.created timestamp with time zone comment=-",
            "column tenant_acme.devices.humidity text comment=-",
            "column tenant_acme.devices.id bigint not null comment=-",
            "column tenant_acme.devices.name character varying(50) comment=-",
            "column tenant_acme.devices.price numeric(12,2) comment=-",
            "column tenant_acme.devices.\(deprecatedColumn) text comment=-",
            "column tenant_acme.devices.tags text[] comment=-",
            "column tenant_acme.devices.temperature double precision comment=Celsius",
            "column tenant_acme.report.label text comment=-",
            "column tenant_acme.report.n integer comment=-",
            "column tenant_acme.\(deprecatedTable).a integer comment=-",
            "primary key tenant_acme.devices PRIMARY KEY (id)",
            "schema tenant_acme",
            "table tenant_acme.devices comment=IoT sensors",
            "table tenant_acme.report comment=-",
            "table tenant_acme.\(deprecatedTable) comment=-",
        ].sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) })
        // Every event is recorded, the ignored ones (enum type, public schema, domain) too.
        #expect(try await fixture.appliedEventIDs() == Set(events.map(\.event.eventID)))
        let outcomes = try await fixture.warehouseSQL.query(
            "SELECT command, outcome FROM outbox_warehouse.applied_events WHERE outcome = 'ignored' ORDER BY \"offset\"")
        #expect(outcomes.map { $0["command"] ?? "" } == ["CREATE TYPE", "CREATE TABLE", "OrderPlaced"])
    }

    @Test("drop policy: dropped column, table and schema are dropped")
    func lifecycleDrop() async throws {
        var fixture = try await WarehouseSyncFixture.make("whdrop")
        let handler = fixture.handler(.drop)
        try await handler.apply(try await fixture.capture(Self.lifecycle))
        #expect(try await fixture.warehouseTables("tenant_acme") == ["devices", "report"])
        #expect(try await fixture.warehouseColumns("tenant_acme", "devices") == [
            "id", "name", "temperature", "price", "tags", "created", "humidity",
        ])

        try await handler.apply(try await fixture.capture("CREATE SCHEMA tenant_gone; CREATE TABLE tenant_gone.t (a int);"))
        #expect(try await fixture.warehouseTables("tenant_gone") == ["t"])
        try await handler.apply(try await fixture.capture("DROP SCHEMA tenant_gone CASCADE; DROP SCHEMA tenant_acme CASCADE;"))
        #expect(try await fixture.warehouseCatalog().isEmpty)
    }

    @Test("keep policy: DROP SCHEMA CASCADE renames the schema as deprecated with its tables inside")
    func dropSchemaKeep() async throws {
        var fixture = try await WarehouseSyncFixture.make("whschemakeep")
        let handler = fixture.handler(.keep)
        try await handler.apply(try await fixture.capture("CREATE SCHEMA tenant_gone; CREATE TABLE tenant_gone.t (a int);"))
        let drops = try await fixture.capture("DROP SCHEMA tenant_gone CASCADE;")
        try await handler.apply(drops)
        let schemaEvent = try #require(drops.last?.event)
        let tableEvent = try #require(drops.first?.event)
        let date = String(schemaEvent.occurredAt.prefix(10).filter(\.isNumber))
        let schema = "tenant_gone__deprecated_\(date)_\(schemaEvent.eventID.prefix(8))"
        #expect(try await fixture.warehouseTables(schema) == ["t__deprecated_\(date)_\(tableEvent.eventID.prefix(8))"])
        #expect(try await fixture.warehouseTables("tenant_gone").isEmpty)
    }

    @Test("an unsafe retype is permanent, rolls back the whole event (also its safe parts) and is not recorded")
    func unsafeRetype() async throws {
        var fixture = try await WarehouseSyncFixture.make("whunsafe")
        let handler = fixture.handler()
        try await handler.apply(try await fixture.capture("""
            CREATE SCHEMA tenant_acme;
            CREATE TABLE tenant_acme.t (id int PRIMARY KEY, code text, big bigint);
            """))
        let before = try await fixture.warehouseCatalog()
        let appliedBefore = try await fixture.appliedEventIDs()

        let textToInt = try await fixture.capture("ALTER TABLE tenant_acme.t ALTER COLUMN code TYPE integer USING code::integer;")
        // One statement: a safe ADD COLUMN and a widening together with a narrowing.
        let mixed = try await fixture.capture("""
            ALTER TABLE tenant_acme.t ADD COLUMN extra int, ALTER COLUMN id TYPE bigint, ALTER COLUMN big TYPE integer;
            """)
        for event in textToInt + mixed {
            let outcome = await HandleOutcome.of(handler, event)
            #expect(outcome.isPermanent, "\(outcome)")
            if case .permanent(let reason) = outcome { #expect(reason.contains("not a safe widening")) }
            #expect(try await fixture.warehouseCatalog() == before)
            #expect(try await fixture.appliedEventIDs() == appliedBefore)
        }

        // Later events still apply: the warehouse keeps the wider types it has (text, bigint)
        // and picks up what the dead-lettered event added.
        try await handler.apply(try await fixture.capture("ALTER TABLE tenant_acme.t ADD COLUMN later date;"))
        let after = try await fixture.warehouseCatalog()
        #expect(after.contains("column tenant_acme.t.code text comment=-"))
        #expect(after.contains("column tenant_acme.t.big bigint comment=-"))
        #expect(after.contains("column tenant_acme.t.id bigint not null comment=-"))
        #expect(after.contains("column tenant_acme.t.extra integer comment=-"))
        #expect(after.contains("column tenant_acme.t.later date comment=-"))
    }

    @Test("redelivering every event from the start changes nothing")
    func redelivery() async throws {
        var fixture = try await WarehouseSyncFixture.make("whredeliver")
        let events = try await fixture.capture(Self.lifecycle)
        try await fixture.handler().apply(events)
        let catalog = try await fixture.warehouseCatalog()
        let recorded = try await fixture.warehouseSQL.query(
            "SELECT event_id::text, applied_at::text FROM outbox_warehouse.applied_events ORDER BY event_id")

        // All again, from a fresh handler (a restarted consumer), and once more interleaved.
        try await fixture.handler().apply(events)
        let again = fixture.handler()
        for event in events + events.reversed() { try await again.handle(event) }

        #expect(try await fixture.warehouseCatalog() == catalog)
        let recordedAgain = try await fixture.warehouseSQL.query(
            "SELECT event_id::text, applied_at::text FROM outbox_warehouse.applied_events ORDER BY event_id")
        #expect(recordedAgain.map { [$0[0], $0[1]] } == recorded.map { [$0[0], $0[1]] })
        #expect(recorded.count == events.count)
    }

    @Test("the event id is recorded in the DDL's transaction: DDL failing after the insert leaves no id")
    func idInSameTransaction() async throws {
        var fixture = try await WarehouseSyncFixture.make("whtxn")
        let handler = fixture.handler { $0.lockTimeout = .milliseconds(300) }
        try await handler.apply(try await fixture.capture("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.t (n int);"))
        let widen = try #require(try await fixture.capture("ALTER TABLE tenant_acme.t ALTER COLUMN n TYPE bigint;").first)

        // 1. A warehouse view on the column makes ALTER COLUMN TYPE fail (after the id's
        //    insert, which comes first in the transaction): permanent, nothing recorded.
        try await fixture.warehouseSQL.query("CREATE VIEW tenant_acme.v AS SELECT n FROM tenant_acme.t")
        let blocked = await HandleOutcome.of(handler, widen)
        #expect(blocked.isPermanent, "\(blocked)")
        #expect(!(try await fixture.appliedEventIDs().contains(widen.event.eventID)))
        #expect(try await fixture.warehouseCatalog().contains("column tenant_acme.t.n integer comment=-"))
        try await fixture.warehouseSQL.query("DROP VIEW tenant_acme.v")

        // 2. A lock held by a warehouse reader: lock_timeout, retriable, nothing recorded.
        let reader = try await fixture.warehouse.connect()
        try await reader.query("BEGIN")
        try await reader.query("LOCK TABLE tenant_acme.t IN ACCESS SHARE MODE")
        let locked = await HandleOutcome.of(handler, widen)
        #expect(locked.isRetriable, "\(locked)")
        #expect(!(try await fixture.appliedEventIDs().contains(widen.event.eventID)))
        try await reader.query("ROLLBACK")

        // 3. The retry applies it, once.
        try await handler.handle(widen)
        #expect(try await fixture.appliedEventIDs().contains(widen.event.eventID))
        #expect(try await fixture.warehouseCatalog().contains("column tenant_acme.t.n bigint comment=-"))
    }

    @Test("a lost warehouse connection is retriable and the next attempt reconnects")
    func reconnects() async throws {
        var fixture = try await WarehouseSyncFixture.make("whreconnect")
        let handler = fixture.handler()
        let events = try await fixture.capture("CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.t (n int);")
        try await handler.handle(events[0])
        let terminated = try await fixture.warehouseSQL.query(
            """
            SELECT pg_terminate_backend(pid) AS done FROM pg_stat_activity
            WHERE datname = current_database() AND application_name = 'outbox-bridge-warehouse-sync'
            """)
        #expect(terminated.count == 1)
        let lost = await HandleOutcome.of(handler, events[1])
        #expect(lost.isRetriable, "\(lost)")
        try await handler.handle(events[1])
        #expect(try await fixture.warehouseTables("tenant_acme") == ["t"])
        #expect(try await fixture.appliedEventIDs() == Set(events.map(\.event.eventID)))
    }

    @Test("events whose previous shape is unknown reconcile from the full table shape")
    func unknownPreviousShape() async throws {
        var fixture = try await WarehouseSyncFixture.make("whunknown")
        let handler = fixture.handler()
        // The table exists before the sync saw anything, and the capture forgot its snapshot.
        _ = try await fixture.capture("""
            CREATE SCHEMA tenant_acme;
            CREATE TABLE tenant_acme.old (id int PRIMARY KEY, a text);
            DELETE FROM platform.table_shapes;
            """)
        let alter = try await fixture.capture("ALTER TABLE tenant_acme.old ADD COLUMN b numeric(6,1);")
        // No diff without an earlier shape, only the label: anything may have changed.
        let labelOnly = try JSONDecoder().decode(TableChanges.self, from: Data(#"{"compatibility": "breaking"}"#.utf8))
        #expect(alter.map(\.event.changes) == [labelOnly])
        try await handler.apply(alter)
        #expect(try await fixture.warehouseColumns("tenant_acme", "old") == ["id", "a", "b"])

        // The warehouse lost a column meanwhile: the next unknown-shape event adds it back.
        try await fixture.warehouseSQL.query("ALTER TABLE tenant_acme.old DROP COLUMN a")
        let again = try await fixture.capture("DELETE FROM platform.table_shapes; ALTER TABLE tenant_acme.old ADD COLUMN c int;")
        #expect(again.map(\.event.changes) == [labelOnly])
        try await handler.apply(again)
        #expect(try await fixture.warehouseColumns("tenant_acme", "old") == ["id", "b", "a", "c"])
        #expect(try await fixture.warehouseCatalog().contains("primary key tenant_acme.old PRIMARY KEY (id)"))
    }

    @Test("hostile names: quotes, semicolons, comment terminators, unicode, 63-byte names and reserved words")
    func hostileNames() async throws {
        var fixture = try await WarehouseSyncFixture.make("whhostile")
        let long = String(repeating: "é", count: 31) + "x"  // 63 bytes
        let long2 = String(repeating: "ü", count: 31) + "y"
        #expect(long.utf8.count == 63)
        let schema = #"tenant_we"ird; DROP SCHEMA x --*/"#
        let events = try await fixture.capture(#"""
            CREATE SCHEMA "tenant_we""ird; DROP SCHEMA x --*/";
            CREATE TABLE "tenant_we""ird; DROP SCHEMA x --*/"."select" (
                "user" int PRIMARY KEY, "a""b" text, "semi;colon" int, "*/ comment /*" int, "ünïcødé 🚀" text,
                "\#(long)" int, "order" text, "constructor" int, "__proto__" int, "a-b" int);
            COMMENT ON TABLE "tenant_we""ird; DROP SCHEMA x --*/"."select" IS 'it''s; DROP TABLE x; --';
            ALTER TABLE "tenant_we""ird; DROP SCHEMA x --*/"."select" RENAME COLUMN "a""b" TO "b""a'; --";
            ALTER TABLE "tenant_we""ird; DROP SCHEMA x --*/"."select" ADD COLUMN "\#(long2)" varchar(3);
            ALTER TABLE "tenant_we""ird; DROP SCHEMA x --*/"."select" ALTER COLUMN "\#(long2)" TYPE varchar(9);
            ALTER TABLE "tenant_we""ird; DROP SCHEMA x --*/"."select" DROP COLUMN "\#(long)";
            ALTER TABLE "tenant_we""ird; DROP SCHEMA x --*/"."select" RENAME TO "from""; --";
            """#)
        try await fixture.handler(.keep).apply(events)

        let columns = try await fixture.warehouseColumns(schema, #"from"; --"#)
        let dropEvent = try #require(events.first { $0.event.changes?.columnsDropped.isEmpty == false })
        let date = String(dropEvent.event.occurredAt.prefix(10).filter(\.isNumber))
        let deprecated = String(repeating: "é", count: 16) + "__deprecated_\(date)_\(dropEvent.event.eventID.prefix(8))"
        #expect(deprecated.utf8.count == 62)
        #expect(columns == [
            "user", #"b"a'; --"#, "semi;colon", "*/ comment /*", "ünïcødé 🚀", deprecated, "order", "constructor",
            "__proto__", "a-b", long2,
        ])
        // Same names and types as the source, apart from the kept column.
        let source = try await fixture.sourceCatalog().filter { !$0.contains(long) }
        let warehouse = try await fixture.warehouseCatalog().filter { !$0.contains(deprecated) }
        #expect(warehouse == source)
        #expect(warehouse.contains(#"table \#(schema).from"; -- comment=it's; DROP TABLE x; --"#))
    }
}
