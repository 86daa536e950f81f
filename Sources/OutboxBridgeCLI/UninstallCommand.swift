import ArgumentParser
import Foundation
import Postgres

struct UninstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "uninstall",
        abstract: "Remove the capture: the event triggers and the functions. The outbox's tables stay unless --drop-data.",
        discussion: """
            In one transaction: drops the event triggers that call the schema's functions, then \
            every function and procedure in the schema. The tables (schema_changes with its \
            offsets, delivery_history, …) are kept, so nothing is lost: stop the relays first and \
            drain or archive the outbox at leisure; `install` refuses that schema until it is \
            dropped, and installs into another one. --drop-data drops the whole schema instead, \
            after asking unless --yes. The roles outbox_relay, outbox_emitter and \
            outbox_automation are cluster-wide and kept. Needs the role that installed (a superuser).
            """)

    @OptionGroup var outbox: OutboxLocation
    @Flag(help: "Also drop the schema with the outbox and all its rows.")
    var dropData = false
    @Flag(help: "Do not ask before --drop-data deletes the outbox.")
    var yes = false

    func run() async throws {
        let connection: PostgresConnection
        do {
            connection = try await PostgresConnection.connect(outbox.effectiveDatabaseURL)
        } catch {
            printError(error.description)
            throw ExitStatus.status(for: error)
        }
        let schema = outbox.schema
        let removal = try await reportingFailures(schema: schema) {
            try await CaptureRemoval.plan(on: connection, schema: schema)
        }
        guard removal.isInstalled else {
            printError("nothing to uninstall: schema \(schema) holds no outbox-bridge install")
            throw ExitStatus.badSettings
        }
        if dropData {
            try confirm(
                "Drop schema \(schema) with \(removal.pendingOrStoredRows) outbox rows?", unless: yes,
                cancelled: "uninstall cancelled; nothing changed")
        }
        try await reportingFailures(schema: schema) {
            try await removal.apply(on: connection, dropData: dropData)
        }
        print("removed \(removal.eventTriggers.count) event triggers and \(removal.routines.count) functions from schema \(schema)")
        print(dropData
              ? "dropped schema \(schema) and its data"
              : "kept the tables of schema \(schema); `uninstall --drop-data` drops them, `install --schema OTHER` captures again")
    }
}

/// What `uninstall` removes, read from the catalogs so it removes exactly what is there: the
/// event triggers whose function lives in the schema and every routine of the schema (the
/// schema is dedicated to the install; `install` refuses `public`).
struct CaptureRemoval {
    let schema: String
    let isInstalled: Bool
    let pendingOrStoredRows: Int64
    /// Quoted names.
    let eventTriggers: [String]
    /// `DROP FUNCTION` or `DROP PROCEDURE` with the routine's full signature.
    let routines: [String]

    static func plan(on connection: PostgresConnection, schema: String) async throws -> CaptureRemoval {
        let installed = try await connection.query(
            "SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', $1::text)) IS NOT NULL AS installed",
            [schema])
        guard try installed[0].require(Bool.self, column: "installed") else {
            return CaptureRemoval(schema: schema, isInstalled: false, pendingOrStoredRows: 0, eventTriggers: [], routines: [])
        }
        let quoted = try await connection.quoteIdentifier(schema)
        let rows = try await connection.query("SELECT pg_catalog.count(*) AS n FROM \(quoted).schema_changes")
        let triggers = try await connection.query("""
            SELECT pg_catalog.quote_ident(e.evtname) AS name
            FROM pg_catalog.pg_event_trigger e
            JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
            JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = $1 ORDER BY e.evtname
            """, [schema])
        let routines = try await connection.query("""
            SELECT CASE p.prokind WHEN 'p' THEN 'DROP PROCEDURE ' ELSE 'DROP FUNCTION ' END
                   || p.oid::pg_catalog.regprocedure::text AS statement
            FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE n.nspname = $1 AND p.prokind IN ('f', 'p') ORDER BY 1
            """, [schema])
        return CaptureRemoval(
            schema: schema, isInstalled: true, pendingOrStoredRows: try rows[0].require(Int64.self, column: "n"),
            eventTriggers: try triggers.map { try $0.require(String.self, column: "name") },
            routines: try routines.map { try $0.require(String.self, column: "statement") })
    }

    /// Drops everything in one transaction: a dependency nobody expected (a user's column
    /// default calling `emit`) fails the whole uninstall with PostgreSQL's message instead of
    /// being dropped along.
    func apply(on connection: PostgresConnection, dropData: Bool) async throws {
        let quoted = try await connection.quoteIdentifier(schema)
        try await connection.transaction { connection in
            for trigger in eventTriggers {
                try await connection.query("DROP EVENT TRIGGER \(trigger)")
            }
            for routine in routines {
                try await connection.query(routine)
            }
            if dropData {
                try await connection.query("DROP SCHEMA \(quoted) CASCADE")
            }
        }
    }
}
