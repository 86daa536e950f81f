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
            if let existing = try await Self.capturingSchema(on: connection), existing != schema {
                printError("""
                    this database already captures into schema \(existing) (one install per database); \
                    upgrade it with --schema \(existing), or remove it first with `outbox-bridge uninstall --schema \(existing)`
                    """)
                throw ExitStatus.badSettings
            }
            if try await Self.holdsUninstalledData(schema: schema, on: connection) {
                printError("""
                    schema \(schema) holds the tables an `uninstall` kept; install into another schema, \
                    or drop them first with `outbox-bridge uninstall --drop-data --schema \(schema)`
                    """)
                throw ExitStatus.badSettings
            }
            let installer = OutboxInstaller(connection: connection, schema: schema, logger: logger)
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

    /// The schema whose functions the capture's event triggers call, if the database has them.
    static func capturingSchema(on connection: PostgresConnection) async throws -> String? {
        let rows = try await connection.query("""
            SELECT n.nspname AS schema
            FROM pg_catalog.pg_event_trigger e
            JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
            JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE e.evtname IN ('outbox_bridge_capture_ddl', 'outbox_bridge_capture_drop')
            ORDER BY e.evtname LIMIT 1
            """)
        return try rows.first.map { try $0.require(String.self, column: "schema") }
    }

    /// Whether `uninstall` left this schema's tables without their functions: its migrations
    /// are recorded but cannot be applied again over the kept tables.
    static func holdsUninstalledData(schema: String, on connection: PostgresConnection) async throws -> Bool {
        let rows = try await connection.query("""
            SELECT pg_catalog.to_regclass(pg_catalog.format('%I.schema_migrations', $1::text)) IS NOT NULL
               AND pg_catalog.to_regprocedure(pg_catalog.format('%I.capture_ddl()', $1::text)) IS NULL AS uninstalled
            """, [schema])
        return try rows[0].require(Bool.self, column: "uninstalled")
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
