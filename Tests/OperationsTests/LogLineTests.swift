import Foundation
import Kafka
import Postgres
import TestSupport
import Testing

/// What an operator reads in the log: the same line format from every command, and a relay that
/// says it is working.
@Suite("Log lines look the same across commands; the relay reports its progress")
struct LogLineTests {
    @Test("install writes logfmt like run; run with log.format json reports events, tenants and lag at info")
    func progressLine() async throws {
        let environment = try await OutboxTestEnvironment.start("log_lines")
        defer { Task { await environment.drop() } }
        let sql = try await environment.database.connect()

        let fresh = try await TestDatabase.create("log_lines_install")
        defer { Task { try? await fresh.drop() } }
        let install = try await runTool(
            try RelayProcess.executableURL().path, ["install", "--database-url", fresh.url], timeout: .seconds(120))
        #expect(install.status == 0, "\(install.errorOutput)")
        #expect(install.errorOutput.contains("message=\"applying migration\""), "\(install.errorOutput)")
        for line in install.errorOutput.split(separator: "\n") {
            #expect(line.hasPrefix("time=") && line.contains(" level=") && line.contains(" logger=outbox-bridge.install "),
                    "not the shared logfmt: \(line)")
        }

        let relay = try RelayProcess.launch([
            "run", "--database-url", environment.relayURL, "--brokers", environment.broker.bootstrapServers,
            "--poll-interval", "0.2", "--log-format", "json", "--http-port", "0",
        ], label: "log-lines")
        defer { relay.stop() }
        // The line comes with the first outcome after its interval (10 s): keep events coming
        // until it does.
        var batch = 0
        try await waitUntil("the relay logs its progress", timeout: .seconds(180)) {
            batch += 1
            try await sql.query("SELECT platform.emit('tenant-' || n, 'test.progress', '{}') FROM generate_series(1, 3) AS n")
            if relay.standardError.contains("\"message\":\"relayed\"") { return true }
            try await Task.sleep(for: .seconds(1))
            return false
        }
        let lines = relay.standardErrorLines
        let progress = try #require(lines.first { $0.contains("\"message\":\"relayed\"") })
        let fields = try #require(try JSONSerialization.jsonObject(with: Data(progress.utf8)) as? [String: String])
        #expect(fields["level"] == "info")
        #expect(Int(fields["events"] ?? "") ?? 0 >= 3, "\(progress)")
        #expect(fields["tenants"] == "3", "\(progress)")
        #expect(Double(fields["max-lag-seconds"] ?? "") != nil, "\(progress)")
        // UTC to the millisecond, in the shape Foundation's ISO 8601 style reads back.
        let time = try #require(fields["time"])
        let stamped = try Date(time, strategy: Date.ISO8601FormatStyle().year().month().day().time(includingFractionalSeconds: true))
        #expect(abs(stamped.timeIntervalSinceNow) < 600, "log time \(time) is not the time now in UTC")
        for line in lines where !line.hasPrefix("outbox-bridge:") {
            let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object?["time"] != nil && object?["logger"] != nil, "not a JSON log line: \(line)")
        }
    }
}
