import ArgumentParser
import Foundation
import Logging
import Outbox
import Postgres

struct InstallCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "install",
        abstract: "Install or upgrade the capture schema, outbox and event triggers.",
        discussion: """
            Applies the sql/ migrations the database lacks, in one transaction, and records each \
            version; running it again changes nothing. Needs a superuser (on Neon, a member of \
            neon_superuser), because only they may create event triggers.
            """)

    @OptionGroup var outbox: OutboxLocation
    @Option(help: "Folder holding the NNN_name.sql migrations (default: found beside the executable).")
    var sqlDir: String?

    private var schema: String { outbox.schema }

    func run() async throws {
        let logger = Logger(label: "outbox-bridge.install")
        do {
            let migrations = try OutboxMigration.load(from: try Self.locateSQL(sqlDir))
            let connection = try await PostgresConnection.connect(outbox.effectiveDatabaseURL, logger: logger)
            let installer = OutboxInstaller(connection: connection, schema: schema, logger: logger)
            if let existing = try await installer.capturingSchema(), existing != schema {
                printError("""
                    this database already captures into schema \(existing) (one install per database); \
                    upgrade it with --schema \(existing), or remove it first with `outbox-bridge uninstall --schema \(existing)`
                    """)
                throw ExitStatus.badSettings
            }
            if try await installer.holdsUninstalledData() {
                printError("""
                    schema \(schema) holds the tables an `uninstall` kept; install into another schema, \
                    or drop them first with `outbox-bridge uninstall --drop-data --schema \(schema)`
                    """)
                throw ExitStatus.badSettings
            }
            let applied = try await installer.install(migrations)
            if applied.isEmpty {
                print("schema \(schema) is up to date (version \(migrations.last?.version ?? 0))")
            } else {
                print("installed into schema \(schema): " + applied.map { "\($0.version) \($0.name)" }.joined(separator: ", "))
            }
        } catch let error as PostgresError {
            printError(error.description)
            throw ExitStatus.status(for: error)
        } catch let error as InstallError {
            printError(error.description)
            throw ExitStatus.badSettings
        }
    }

    /// Where the migrations are: the option, `OUTBOX_BRIDGE_SQL_DIR`, an installed
    /// `share/outbox-bridge/sql` beside the binary, or the checkout the binary was built in.
    static func locateSQL(_ explicit: String?) throws -> URL {
        if let explicit = explicit ?? ProcessInfo.processInfo.environment["OUTBOX_BRIDGE_SQL_DIR"] {
            return URL(fileURLWithPath: explicit)
        }
        let executable = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        var folder = executable.deletingLastPathComponent()
        let installed = folder.appendingPathComponent("../share/outbox-bridge/sql").standardized
        if FileManager.default.fileExists(atPath: installed.appendingPathComponent("001_outbox_tables.sql").path) {
            return installed
        }
        while folder.path != "/" {
            let candidate = folder.appendingPathComponent("sql")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("001_outbox_tables.sql").path) {
                return candidate
            }
            folder = folder.deletingLastPathComponent()
        }
        throw InstallError(description: "cannot find the sql/ migrations; pass --sql-dir or set OUTBOX_BRIDGE_SQL_DIR")
    }
}
