import Foundation
import Kafka
import Postgres
import TestSupport
import Testing

/// The README's exit-code contract, checked on the real executable: 0 success, 1 the operation
/// found a problem (the audit's mismatch is covered in `OperationsTests.auditFindsTampering`),
/// 2 bad settings or usage, 3 a dependency that cannot be reached. Every failure is one line.
@Suite("Exit codes and prune's confirmation, on the real executable")
struct ExitStatusTests {
    private func bridge(_ arguments: [String], input: Data? = nil) async throws -> ToolResult {
        try await runTool(try RelayProcess.executableURL().path, arguments, input: input, timeout: .seconds(120))
    }

    private func expectOneLine(_ result: ToolResult, status: Int32, mentioning text: String, _ name: String) {
        let lines = result.errorOutput.split(separator: "\n")
        #expect(result.status == status, "\(name): exit \(result.status): \(result.errorOutput)")
        #expect(lines.count == 1, "\(name): stderr is not one line:\n\(result.errorOutput)")
        #expect(lines.first?.hasPrefix("outbox-bridge: ") == true && lines.first?.contains(text) == true,
                "\(name) does not mention \(text): \(result.errorOutput)")
    }

    @Test("each command's bad settings, missing install and unreachable dependencies exit 2, 2 and 3")
    func statusClasses() async throws {
        let environment = try await OutboxTestEnvironment.start("exit_codes")
        let empty = try await TestDatabase.create("exit_codes_empty")
        defer { Task { try? await empty.drop(); await environment.drop() } }
        let unreachable = "postgresql://postgres@127.0.0.1:\(try freeLoopbackPort())/nope"
        let url = environment.database.url
        let brokers = environment.broker.bootstrapServers

        let ok = try await bridge(["status", "--database-url", url])
        #expect(ok.status == 0, "\(ok.errorOutput)")

        let usage: [(String, [String], String)] = [
            ("an unknown option (argument parser's 64)", ["status", "--database-url", url, "--jsn"], "Unknown option '--jsn'"),
            ("a missing required setting", ["warehouse-sync", "--brokers", brokers], "invalid configuration: warehouse.url: required"),
            ("bad target_session_attrs", ["status", "--database-url", url + "?target_session_attrs=primry"],
             "target_session_attrs must be one of"),
            ("prune without a unit", ["prune", "--database-url", url, "--older-than", "7"], "--older-than expects a number with a unit"),
            ("prune 0", ["prune", "--database-url", url, "--older-than", "0d"], "--older-than 0 would delete every processed event"),
            ("sdk-sync without brokers", ["sdk-sync", "--out", "/tmp/never"], "brokers: required"),
            ("sdk-sync with an unknown librdkafka property",
             ["sdk-sync", "--brokers", brokers, "--out", "/tmp/never", "--kafka-property", "nope.nope=1"], "nope.nope"),
            ("warehouse-sync with a zero shutdown timeout",
             ["warehouse-sync", "--brokers", brokers, "--warehouse-url", url, "--shutdown-timeout", "0"], "--shutdown-timeout"),
            ("dev-broker with no brokers", ["dev-broker", "--brokers", "0"], "--brokers must be at least 1, not 0"),
            ("status on a database without the install", ["status", "--database-url", empty.url],
             "the outbox schema platform is not installed in this database; run `outbox-bridge install` first"),
            ("run on a database without the install", ["run", "--database-url", empty.url, "--brokers", brokers],
             "run `outbox-bridge install` first"),
        ]
        let dependencies: [(String, [String], String)] = [
            ("status with PostgreSQL unreachable", ["status", "--database-url", unreachable], "PostgreSQL connection failed"),
            ("run with PostgreSQL unreachable", ["run", "--database-url", unreachable, "--brokers", brokers],
             "PostgreSQL connection failed"),
            ("warehouse-sync with the warehouse unreachable", ["warehouse-sync", "--brokers", brokers, "--warehouse-url", unreachable],
             "PostgreSQL connection failed"),
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, arguments, text) in usage {
                group.addTask { expectOneLine(try await bridge(arguments), status: 2, mentioning: text, name) }
            }
            for (name, arguments, text) in dependencies {
                group.addTask { expectOneLine(try await bridge(arguments), status: 3, mentioning: text, name) }
            }
            try await group.waitForAll()
        }

        // Kafka unreachable: the client logs its connection attempts first, so only the last
        // line is the bridge's.
        let noKafka = try await bridge(["run", "--database-url", url, "--brokers", "127.0.0.1:1", "--log-level", "critical"])
        #expect(noKafka.status == 3, "\(noKafka.errorOutput)")
        #expect(noKafka.errorOutput.split(separator: "\n").last?.contains("Kafka brokers 127.0.0.1:1 unusable") == true,
                "\(noKafka.errorOutput)")
    }

    @Test("prune shows the count and asks; --dry-run and a 'no' delete nothing, 'yes' and --yes delete")
    func pruneAsksFirst() async throws {
        let environment = try await OutboxTestEnvironment.start("prune_confirm")
        defer { Task { await environment.drop() } }
        let sql = try await environment.database.connect()
        try await sql.query("SELECT platform.emit('t' || n, 'test.prune', '{}') FROM generate_series(1, 6) AS n")
        // Three delivered 10 days ago, three pending.
        try await sql.query(
            """
            UPDATE platform.schema_changes
            SET processed = true, processed_at = now() - interval '10 days',
                kafka_topic = 'schema-changes', kafka_partition = 0, kafka_offset = id
            WHERE tenant_key IN ('t1', 't2', 't3')
            """)
        func rows() async throws -> Int {
            try await sql.query("SELECT count(*) AS n FROM platform.schema_changes")[0].require(Int.self, column: "n")
        }
        let prune = ["prune", "--database-url", environment.database.url, "--older-than", "7d"]

        let dryRun = try await bridge(prune + ["--dry-run"])
        #expect(dryRun.status == 0, "\(dryRun.errorOutput)")
        #expect(dryRun.output.contains("3 processed events are older than 7d"), "\(dryRun.output)")
        #expect(try await rows() == 6)

        let declined = try await bridge(prune, input: Data("n\n".utf8))
        #expect(declined.status == 1)
        #expect(declined.output.contains("3 processed events are older than 7d") && declined.output.contains("Delete them? [y/N]"))
        #expect(declined.errorOutput == "outbox-bridge: prune cancelled; nothing deleted (use --yes to skip the question)\n")
        #expect(try await rows() == 6)

        let noAnswer = try await bridge(prune)
        #expect(noAnswer.status == 1 && noAnswer.errorOutput.contains("prune cancelled"), "no terminal: no yes")
        #expect(try await rows() == 6)

        let confirmed = try await bridge(prune + ["--older-than", "11d"], input: Data("y\n".utf8))
        #expect(confirmed.status == 0 && confirmed.output.contains("0 processed events are older than 11d"), "\(confirmed.output)")
        #expect(try await rows() == 6)

        let accepted = try await bridge(prune, input: Data("yes\n".utf8))
        #expect(accepted.status == 0, "\(accepted.errorOutput)")
        #expect(accepted.output.contains("deleted 3 processed events older than 7d"), "\(accepted.output)")
        #expect(try await rows() == 3)
    }
}
