import Foundation
import Postgres
import TestSupport
import Testing

/// `install` and `uninstall` as an operator runs them, on the real executable and database.
@Suite("install names the schema it refuses; uninstall removes the capture and keeps the data unless told")
struct UninstallTests {
    private func bridge(_ arguments: [String]) async throws -> ToolResult {
        try await runTool(try RelayProcess.executableURL().path, arguments, timeout: .seconds(120))
    }

    @Test("uninstall drops the event triggers and functions, keeps the outbox rows; --drop-data drops the schema")
    func uninstallKeepsDataUnlessTold() async throws {
        let database = try await TestDatabase.create("uninstall")
        defer { Task { try? await database.drop() } }
        let url = database.url
        let installed = try await bridge(["install", "--database-url", url])
        #expect(installed.status == 0, "\(installed.errorOutput)")
        let sql = try await database.connect()
        try await sql.execute(script: "CREATE SCHEMA tenant_a; CREATE TABLE tenant_a.kept (id int)")
        let capturedBefore = try await sql.query("SELECT pg_catalog.count(*) AS n FROM platform.schema_changes")[0]
            .require(Int64.self, column: "n")
        #expect(capturedBefore >= 2)

        let second = try await bridge(["install", "--database-url", url, "--schema", "other"])
        #expect(second.status == 2)
        #expect(second.errorOutput.hasPrefix("outbox-bridge: this database already captures into schema platform"),
                "\(second.errorOutput)")

        let uninstalled = try await bridge(["uninstall", "--database-url", url])
        #expect(uninstalled.status == 0, "\(uninstalled.errorOutput)")
        #expect(uninstalled.output.contains("removed 2 event triggers"), "\(uninstalled.output)")
        let leftovers = try await sql.query("""
            SELECT (SELECT pg_catalog.count(*) FROM pg_catalog.pg_event_trigger) AS triggers,
                   (SELECT pg_catalog.count(*) FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                     WHERE n.nspname = 'platform') AS routines,
                   (SELECT pg_catalog.count(*) FROM platform.schema_changes) AS rows
            """)[0]
        #expect(try leftovers.require(Int64.self, column: "triggers") == 0)
        #expect(try leftovers.require(Int64.self, column: "routines") == 0)
        #expect(try leftovers.require(Int64.self, column: "rows") == capturedBefore)

        // DDL is no longer captured, and install refuses to reuse the kept tables.
        try await sql.execute(script: "CREATE TABLE tenant_a.after (id int)")
        #expect(try await sql.query("SELECT pg_catalog.count(*) AS n FROM platform.schema_changes")[0]
            .require(Int64.self, column: "n") == capturedBefore)
        let reinstall = try await bridge(["install", "--database-url", url])
        #expect(reinstall.status == 2)
        #expect(reinstall.errorOutput.contains("schema platform holds the tables an `uninstall` kept"), "\(reinstall.errorOutput)")

        let dropped = try await bridge(["uninstall", "--database-url", url, "--drop-data", "--yes"])
        #expect(dropped.status == 0, "\(dropped.errorOutput)")
        #expect(try await sql.query("SELECT pg_catalog.to_regnamespace('platform') IS NULL AS gone")[0]
            .require(Bool.self, column: "gone"))
        let fresh = try await bridge(["install", "--database-url", url])
        #expect(fresh.status == 0, "\(fresh.errorOutput)")

        let nothing = try await bridge(["uninstall", "--database-url", url, "--schema", "never_installed"])
        #expect(nothing.status == 2)
        #expect(nothing.errorOutput == "outbox-bridge: nothing to uninstall: schema never_installed holds no outbox-bridge install\n")
    }

    @Test("--version prints the release")
    func version() async throws {
        let result = try await bridge(["--version"])
        #expect(result.status == 0)
        #expect(result.output.hasPrefix("outbox-bridge 0."), "\(result.output)")
    }
}
