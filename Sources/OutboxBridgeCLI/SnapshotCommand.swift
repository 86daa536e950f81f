import ArgumentParser
import Foundation
import Operations
import Outbox
import Postgres

/// `outbox-bridge snapshot`: the current tables and enums of a tenant, or of every tenant, as
/// events through the outbox (`<schema>.snapshot()`), for consumers that start after the early
/// events are gone. The events are written in one transaction and ordered with the tenant's DDL
/// by its sequence numbers; the running relay publishes them like any other event.
struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Publish the current tables and enums of a tenant, or of every tenant, as snapshot events.",
        discussion: """
            Calls <schema>.snapshot(): one snapshot event per table (partitions included) and \
            enum, then a snapshot_end event per tenant listing them, all with one snapshot_id. \
            Prints a line per tenant with the counts; on a terminal, standard error shows the time \
            so far while it runs. Needs a role granted outbox_relay.
            """)

    @OptionGroup var outbox: OutboxLocation
    @Option(help: "The tenant: its schema is <tenant_schema_prefix><tenant>.")
    var tenant: String?
    @Flag(help: "Every tenant whose schema the capture publishes.")
    var all = false

    func validate() throws {
        switch (tenant, all) {
        case (nil, false): throw ValidationError("give --tenant T or --all")
        case (.some, true): throw ValidationError("--tenant and --all exclude each other")
        case (""?, false): throw ValidationError("--tenant must not be empty")
        default: break
        }
    }

    func run() async throws {
        let operations = try await outbox.connect()
        // One SQL call whose size is unknown until it returns: on a terminal, the time so far.
        let progress = ProgressReporter("snapshot: tables and enums")
        let counts = try await reportingFailures(schema: outbox.schema) {
            do {
                return try await progress.whileRunning { try await operations.snapshot(tenant: tenant) }
            } catch let error as PostgresError where error.sqlState == Self.invalidParameterValue {
                // A tenant without a schema, or one the capture does not publish: bad input.
                printError(error.message)
                throw ExitStatus.badSettings
            }
        }
        progress.finish(done: counts.reduce(0) { $0 + $1.tables + $1.enums })
        guard let first = counts.first else {
            print("no tenant schema to snapshot")
            return
        }
        for count in counts {
            print("tenant \(count.tenant): \(count.tables) tables, \(count.enums) enums")
        }
        let tables = counts.reduce(0) { $0 + $1.tables }
        let enums = counts.reduce(0) { $0 + $1.enums }
        print("snapshot \(first.snapshotID): \(counts.count) tenants, \(tables) tables, \(enums) enums")
    }

    /// `22023`: what `snapshot()` raises for a tenant it cannot snapshot.
    static let invalidParameterValue = "22023"
}
