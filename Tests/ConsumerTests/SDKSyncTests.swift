import Consumers
import Foundation
import Kafka
import Logging
import Postgres
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// DDL in tenant schemas → capture → the real relay → the embedded broker → sdk-sync.
@Suite("sdk-sync end to end: packages follow the tenants' DDL through the relay and Kafka")
struct SDKSyncTests {
    @Test("Two tenants get compiling packages that describe their tables; redelivering the topic from offset 0 changes no byte")
    func twoTenantsAndRedelivery() async throws {
        let environment = try await OutboxTestEnvironment.start("sdk_e2e")
        let sql = try await environment.database.connect()
        let output = temporaryDirectory("sdk-e2e")
        let handler = SDKSyncHandler(outputDirectory: output, logger: testLogger())
        try await withRunningRelay(environment.relayConfiguration()) {
            try await sql.execute(script: """
                CREATE SCHEMA tenant_acme;
                CREATE TYPE tenant_acme.level AS ENUM ('low', 'high');
                CREATE TABLE tenant_acme.sensors (id bigint PRIMARY KEY, reading float8 NOT NULL, level tenant_acme.level);
                ALTER TABLE tenant_acme.sensors ADD COLUMN humidity numeric(5,2);
                CREATE SCHEMA tenant_globex;
                CREATE TABLE tenant_globex.orders (id uuid PRIMARY KEY, placed_at timestamptz NOT NULL, lines jsonb, tags text[]);
                COMMENT ON TABLE tenant_globex.orders IS 'Customer orders';
                CREATE TABLE tenant_globex.customers (id int PRIMARY KEY, name text NOT NULL);
                ALTER TABLE tenant_globex.customers RENAME COLUMN name TO full_name;
                """)
            try await environment.waitUntilAllDelivered(sql)
        }
        try await consumeEverything(environment, sql, group: "sdk-sync", handler: handler)

        let acme = try String(contentsOf: output.appendingPathComponent("acme/src/index.ts"), encoding: .utf8)
        for line in ["export type Level = \"low\" | \"high\";", "export interface Sensors {", "  \"id\": string;",
                     "  \"reading\": number;", "  \"level\": Level | null;", "  \"humidity\": string | null;"] {
            #expect(acme.contains("\n\(line)\n"), "acme misses \(line)")
        }
        let globex = try String(contentsOf: output.appendingPathComponent("globex/src/index.ts"), encoding: .utf8)
        for line in ["export interface Orders {", "  \"placed_at\": string;", "  \"lines\": JsonValue | null;",
                     "  \"tags\": string[] | null;", " * Customer orders", "export interface Customers {",
                     "  \"full_name\": string;"] {
            #expect(globex.contains("\n\(line)\n"), "globex misses \(line)")
        }
        #expect(!globex.contains("\"name\": string"))
        for tenant in ["acme", "globex"] {
            try await TypeScriptCompiler.check(package: output.appendingPathComponent(tenant))
        }
        let acmePackage = try String(contentsOf: output.appendingPathComponent("acme/package.json"), encoding: .utf8)
        #expect(acmePackage.contains("\"name\": \"@outbox-sdk/acme\"") && acmePackage.contains("\"version\": \"1.2.0\""))
        let globexPackage = try String(contentsOf: output.appendingPathComponent("globex/package.json"), encoding: .utf8)
        #expect(globexPackage.contains("\"version\": \"2.0.0\""), "orders 1.0.0, comment 1.0.1, customers 1.1.0, rename 2.0.0")

        // A new group reads the whole topic from offset 0 into the same directory: every event
        // is already applied, so no file changes (not even its modification time).
        let before = try snapshot(output)
        let modified = try modificationTimes(output)
        try await consumeEverything(environment, sql, group: "sdk-sync-replay", handler: handler)
        #expect(try snapshot(output) == before)
        #expect(try modificationTimes(output) == modified)

        // And into an empty directory: the same events give the same bytes.
        let fresh = temporaryDirectory("sdk-e2e-fresh")
        try await consumeEverything(
            environment, sql, group: "sdk-sync-fresh", handler: SDKSyncHandler(outputDirectory: fresh, logger: testLogger()))
        #expect(try snapshot(fresh) == before)
        await environment.drop()
    }

