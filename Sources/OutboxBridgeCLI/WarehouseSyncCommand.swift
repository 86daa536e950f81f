import ArgumentParser
import Consumers
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

struct WarehouseSyncCommand: AsyncParsableCommand {
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

    func run() async throws {
        let assembly = try await settingsOrExit { try await loadSettings() }
        assembly.consumer.common.bootstrapLogging()
        let logger = Logger(label: "outbox-bridge.warehouse-sync")
        let services: (ServiceGroup, WarehouseSyncHandler)
        do {
            services = try await assembly.build(logger: logger)
        } catch {
            printError(error.description)
            throw error.status
        }
        try await services.0.run()
    }

    /// The settings from file, environment and options, checked as a whole.
    func loadSettings(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws(ConfigurationError) -> WarehouseSyncAssembly {
        var commandLine = CommandLineSettings()
        try consumer.add(to: &commandLine)
        bootstrap.add(to: &commandLine)
        commandLine.string("warehouse.url", warehouseURL, option: "--warehouse-url")
        commandLine.string("warehouse.dropPolicy", dropPolicy, option: "--drop-policy")
        return try await consumer.common.load(commandLine, environment: environment, Self.read)
    }

    /// Every setting `warehouse-sync` uses, from whichever layer has it.
    static func read(from settings: SettingsReader) async throws -> WarehouseSyncAssembly {
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
        return WarehouseSyncAssembly(consumer: consumer, warehouse: warehouse)
    }
}

/// Validated `warehouse-sync` settings and the services they build, separate from argument
/// parsing so tests can assemble the same thing.
struct WarehouseSyncAssembly {
    struct StartupError: Error, CustomStringConvertible {
        let description: String
        /// ``ExitStatus/unreachable`` unless the failure is one of the settings.
        var status = ExitStatus.unreachable
    }

    var consumer: ConsumerSettings
    var warehouse: WarehouseSyncConfiguration

    /// Connects to the warehouse (so a bad URL, a missing privilege or a capture-loop risk fails
    /// here, in one line, before joining the group) and builds the consumer.
    func build(logger: Logger) async throws(StartupError) -> (ServiceGroup, WarehouseSyncHandler) {
        let handler = WarehouseSyncHandler(configuration: warehouse, logger: logger)
        do {
            try await handler.prepare()
        } catch {
            let status = if case .postgres(let cause) = error { ExitStatus.status(for: cause) } else { ExitStatus.badSettings }
            throw StartupError(description: "warehouse-sync: \(error)", status: status)
        }
        let runtime: ConsumerRuntime
        do {
            runtime = try ConsumerRuntime(configuration: consumer.runtime, handler: handler, logger: logger)
        } catch {
            throw StartupError(description: "warehouse-sync: \(error)")
        }
        do {
            return (try await consumer.serviceGroup(for: runtime, logger: logger), handler)
        } catch {
            throw StartupError(description: "warehouse-sync: cannot serve /metrics: \(error)")
        }
    }
}
