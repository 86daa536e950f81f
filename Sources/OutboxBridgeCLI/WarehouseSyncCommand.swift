import ArgumentParser
import Consumers
import Foundation
import Logging

struct WarehouseSyncCommand: ConsumerCommand {
    static let configuration = CommandConfiguration(
        commandName: "warehouse-sync",
        abstract: "Mirror tenant table shapes into a PostgreSQL-compatible warehouse, each event exactly once in effect.",
        discussion: """
            Joins consumer group --group on --topic and applies each schema change to the warehouse \
            in one transaction together with its event id (table outbox_warehouse.applied_events), \
            so a redelivered event changes nothing. Unsafe type changes are dead-lettered to \
            <group>.dead-letter. If the warehouse is in the same PostgreSQL cluster as a captured \
            database, connect as a role granted outbox_automation. Invalid options exit with status 2; \
            a warehouse or Kafka that cannot be reached at start exits with status 3. Settings come \
            from --config (config/warehouse-sync.yaml documents every key), then environment \
            variables (warehouse.url is WAREHOUSE_URL), then these options.
            """)

    @OptionGroup var consumer: ConsumerSettingsOptions
    @OptionGroup var bootstrap: BootstrapOption
    @Option(help: "Warehouse database URL or conninfo (warehouse.url, WAREHOUSE_URL); required.")
    var warehouseURL: String?
    @Option(help: "What a dropped table, column or schema becomes in the warehouse: keep (renamed as deprecated) or drop (warehouse.dropPolicy, default keep).")
    var dropPolicy: String?

    /// Everything `warehouse-sync` reads.
    struct Settings: ConsumerCommandSettings {
        var consumer: ConsumerSettings
        var warehouse: WarehouseSyncConfiguration
    }

    func makeHandler(_ settings: Settings, logger: Logger) async throws -> any EventHandler {
        // Connects to the warehouse, so a bad URL, a missing privilege or a capture-loop risk
        // fails here, in one line, before joining the group.
        let handler = WarehouseSyncHandler(configuration: settings.warehouse, logger: logger)
        do throws(WarehouseSyncError) {
            try await handler.prepare()
        } catch {
            let status = if case .postgres(let cause) = error { ExitStatus.status(for: cause) } else { ExitStatus.badSettings }
            throw ConsumerStartupError(description: "warehouse-sync: \(error)", status: status)
        }
        return handler
    }

    func add(to commandLine: inout CommandLineSettings) {
        bootstrap.add(to: &commandLine)
        commandLine.string("warehouse.url", warehouseURL, option: "--warehouse-url")
        commandLine.string("warehouse.dropPolicy", dropPolicy, option: "--drop-policy")
    }

    func settings(from reader: SettingsReader) async throws -> Settings { try await Self.read(from: reader) }

    /// Every setting `warehouse-sync` uses, from whichever layer has it.
    static func read(from settings: SettingsReader) async throws -> Settings {
        let consumer = try await ConsumerSettings.read(from: settings, defaultGroup: "warehouse-sync", bootstrappable: true)
        let url = try await settings.requiredString(
            "warehouse.url", isSecret: true, problem: "required (--warehouse-url, WAREHOUSE_URL or warehouse.url)")
        SecretRedaction.register(connectionString: url)
        if let problem = ConnectionString(url).problem {
            throw ConfigurationError(key: "warehouse.url", problem: problem)
        }
        let policyName = try await settings.string("warehouse.dropPolicy", default: "keep")
        guard let policy = WarehouseSyncConfiguration.DropPolicy(rawValue: policyName) else {
            throw ConfigurationError(key: "warehouse.dropPolicy", problem: "must be keep or drop, not '\(policyName)'")
        }
        var warehouse = WarehouseSyncConfiguration(warehouseURL: url)
        warehouse.dropPolicy = policy
        return Settings(consumer: consumer, warehouse: warehouse)
    }
}
