import Consumers
import Foundation
import Logging
import Outbox
import Postgres
import TestSupport
import Testing

/// The SDK generator fed with events the real capture SQL wrote (read straight from the outbox,
/// no Kafka), so naming, typing, versioning and idempotency are checked quickly. The path through
/// the relay and Kafka is `SDKSyncTests`.
@Suite("sdk-sync generates compiling, versioned, injection-safe TypeScript")
struct SDKGenerationTests {
    @Test("Type map, nullability, enums and the runtime description; tsc --strict compiles it")
    func describesTables() async throws {
        let fixture = try await SDKFixture.start("sdk_types")
        try await fixture.run("""
            CREATE SCHEMA tenant_acme;
            CREATE TYPE tenant_acme.status AS ENUM ('on', 'off');
            CREATE TABLE tenant_acme.sensors (
                id bigint PRIMARY KEY, small smallint NOT NULL, whole integer, ratio real NOT NULL, precise float8,
                amount numeric(12,2), label character varying(20) NOT NULL, code char(3), body text, ident uuid,
                flag boolean NOT NULL, seen_at timestamptz, day date, at_time time(3), doc jsonb, raw json,
                tags text[], counts integer[], state tenant_acme.status NOT NULL, states tenant_acme.status[],
                spot point
            );
            """)
        let index = try fixture.index("acme")
        for line in [
            "export type Status = \"on\" | \"off\";",
            "export interface Sensors {",
            "  \"id\": string;", "  \"small\": number;", "  \"whole\": number | null;", "  \"ratio\": number;",
            "  \"precise\": number | null;", "  \"amount\": string | null;", "  \"label\": string;",
            "  \"code\": string | null;", "  \"body\": string | null;", "  \"ident\": string | null;",
            "  \"flag\": boolean;", "  \"seen_at\": string | null;", "  \"day\": string | null;",
            "  \"at_time\": string | null;", "  \"doc\": JsonValue | null;", "  \"raw\": JsonValue | null;",
            "  \"tags\": string[] | null;", "  \"counts\": number[] | null;", "  \"state\": Status;",
            "  \"states\": Status[] | null;", "  \"spot\": unknown | null;",
            "  \"sensors\": Sensors;",
            "      { name: \"amount\", pgType: \"numeric(12,2)\", tsType: \"string\", nullable: true },",
            "    primaryKey: [\"id\"],",
        ] {
            #expect(index.contains("\n\(line)\n"), "missing line: \(line)")
        }
        try await TypeScriptCompiler.check(package: fixture.package("acme"))
        let package = try fixture.text("acme", "package.json")
        #expect(package.contains("\"name\": \"@outbox-sdk/acme\""))
        #expect(package.contains("\"version\": \"1.1.0\""))
    }

    @Test("Semantic versions follow the kind of change, one CHANGELOG entry per change")
    func versions() async throws {
        let fixture = try await SDKFixture.start("sdk_semver")
        let steps: [(sql: String, version: String, entry: String)] = [
            ("CREATE SCHEMA tenant_v", "", ""),
            ("CREATE TABLE tenant_v.t (id int PRIMARY KEY)", "1.0.0", "Added table `\"t\"`"),
            ("ALTER TABLE tenant_v.t ADD COLUMN note text", "1.1.0", "Added column `\"note\"` (`\"text\"`, nullable)"),
            ("COMMENT ON TABLE tenant_v.t IS 'things'", "1.1.1", "Changed the comment of table `\"t\"`"),
            ("COMMENT ON COLUMN tenant_v.t.note IS 'a note'", "1.1.2", "Changed the comment of column `\"note\"`"),
            ("ALTER TABLE tenant_v.t ADD COLUMN must int NOT NULL", "2.0.0", "Added column `\"must\"` (`\"integer\"`, NOT NULL)"),
            ("ALTER TABLE tenant_v.t ADD COLUMN dflt int NOT NULL DEFAULT 0", "2.1.0", "NOT NULL with a default"),
            ("ALTER TABLE tenant_v.t ALTER COLUMN dflt SET DEFAULT 1", "2.1.0", ""),
            ("ALTER TABLE tenant_v.t RENAME COLUMN note TO remark", "3.0.0", "Renamed column `\"note\"` to `\"remark\"`"),
            ("ALTER TABLE tenant_v.t ALTER COLUMN must TYPE bigint", "4.0.0", "from `\"integer\"` to `\"bigint\"`"),
            ("ALTER TABLE tenant_v.t ALTER COLUMN must DROP NOT NULL", "5.0.0", "is now nullable"),
            ("ALTER TABLE tenant_v.t DROP COLUMN dflt", "6.0.0", "Removed column `\"dflt\"`"),
            ("CREATE TYPE tenant_v.mood AS ENUM ('ok')", "6.1.0", "Added enum `\"mood\"`"),
            ("ALTER TYPE tenant_v.mood ADD VALUE 'great'", "6.2.0", "Added `\"great\"` to enum `\"mood\"`"),
            ("ALTER TABLE tenant_v.t RENAME TO things", "7.0.0", "Renamed table `\"t\"` to `\"things\"`"),
            ("CREATE TABLE tenant_v.other (x int)", "7.1.0", "Added table `\"other\"`"),
            ("DROP TABLE tenant_v.other", "8.0.0", "Removed table `\"other\"`"),
        ]
        var expectedEntries = 0
        for step in steps {
            try await fixture.run(step.sql)
            guard !step.version.isEmpty else { continue }
            let package = try fixture.text("v", "package.json")
            #expect(package.contains("\"version\": \"\(step.version)\""), "after \(step.sql)")
            let changelog = try fixture.text("v", "CHANGELOG.md")
            if !step.entry.isEmpty {
                expectedEntries += 1
                let newest = changelog.components(separatedBy: "\n## ").dropFirst().first ?? ""
                #expect(newest.hasPrefix("\(step.version) ("), "newest entry after \(step.sql): \(newest)")
                #expect(newest.contains(step.entry), "newest entry after \(step.sql): \(newest)")
            }
            #expect(changelog.components(separatedBy: "\n## ").count - 1 == expectedEntries, "after \(step.sql)")
        }
        let index = try fixture.index("v")
        #expect(index.contains("export interface Things {\n"))
        #expect(index.contains("export type Mood = \"ok\" | \"great\";"))
        #expect(!index.contains("interface Other"))
        try await TypeScriptCompiler.check(package: fixture.package("v"))
    }

