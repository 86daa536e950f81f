import ArgumentParser
import Foundation
import Operations
import Postgres

/// Where the outbox is, for the operator commands.
struct OutboxLocation: ParsableArguments {
    @Option(help: "Database URL or conninfo (default: DATABASE_URL, else libpq's PG* variables).")
    var databaseURL: String?
    @Option(help: "Schema the outbox is installed in.")
    var schema = "platform"

    func connect() async throws -> OutboxOperations {
        let url = databaseURL ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? ""
        do {
            let connection = try await PostgresConnection.connect(url)
            return try await OutboxOperations(connection: connection, schema: schema)
        } catch {
            printError("\(error)")
            throw ExitCode.failure
        }
    }
}

/// Prints `value` as indented JSON with sorted keys, for scripts and dashboards.
func printJSON(_ value: some Encodable) throws {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
    print(String(decoding: try encoder.encode(value), as: UTF8.self))
}

/// Runs an operator action, turning database failures into one line and a non-zero exit.
func reportingFailures<T>(_ action: () async throws -> T) async throws -> T {
    do {
        return try await action()
    } catch let error as PostgresError {
        printError("\(error)")
        throw ExitCode.failure
    }
}