    @Test("sdk-sync killed with SIGKILL mid-stream and restarted applies every change exactly once")
    func killAndRestart() async throws {
        let environment = try await OutboxTestEnvironment.start("sdk_kill")
        let sql = try await environment.database.connect()
        let columns = 80
        // Each tenant's first half of the columns is published before the kill and the second
        // half after it, so the killed process always has a stream left to resume.
        func script(columns range: ClosedRange<Int>) -> String {
            var script = ""
            for tenant in ["k1", "k2"] {
                if range.lowerBound == 1 {
                    script += "CREATE SCHEMA tenant_\(tenant);\nCREATE TABLE tenant_\(tenant).t (id int PRIMARY KEY);\n"
                }
                for column in range {
                    script += "ALTER TABLE tenant_\(tenant).t ADD COLUMN c\(column) int;\n"
                }
            }
            return script
        }
        let output = temporaryDirectory("sdk-kill")
        let arguments = [
            "sdk-sync", "--brokers", environment.broker.bootstrapServers, "--out", output.path, "--group", "sdk-kill",
        ] + MockConsumerGroup.consumerPropertyArguments
        func appliedCount() throws -> Int {
            try appliedEventIDs(output, "k1").count + appliedEventIDs(output, "k2").count
        }
        try await withRunningRelay(environment.relayConfiguration()) {
            let first = try RelayProcess.launch(arguments, label: "sdk-sync-1")
            try await sql.execute(script: script(columns: 1...(columns / 2)))
            try await waitUntil("the first process applied some events", timeout: .seconds(60)) {
                try appliedCount() >= 20
            }
            first.kill(SIGKILL)
            _ = try await first.waitForExit(timeout: .seconds(10))
            print("sdk-sync killed after applying \(try appliedCount()) of \(2 * (columns + 2)) events")
            try await sql.execute(script: script(columns: (columns / 2 + 1)...columns))
            try await environment.waitUntilAllDelivered(sql)
        }
        let rows = try await environment.outboxRows(sql)
        let expected = Dictionary(grouping: rows, by: { $0.tenantKey ?? "" }).mapValues { Set($0.map(\.eventID)) }
        #expect(expected["k1"]?.count == columns + 2 && expected["k2"]?.count == columns + 2)

        let second = try RelayProcess.launch(arguments, label: "sdk-sync-2")
        try await waitUntil("the restarted process applied everything", timeout: .seconds(120)) {
            try appliedEventIDs(output, "k1") == expected["k1"] && appliedEventIDs(output, "k2") == expected["k2"]
        }
        second.kill(SIGTERM)
        #expect(try await second.waitForExit(timeout: .seconds(20)) == 0, "\(second.standardError)")

        // Nothing applied twice, nothing lost: one changelog entry per change, and the same
        // bytes an uninterrupted consumer writes.
        for tenant in ["k1", "k2"] {
            let package = try String(contentsOf: output.appendingPathComponent("\(tenant)/package.json"), encoding: .utf8)
            #expect(package.contains("\"version\": \"1.\(columns).0\""))
            let changelog = try String(contentsOf: output.appendingPathComponent("\(tenant)/CHANGELOG.md"), encoding: .utf8)
            #expect(changelog.components(separatedBy: "\n## ").count - 1 == columns + 1)
            try await TypeScriptCompiler.check(package: output.appendingPathComponent(tenant))
        }
        let reference = temporaryDirectory("sdk-kill-reference")
        try await consumeEverything(
            environment, sql, group: "sdk-kill-reference",
            handler: SDKSyncHandler(outputDirectory: reference, logger: testLogger()))
        #expect(try snapshot(output) == snapshot(reference))
        await environment.drop()
    }

    @Test("Invalid settings exit with status 2 and one line naming the problem")
    func invalidSettings() async throws {
        let cases: [(arguments: [String], message: String)] = [
            (["sdk-sync", "--out", "/tmp/x"], "brokers: required"),
            (["sdk-sync", "--brokers", "127.0.0.1:1"], "out: required"),
            (["sdk-sync", "--brokers", "127.0.0.1:1", "--out", "/tmp/x", "--kafka-property", "novalue"], "expected name=value"),
            (["sdk-sync", "--brokers", "127.0.0.1:1", "--out", "/tmp/x", "--max-attempts", "0"], "maxAttempts must be at least 1"),
            (["sdk-sync", "--brokers", "127.0.0.1:1", "--out", "/tmp/x", "--dead-letter-topic", "schema-changes"],
             "dead-letter topic"),
            (["sdk-sync", "--brokers", "127.0.0.1:1", "--out", "/tmp/x", "--package-scope", "NoAt"], "package-scope"),
        ]
        for (arguments, message) in cases {
            let process = try RelayProcess.launch(arguments, label: "sdk-sync-bad")
            #expect(try await process.waitForExit(timeout: .seconds(20)) == 2, "\(arguments)")
            #expect(process.standardError.contains(message), "\(arguments): \(process.standardError)")
        }
    }
}

/// Runs a consumer of `group` until it has processed every record the relay put in Kafka.
func consumeEverything(
    _ environment: OutboxTestEnvironment, _ sql: PostgresConnection, group: String, handler: any EventHandler
) async throws {
    let rows = try await environment.outboxRows(sql)
    var ends: [Int32: Int64] = [:]
    for row in rows {
        if let partition = row.partition, let offset = row.offset {
            ends[partition] = max(ends[partition] ?? 0, offset + 1)
        }
    }
    let runtime = try ConsumerRuntime(
        configuration: testConfiguration(environment, group: group), handler: handler, logger: testLogger())
    try await withRunningConsumer(runtime) {
        try await waitUntil("group \(group) processed every record", timeout: .seconds(180)) {
            let next = Dictionary(runtime.lag.partitions.map { ($0.partition, $0.nextOffset) }, uniquingKeysWith: max)
            return ends.allSatisfy { partition, end in (next[partition] ?? 0) >= end }
        }
    }
}

func temporaryDirectory(_ label: String) -> URL {
    FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)", isDirectory: true)
}

/// The event ids a tenant's state file records (empty before it exists).
func appliedEventIDs(_ output: URL, _ tenant: String) throws -> Set<String> {
    struct State: Decodable {
        let appliedEventIDs: [String]
    }
    let url = output.appendingPathComponent(tenant).appendingPathComponent(SDKSyncHandler.stateFileName)
    guard let data = FileManager.default.contents(atPath: url.path) else { return [] }
    return Set(try JSONDecoder().decode(State.self, from: data).appliedEventIDs)
}

func modificationTimes(_ directory: URL) throws -> [String: Date] {
    var times: [String: Date] = [:]
    for path in try snapshot(directory).keys {
        let attributes = try FileManager.default.attributesOfItem(atPath: directory.appendingPathComponent(path).path)
        times[path] = attributes[.modificationDate] as? Date
    }
    return times
}