    @Test("Hostile table, column, enum and comment text compiles and exports nothing extra")
    func hostileNames() async throws {
        let fixture = try await SDKFixture.start("sdk_hostile")
        try await fixture.run(#"""
            CREATE SCHEMA tenant_evil;
            CREATE TYPE tenant_evil."*/ enum""; export const e = 1; //" AS ENUM ('*/', '"; export const v = 1; //', E'line\nbreak', '`');
            CREATE TABLE tenant_evil."constructor" (
                "constructor" int, "__proto__" text, "a-b" int, """; export const x = 1; //" text,
                "end */ comment" text, "naïve ünïcode 🚀" text, "class" int, "x`y" int, "toString" int,
                "hasOwnProperty" text, U&"new\000aline" int, "back\slash" int, "e" tenant_evil."*/ enum""; export const e = 1; //"
            );
            CREATE TABLE tenant_evil."__proto__" (id int);
            CREATE TABLE tenant_evil."a-b" (id int);
            CREATE TABLE tenant_evil."a_b" (id int);
            CREATE TABLE tenant_evil."*/ export const t = 1; /*" (id int);
            CREATE TABLE tenant_evil."string" (id int);
            CREATE TABLE tenant_evil."123" (id int);
            CREATE TABLE tenant_evil."Array" (id int);
            CREATE TABLE tenant_evil.U&"\00e9" (id int);
            CREATE TABLE tenant_evil.U&"e\0301" (id int);
            COMMENT ON TABLE tenant_evil."constructor" IS '*/ export const c = 1; /* and a
            second line';
            COMMENT ON COLUMN tenant_evil."constructor"."a-b" IS 'ends */ here';
            """#)
        let package = fixture.package("evil")
        try await TypeScriptCompiler.check(package: package)

        // The module's value exports are exactly the four the generator declares: anything
        // injected would add one, and this file would not compile.
        let check = package.appendingPathComponent("src/exports-check.ts")
        try Data("""
            import * as sdk from "./index";
            type Exported = keyof typeof sdk;
            type Expected = "tenant" | "version" | "tables" | "enums";
            const exact: [Exported] extends [Expected] ? ([Expected] extends [Exported] ? true : false) : false = true;
            export { exact };

            """.utf8).write(to: check)
        try await TypeScriptCompiler.check(package: package)
        try FileManager.default.removeItem(at: check)

        let index = try fixture.index("evil")
        let exportLines = index.split(separator: "\n").filter { $0.hasPrefix("export") }.map(String.init)
        let declared = exportLines.map { line in
            line.split(separator: " ").prefix(3).joined(separator: " ")
        }
        #expect(Set(declared) == [
            "export const tenant", "export const version", "export type JsonValue", "export type EnumExportConstE1",
            "export interface Constructor", "export interface Proto", "export interface AB", "export interface AB_2",
            "export interface ExportConstT1", "export interface StringType", "export interface T123",
            "export interface ArrayType", "export interface Unnamed", "export interface E",
            "export interface Tables", "export type TableName", "export interface ColumnDescription",
            "export interface TableDescription", "export interface EnumDescription", "export const tables",
            "export const enums",
        ], "\(exportLines.joined(separator: "\n"))")
        #expect(index.contains("  \"\\\"; export const x = 1; //\": string | null;\n"))
        #expect(index.contains("  \"__proto__\": string | null;\n"))
        #expect(index.contains("  \"new\\nline\": number | null;\n"))
        #expect(index.contains("  \"back\\\\slash\": number | null;\n"))
        #expect(index.contains("  \"e\": EnumExportConstE1 | null;\n"))
        #expect(index.contains("export type EnumExportConstE1 = \"*/\" | \"\\\"; export const v = 1; //\" | \"line\\nbreak\" | \"`\";"))
        #expect(index.contains(" * *\\/ export const c = 1; /* and a\n * second line\n"))
        #expect(!index.contains("ends */"))
    }

