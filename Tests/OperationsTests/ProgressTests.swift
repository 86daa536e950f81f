import Foundation
@testable import OutboxBridgeCLI
import Postgres
import TestSupport
import Testing

/// Long operator commands show progress with a rate and a time left on a terminal, and draw
/// nothing into a pipe or a file.
@Suite("Progress on standard error: drawn on a terminal only")
struct ProgressTests {
    @Test("The line says done of total, the rate, and the time left or taken")
    func line() {
        #expect(ProgressReporter.line(label: "prune: deleted", done: 250, total: 1000, elapsed: .seconds(5), finished: false)
            == "prune: deleted 250 of 1000 (25%), 50.0/s, ETA 15s")
        #expect(ProgressReporter.line(label: "prune: deleted", done: 1000, total: 1000, elapsed: .seconds(20), finished: true)
            == "prune: deleted 1000 of 1000 (100%), 50.0/s, done in 20s")
        #expect(ProgressReporter.line(label: "audit: checked", done: 0, total: nil, elapsed: .seconds(2), finished: false)
            == "audit: checked 0, 0.0/s, 2.0s so far")
        #expect(ProgressReporter.formatSeconds(185) == "3m05s")
        #expect(ProgressReporter.formatSeconds(7620) == "2h07m")
    }

    @Test("replay and prune draw progress on a terminal and nothing into a pipe")
    func terminalOnly() async throws {
        let environment = try await OutboxTestEnvironment.start("progress_tty")
        defer { Task { await environment.drop() } }
        let sql = try await environment.database.connect()
        let url = environment.database.url
        try await deliveredLongAgo(sql, tenants: ["r1", "r1", "r1", "r2", "r2", "r2", "p", "p", "p", "p", "p", "p"])
        let executable = try RelayProcess.executableURL().path

        // Standard error is a file here: the results on standard output, nothing on standard error.
        let replayed = try await runTool(executable, ["replay", "--database-url", url, "--tenant", "r1", "--yes"])
        #expect(replayed.status == 0, "\(replayed.errorOutput)")
        #expect(replayed.output.contains("3 events are pending again"))
        #expect(replayed.errorOutput.isEmpty, "drawn into a file: \(replayed.errorOutput.debugDescription)")
        // On a terminal (script(1) gives the command a pseudo-terminal): the line, redrawn in place.
        let replayOnTerminal = try await onTerminal([executable, "replay", "--database-url", url, "--tenant", "r2", "--yes"])
        #expect(replayOnTerminal.contains("\r\u{1B}[2Kreplay: marked pending 3 of 3 (100%)"), "\(replayOnTerminal.debugDescription)")
        #expect(replayOnTerminal.contains("done in"))

        let pruned = try await runTool(executable, ["prune", "--database-url", url, "--older-than", "1d", "--batch-size", "2", "--yes"])
        #expect(pruned.status == 0, "\(pruned.errorOutput)")
        #expect(pruned.output.contains("deleted 6 processed events"))
        #expect(pruned.errorOutput.isEmpty, "drawn into a file: \(pruned.errorOutput.debugDescription)")
        try await deliveredLongAgo(sql, tenants: ["q", "q", "q", "q", "q", "q"])
        let pruneOnTerminal = try await onTerminal([
            executable, "prune", "--database-url", url, "--older-than", "1d", "--batch-size", "2", "--yes",
        ])
        #expect(pruneOnTerminal.contains("\r\u{1B}[2Kprune: deleted 2 of 6 (33%)"), "\(pruneOnTerminal.debugDescription)")
        #expect(pruneOnTerminal.contains("\r\u{1B}[2Kprune: deleted 6 of 6 (100%)"), "\(pruneOnTerminal.debugDescription)")
    }

    @Test("snapshot draws its elapsed time on a terminal and nothing into a pipe")
    func snapshotOnTerminalOnly() async throws {
        let environment = try await OutboxTestEnvironment.start("progress_snapshot")
        defer { Task { await environment.drop() } }
        let sql = try await environment.database.connect()
        try await sql.execute(script: """
            CREATE SCHEMA tenant_progress; CREATE TYPE tenant_progress.mood AS ENUM ('ok');
            CREATE TABLE tenant_progress.a (id int); CREATE TABLE tenant_progress.b (id int);
            """)
        let executable = try RelayProcess.executableURL().path
        let command = [executable, "snapshot", "--database-url", environment.database.url, "--all"]

        let intoFile = try await runTool(command[0], Array(command.dropFirst()))
        #expect(intoFile.status == 0, "\(intoFile.errorOutput)")
        #expect(intoFile.output.contains("tenant progress: 2 tables, 1 enums"))
        #expect(intoFile.errorOutput.isEmpty, "drawn into a file: \(intoFile.errorOutput.debugDescription)")
        let onTerminal = try await onTerminal(command)
        #expect(onTerminal.contains("\r\u{1B}[2Ksnapshot: tables and enums 3, "), "\(onTerminal.debugDescription)")
        #expect(onTerminal.contains("done in"), "\(onTerminal.debugDescription)")
        #expect(onTerminal.contains("tenant progress: 2 tables, 1 enums"))
    }

    /// Events of these tenants, delivered ten days ago.
    private func deliveredLongAgo(_ sql: PostgresConnection, tenants: [String]) async throws {
        for tenant in tenants {
            try await sql.query("SELECT platform.emit($1, 'test.progress', '{}')", [tenant])
        }
        for tenant in Set(tenants) {
            try await sql.query("""
                UPDATE platform.schema_changes
                SET processed = true, processed_at = now() - interval '10 days',
                    kafka_topic = 'schema-changes', kafka_partition = 0, kafka_offset = id
                WHERE NOT processed AND tenant_key = $1
                """, [tenant])
        }
    }

    /// Everything the command wrote to its terminal.
    private func onTerminal(_ command: [String]) async throws -> String {
        let quoted = command.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let result = try await runTool("/usr/bin/script", ["-qfec", quoted, "/dev/null"])
        #expect(result.status == 0, "\(result.output)\(result.errorOutput)")
        return result.output
    }
}
