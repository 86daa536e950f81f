import ArgumentParser
import Foundation
import Logging
import Outbox
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
        let installer = OutboxInstaller(connection: connection, schema: schema, logger: Logger(label: "outbox-bridge.uninstall"))
        let planned = try await reportingFailures(schema: schema) {
            try await installer.plannedRemoval()
        }
        guard let removal = planned else {
            printError("nothing to uninstall: schema \(schema) holds no outbox-bridge install")
            throw ExitStatus.badSettings
        }
        if dropData {
            try confirm(
                "Drop schema \(schema) with \(removal.pendingOrStoredRows) outbox rows?", unless: yes,
                cancelled: "uninstall cancelled; nothing changed")
        }
        try await reportingFailures(schema: schema) {
            try await installer.uninstall(removal, dropData: dropData)
        }
        print("removed \(removal.eventTriggers.count) event triggers and \(removal.routines.count) functions from schema \(schema)")
        print(dropData
              ? "dropped schema \(schema) and its data"
              : "kept the tables of schema \(schema); `uninstall --drop-data` drops them, `install --schema OTHER` captures again")
    }
}
