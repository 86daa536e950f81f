import Foundation
import Logging
import Outbox
import Postgres
import TestSupport
import Testing

/// The capture guarantees are written as self-asserting SQL in `Tests/sql` (each file raises on
/// the first broken guarantee), so they can also be run by hand with psql. Here each one runs
/// against a database installed by the Swift installer, the path `outbox-bridge install` takes.
@Suite("Capture checks from Tests/sql against real PostgreSQL", .serialized)
struct CaptureChecksTests {
    static let repository = OutboxTestEnvironment.sqlDirectory.deletingLastPathComponent()
    static let checks = ((try? FileManager.default.contentsOfDirectory(
        atPath: repository.appendingPathComponent("Tests/sql").path)) ?? [])
        .filter { $0.first?.isNumber == true }.sorted()

    @Test("the check files are there", .tags(.capture))
    func checksExist() {
        #expect(Self.checks.filter { $0.hasSuffix(".sql") }.count >= 4)
        #expect(Self.checks.contains { $0.hasSuffix(".sh") })
    }

    @Test("each capture check passes, and every event it captured matches sql/event.schema.json", .tags(.capture), arguments: checks)
    func check(_ file: String) async throws {
        try await Self.run(file, clusterURL: try TestDatabase.clusterURL(), server: "the shared cluster")
    }

    /// Runs one check file against the cluster at `clusterURL` and validates the events it
    /// captured; every failure starts with `server` (which PostgreSQL it ran on).
    static func run(_ file: String, clusterURL: String, server: String) async throws {
        let baseURL = String(clusterURL[..<clusterURL.lastIndex(of: "/")!])
        try await createCheckRoles(clusterURL, server: server)
        let path = repository.appendingPathComponent("Tests/sql/\(file)").path
        var validated: [String] = []

        if file.hasSuffix(".sh") {
            let result = try await runTool(path, [baseURL], currentDirectory: repository)
            #expect(result.status == 0, "\(server): \(file): \(result.errorOutput)\(result.output)")
            validated = ["capture_05:out\"box; sch*/ema ü"]
        } else {
            let database = try await TestDatabase.create("capture", clusterURL: clusterURL)
            let connection = try await database.connect()
            try await OutboxInstaller(connection: connection, schema: "platform", logger: Logger(label: "test"))
                .install(try OutboxMigration.load(from: OutboxTestEnvironment.sqlDirectory))
            let admin = try await PostgresConnection.connect(clusterURL)
            try await admin.execute(script: "GRANT outbox_automation TO automation_bot; GRANT outbox_emitter TO app_emitter;")
            let psql = ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", database.url]
            let helpers = try await runTool("/usr/bin/psql", psql + ["-f", repository.appendingPathComponent("Tests/sql/_helpers.sql").path])
            #expect(helpers.status == 0, "\(server): \(helpers.errorOutput)")
            let result = try await runTool(
                "/usr/bin/psql", psql + ["-t", "-v", "base_url=\(baseURL)", "-v", "db=\(database.name)", "-f", path],
                environment: ["PGOPTIONS": "-c client_min_messages=warning"])
            #expect(result.status == 0, "\(server): \(file): \(result.errorOutput)")
            validated = [database.name]
        }
        let validation = try await runTool(
            "/usr/bin/python3", [repository.appendingPathComponent("scripts/validate-events.py").path, baseURL] + validated)
        #expect(validation.status == 0, "\(server): \(file): \(validation.output)\(validation.errorOutput)")
    }

    /// Cluster-wide login roles the checks connect as (trust authentication).
    private static func createCheckRoles(_ clusterURL: String, server: String) async throws {
        let roles = try await runTool(
            "/usr/bin/psql", ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", clusterURL, "-f",
                              repository.appendingPathComponent("Tests/sql/_roles.sql").path])
        #expect(roles.status == 0, "\(server): \(roles.errorOutput)")
    }
}

extension Tag {
    @Tag static var capture: Self
}
