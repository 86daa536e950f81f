import ArgumentParser
import Foundation
import Operations
import Outbox
import Postgres

/// Where the capture and the outbox are (or, for `install`, go), for the commands run by hand.
struct OutboxLocation: ParsableArguments {
    @Option(help: "Database URL or conninfo (default: DATABASE_URL, else libpq's PG* variables).")
    var databaseURL: String?
    @Option(help: "Schema holding the capture and the outbox.")
    var schema = "platform"

    var effectiveDatabaseURL: String { resolvedDatabaseURL(databaseURL) }

    func validate() throws {
        try validateDatabaseOptions(url: effectiveDatabaseURL, schema: schema)
    }

    func connect() async throws -> OutboxOperations {
        try await connectToInstalledOutbox(databaseURL: effectiveDatabaseURL, schema: schema)
    }
}

/// The URL given, else `DATABASE_URL`, else empty (libpq's `PG*` variables).
func resolvedDatabaseURL(_ given: String?) -> String {
    given ?? ProcessInfo.processInfo.environment["DATABASE_URL"] ?? ""
}

/// Checks a command's database options before anything connects, and registers the password
/// for redaction.
func validateDatabaseOptions(url: String, schema: String) throws {
    SecretRedaction.register(connectionString: url)
    if let problem = ConnectionString(url).problem {
        throw ValidationError("--database-url: \(problem)")
    }
    guard !schema.isEmpty else { throw ValidationError("--schema must not be empty") }
}

/// Connects and checks that the outbox is installed in `schema`. Exits 3 when PostgreSQL cannot
/// be reached, and 2 when the schema lacks the install, saying to run `install`.
func connectToInstalledOutbox(databaseURL: String, schema: String) async throws -> OutboxOperations {
    let connection: PostgresConnection
    do {
        connection = try await PostgresConnection.connect(databaseURL)
    } catch {
        printError(error.description)
        throw ExitStatus.status(for: error)
    }
    return try await reportingFailures(schema: schema) {
        try await OutboxOperations.installed(on: connection, schema: schema)
    }
}

/// Asks `question` on the terminal, unless `yes` (`--yes`) answered it already; any answer but
/// y or yes prints `cancelled` and exits with status 1 before anything changes.
func confirm(_ question: String, unless yes: Bool, cancelled: String) throws(ExitCode) {
    guard !yes else { return }
    print("\(question) [y/N] ", terminator: "")
    guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
        printError("\(cancelled) (use --yes to skip the question)")
        throw ExitStatus.problemFound
    }
}

/// Prints `value` as indented JSON with sorted keys, for scripts and dashboards.
func printJSON(_ value: some Encodable) throws {
    print(String(decoding: try OperatorJSON.encode(value), as: UTF8.self))
}

/// Runs an operator action, turning a database failure into one line and the exit status its
/// kind calls for (``ExitStatus``); a missing outbox table says to run `install`.
func reportingFailures<T>(schema: String? = nil, _ action: () async throws -> T) async throws -> T {
    do {
        return try await action()
    } catch let error as PostgresError {
        printError(ExitStatus.explanation(of: error, schema: schema))
        throw ExitStatus.status(for: error)
    }
}
