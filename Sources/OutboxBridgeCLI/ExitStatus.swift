import ArgumentParser
import Foundation
import Kafka
import Postgres

/// The exit statuses every command keeps to, so scripts and supervisors can tell what happened
/// without reading the message (the README's "Exit codes" section):
/// - 0: success;
/// - 1: the operation ran and found a problem it reports (an audit mismatch), or failed in a
///   way none of the others describes;
/// - 2: bad settings or usage, found before anything was changed: an invalid option or key, a
///   database without the install, a role without the privileges the command needs;
/// - 3: a dependency could not be reached or stopped answering (PostgreSQL, Kafka); trying again
///   later may succeed.
enum ExitStatus {
    static let problemFound = ExitCode(1)
    static let badSettings = ExitCode(2)
    static let unreachable = ExitCode(3)

    /// The status for an error a command did not handle itself.
    static func status(for error: any Error) -> ExitCode {
        switch error {
        case let error as PostgresError: status(for: error)
        case is KafkaError: unreachable
        case is ConfigurationError: badSettings
        default: problemFound
        }
    }

    static func status(for error: PostgresError) -> ExitCode {
        switch error.kind {
        case .connectionFailed, .connectionLost, .closed, .timedOut: unreachable
        case .decoding: problemFound
        case .server:
            switch error.sqlState {
            case PostgresError.SQLState.undefinedTable, invalidSchemaName, PostgresError.SQLState.insufficientPrivilege:
                badSettings
            case let state? where state.hasPrefix("08") || state.hasPrefix("57"): unreachable
            default: problemFound
            }
        }
    }

    /// `3F000`: the schema named in the settings does not exist.
    static let invalidSchemaName = "3F000"

    /// One line for `error`: a missing outbox table says what to run rather than quoting
    /// PostgreSQL's `42P01`.
    static func explanation(of error: PostgresError, schema: String?) -> String {
        switch error.sqlState {
        case PostgresError.SQLState.undefinedTable, invalidSchemaName:
            notInstalled(schema: schema)
        default:
            error.description
        }
    }

    static func notInstalled(schema: String?) -> String {
        let location = schema.map { "the outbox schema \($0)" } ?? "the outbox"
        return "\(location) is not installed in this database; run `outbox-bridge install` first"
    }
}

extension OutboxBridgeCommand {
    /// Parses the arguments and runs the chosen command, keeping to ``ExitStatus``: what
    /// swift-argument-parser reports as a usage error (its status 64) exits with 2, and every
    /// error is one line on standard error, secrets masked.
    public static func main() async {
        SecretRedaction.register(arguments: CommandLine.arguments)
        let error: any Error
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            return
        } catch let thrown {
            error = thrown
        }
        var status = exitCode(for: error)
        if status.isSuccess {
            // --help and --version.
            exit(withError: error)
        }
        if error is PostgresError || error is KafkaError || error is ConfigurationError {
            status = ExitStatus.status(for: error)
        } else if status == .validationFailure {
            status = ExitStatus.badSettings
        }
        let message = message(for: error)
        if !message.isEmpty {
            // The usage text is many lines; keep the one that says where to read it.
            let helpHint = fullMessage(for: error).split(separator: "\n")
                .first { $0.trimmingCharacters(in: .whitespaces).hasPrefix("See '") }
                .map { " (\($0.trimmingCharacters(in: .whitespaces)))" } ?? ""
            printError(message + helpHint)
        }
        Foundation.exit(status.rawValue)
    }
}

/// Writes `message` to standard error as one line, secrets masked: multi-line messages (libpq's
/// hints such as "Is the server running on that host…") are joined with spaces.
func printError(_ message: String) {
    let line = message.split(whereSeparator: \.isNewline)
        .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    FileHandle.standardError.write(Data("outbox-bridge: \(SecretRedaction.redact(line))\n".utf8))
}