    @Test("Applying events again, or after a crash between the package and the state file, gives the same bytes")
    func idempotent() async throws {
        let fixture = try await SDKFixture.start("sdk_idem")
        try await fixture.run("""
            CREATE SCHEMA tenant_i;
            CREATE TABLE tenant_i.a (id int PRIMARY KEY);
            ALTER TABLE tenant_i.a ADD COLUMN b text;
            CREATE TABLE tenant_i.c (id int);
            ALTER TABLE tenant_i.a RENAME COLUMN b TO bee;
            COMMENT ON TABLE tenant_i.c IS 'see';
            """)
        let events = try await fixture.events()
        let reference = try snapshot(fixture.package("i"))
        #expect(reference.keys.sorted() == [
            ".outbox-sdk-state.json", "CHANGELOG.md", "dist/index.d.ts", "dist/index.js", "package.json", "src/index.ts",
            "tsconfig.json"])

        // Redelivered: every event is skipped.
        for event in events {
            try await fixture.apply(event)
        }
        #expect(try snapshot(fixture.package("i")) == reference)

        // Crash after the package files of event k were written but before its state: bring the
        // state back to what it was after k - 1 and redeliver from k.
        let replay = try await SDKFixture.start("sdk_idem_replay")
        for k in 1..<events.count {
            try? FileManager.default.removeItem(at: replay.output)
            for event in events[..<k] {
                try await replay.apply(event)
            }
            let stateURL = replay.package("i").appendingPathComponent(SDKSyncHandler.stateFileName)
            let stateBefore = FileManager.default.contents(atPath: stateURL.path)
            try await replay.apply(events[k])
            if let stateBefore {
                try stateBefore.write(to: stateURL)
            } else {
                try FileManager.default.removeItem(at: stateURL)
            }
            for event in events[k...] {
                try await replay.apply(event)
            }
            #expect(try snapshot(replay.package("i")) == reference, "crash at event \(k)")
        }
    }
}

/// A test database with the outbox installed, an output directory, and the handler; `run`
/// executes DDL and applies the events it captured, in order.
struct SDKFixture {
    let database: TestDatabase
    let connection: PostgresConnection
    let output: URL
    let handler: SDKSyncHandler
    private let applied = AppliedCounter()

    static func start(_ label: String) async throws -> SDKFixture {
        let database = try await TestDatabase.create(label)
        let connection = try await database.connect()
        try await OutboxInstaller(connection: connection, schema: "platform", logger: Logger(label: "test"))
            .install(try OutboxMigration.load(from: OutboxTestEnvironment.sqlDirectory))
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("sdk-\(label)-\(UUID().uuidString)")
        return SDKFixture(
            database: database, connection: connection, output: output,
            handler: SDKSyncHandler(outputDirectory: output, logger: Logger(label: "test.sdk")))
    }

    func run(_ script: String) async throws {
        try await connection.execute(script: script)
        let events = try await events()
        for event in events.dropFirst(applied.count) {
            try await apply(event)
        }
        applied.count = events.count
    }

    func events() async throws -> [SchemaChangeEvent] {
        let rows = try await connection.query("SELECT event_data::text AS event FROM platform.schema_changes ORDER BY id")
        return try rows.map { try SchemaChangeEvent.decode(Array(($0["event"] ?? "").utf8)) }
    }

    func apply(_ event: SchemaChangeEvent) async throws {
        try await handler.handle(ConsumedEvent(event: event, topic: "schema-changes", partition: 0, offset: 0, key: event.tenantID))
    }

    func package(_ tenant: String) -> URL {
        handler.packageDirectory(forTenant: tenant)
    }

    func text(_ tenant: String, _ path: String) throws -> String {
        try String(contentsOf: package(tenant).appendingPathComponent(path), encoding: .utf8)
    }

    func index(_ tenant: String) throws -> String {
        try text(tenant, "src/index.ts")
    }
}

private final class AppliedCounter: @unchecked Sendable {
    var count = 0
}

/// Every regular file under `directory` (relative path → bytes).
func snapshot(_ directory: URL) throws -> [String: Data] {
    var files: [String: Data] = [:]
    let base = directory.standardizedFileURL.path
    guard let enumerator = FileManager.default.enumerator(atPath: base) else { return [:] }
    while let relative = enumerator.nextObject() as? String {
        var isDirectory: ObjCBool = false
        let path = base + "/" + relative
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), !isDirectory.boolValue {
            files[relative] = FileManager.default.contents(atPath: path)
        }
    }
    return files
}
