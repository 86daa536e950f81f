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
            a warehouse or Kafka that cannot be reached at start exits with status 3.
            """)

    @Option(help: "Kafka bootstrap servers.")
    var brokers: String
    @Option(help: "Warehouse database URL or conninfo (libpq).")
    var warehouseURL: String
    @Option(help: "Consumer group.")
    var group = "warehouse-sync"
    @Option(help: "What a dropped table, column or schema becomes in the warehouse: keep (renamed as deprecated) or drop.")
    var dropPolicy = "keep"
    @Option(help: "Topic the relay publishes schema changes to.")
    var topic = "schema-changes"
    @Option(name: .customLong("kafka-property"), help: "A librdkafka property as name=value, repeatable (SASL, SSL, timeouts).")
    var kafkaProperties: [String] = []
    @Option(help: "Serve /metrics (consumer lag) and /health on this port; 0 picks a free one. Default: none.")
    var httpPort: UInt16?
    @Option(help: "Seconds a graceful shutdown may take before the current event is abandoned (it is delivered again).")
    var shutdownTimeout = 15
    @Option(help: "logfmt or json.")
    var logFormat: LogFormat = .logfmt
    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"
    @Option(help: "Apply only events of this source database, repeatable. Default: the first database seen.")
    var sourceDatabase: [String] = []
    @Option(help: "Seconds an event after a missing tenant_seq is held back before it is dead-lettered.")
    var sequenceGapTimeout = 60
    @Option(help: "With an empty warehouse, build it from this compacted schema-state topic, then continue where it ends. Default: none.")
    var bootstrapFrom: String?

    func run() async throws {
        let assembly: WarehouseSyncAssembly
        do {
            assembly = try await WarehouseSyncAssembly(
                brokers: brokers, warehouseURL: warehouseURL, group: group, dropPolicy: dropPolicy, topic: topic,
                kafkaProperties: kafkaProperties, logLevel: logLevel, shutdownTimeout: shutdownTimeout, httpPort: httpPort,
                sourceDatabases: sourceDatabase, sequenceGapTimeout: sequenceGapTimeout, bootstrapFrom: bootstrapFrom)
        } catch {
            printError(error.description)
            throw ExitStatus.badSettings
        }
        let level = assembly.logLevel
        LoggingSystem.bootstrap { label in
            StructuredLogHandler(label: label, format: logFormat, level: level)
        }
        let logger = Logger(label: "outbox-bridge.warehouse-sync")
        let services: (ServiceGroup, WarehouseSyncHandler)
        do {
            services = try await assembly.build(httpPort: httpPort, logger: logger)
        } catch {
            printError(error.description)
            throw error.status
        }
        try await services.0.run()
    }
}

/// Validated `warehouse-sync` settings and the services they build, separate from argument
/// parsing so tests can assemble the same thing.
struct WarehouseSyncAssembly {
    struct InvalidOption: Error, CustomStringConvertible {
        let description: String
    }

    struct StartupError: Error, CustomStringConvertible {
        let description: String
        /// ``ExitStatus/unreachable`` unless the failure is one of the settings.
        var status = ExitStatus.unreachable
    }

    var runtime: ConsumerRuntimeConfiguration
    var warehouse: WarehouseSyncConfiguration
    var logLevel: Logger.Level

    init(
        brokers: String, warehouseURL: String, group: String, dropPolicy: String, topic: String,
        kafkaProperties: [String] = [], logLevel: String, shutdownTimeout: Int = 15, httpPort: UInt16? = nil,
        sourceDatabases: [String] = [], sequenceGapTimeout: Int = 60, bootstrapFrom: String? = nil
    ) async throws(InvalidOption) {
        guard let policy = WarehouseSyncConfiguration.DropPolicy(rawValue: dropPolicy) else {
            throw InvalidOption(
                description: "--drop-policy must be keep or drop, not '\(dropPolicy)'")
        }
        guard let level = Logger.Level(rawValue: logLevel) else {
            throw InvalidOption(description: "--log-level must be trace, debug, info, notice, warning, error or critical")
        }
        guard !warehouseURL.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw InvalidOption(description: "--warehouse-url must not be empty")
        }
        SecretRedaction.register(connectionString: warehouseURL)
        if let problem = ConnectionString(warehouseURL).problem {
            throw InvalidOption(description: "--warehouse-url: \(problem)")
        }
        guard (1...600).contains(shutdownTimeout) else {
            throw InvalidOption(description: "--shutdown-timeout must be between 1 and 600 seconds, got \(shutdownTimeout)")
        }
        var runtime = ConsumerRuntimeConfiguration(brokers: brokers, groupID: group)
        runtime.topics = [topic]
        runtime.shutdownTimeout = .seconds(shutdownTimeout)
        runtime.bootstrapTopic = bootstrapFrom
        do {
            runtime.kafkaProperties = try ConsumerOptions.properties(kafkaProperties, option: "kafka-property")
            try ConsumerOptions.applyAdmission(
                sourceDatabases: sourceDatabases, sequenceGapTimeout: sequenceGapTimeout, to: &runtime)
            try await ConsumerOptions.check(runtime, httpPort: httpPort)
        } catch {
            throw InvalidOption(description: error.description)
        }
        var warehouse = WarehouseSyncConfiguration(warehouseURL: warehouseURL)
        warehouse.dropPolicy = policy
        self.runtime = runtime
        self.warehouse = warehouse
        self.logLevel = level
    }

    /// Connects to the warehouse (so a bad URL, a missing privilege or a capture-loop risk fails
    /// here, in one line, before joining the group) and builds the consumer.
    func build(httpPort: UInt16? = nil, logger: Logger) async throws(StartupError) -> (ServiceGroup, WarehouseSyncHandler) {
        let handler = WarehouseSyncHandler(configuration: warehouse, logger: logger)
        do {
            try await handler.prepare()
        } catch {
            let status = if case .postgres(let cause) = error { ExitStatus.status(for: cause) } else { ExitStatus.badSettings }
            throw StartupError(description: "warehouse-sync: \(error)", status: status)
        }
        let consumer: ConsumerRuntime
        do {
            consumer = try ConsumerRuntime(configuration: runtime, handler: handler, logger: logger)
        } catch {
            throw StartupError(description: "warehouse-sync: \(error)")
        }
        let observability: [ServiceGroupConfiguration.ServiceConfiguration]
        do {
            observability = try await ConsumerObservability.services(for: consumer, port: httpPort, logger: logger)
        } catch {
            throw StartupError(description: "warehouse-sync: cannot serve /metrics: \(error)")
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: observability + [.init(service: consumer)], gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = runtime.shutdownTimeout
        return (ServiceGroup(configuration: groupConfiguration), handler)
    }
}
