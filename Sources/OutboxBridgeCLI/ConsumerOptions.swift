import ArgumentParser
import Consumers
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import UnixSignals

/// The checks `sdk-sync` and `warehouse-sync` share, run before anything connects.
enum ConsumerOptions {
    /// Registers the secrets among the properties for redaction, then refuses a configuration
    /// with a problem, a property librdkafka rejects, or an HTTP port that cannot be bound.
    static func check(_ configuration: ConsumerRuntimeConfiguration, httpPort: UInt16?) async throws(ConfigurationError) {
        SecretRedaction.register(kafkaProperties: configuration.kafkaProperties)
        SecretRedaction.register(kafkaProperties: configuration.consumerProperties)
        if let problem = configuration.problems.first {
            throw ConfigurationError(key: "consumer", problem: problem)
        }
        // As the runtime builds its clients: the consumer with both sets, the dead-letter
        // producer with the shared one.
        let consumer = KafkaConsumerConfiguration.defaultProperties
            .merging(configuration.kafkaProperties) { _, user in user }
            .merging(configuration.consumerProperties) { _, user in user }
        if let problem = await KafkaPropertyCheck.problem(with: consumer, for: .consumer) {
            throw ConfigurationError(key: "kafka-property", problem: problem)
        }
        let producer = KafkaProducerConfiguration.defaultProperties.merging(configuration.kafkaProperties) { _, user in user }
        if let problem = await KafkaPropertyCheck.problem(with: producer, for: .producer) {
            throw ConfigurationError(key: "kafka-property", problem: problem)
        }
        if let httpPort, let problem = PortCheck.bindProblem(host: "0.0.0.0", port: httpPort) {
            throw ConfigurationError(key: "http-port", problem: problem)
        }
    }

    /// `name=value` entries of a repeatable option (or settings key) as librdkafka properties.
    static func properties(_ entries: [String], option: String) throws(ConfigurationError) -> [String: String] {
        var properties: [String: String] = [:]
        for entry in entries {
            guard let separator = entry.firstIndex(of: "="), separator != entry.startIndex else {
                throw ConfigurationError(key: option, problem: "expected name=value, got \(entry)")
            }
            properties[String(entry[..<separator])] = String(entry[entry.index(after: separator)...])
        }
        return properties
    }

    /// `--source-database` and `--sequence-gap-timeout`, which every consumer takes.
    static func applyAdmission(
        sourceDatabases: [String], sequenceGapTimeout: Int, to configuration: inout ConsumerRuntimeConfiguration
    ) throws(ConfigurationError) {
        guard (0...86_400).contains(sequenceGapTimeout) else {
            throw ConfigurationError(key: "sequence-gap-timeout", problem: "must be between 0 and 86400 seconds")
        }
        configuration.sourceDatabases = sourceDatabases
        configuration.sequenceGapTimeout = .seconds(sequenceGapTimeout)
    }

    /// The consumer and, with a port, its `/metrics` and `/health`, stopped by SIGTERM or SIGINT
    /// within the runtime's shutdown bound.
    static func serviceGroup(for runtime: ConsumerRuntime, httpPort: UInt16?, logger: Logger) async throws -> ServiceGroup {
        let observability = try await ConsumerObservability.services(for: runtime, port: httpPort, logger: logger)
        var groupConfiguration = ServiceGroupConfiguration(
            services: observability + [.init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = runtime.configuration.shutdownTimeout
        return ServiceGroup(configuration: groupConfiguration)
    }
}

/// The options every consumer command built on ``ConsumerRuntime`` takes, for the commands that
/// share them as a group (`exec`, `schema-state`); each command adds its own and names its
/// default group.
struct ConsumerCommandOptions: ParsableArguments {
    @Option(help: "Kafka bootstrap servers, comma separated (default: KAFKA_BROKERS).")
    var brokers: String?
    @Option(help: "Consumer group; its dead-letter topic is <group>.dead-letter. Default: the command's name.")
    var group: String?
    @Option(help: "Topic the relay publishes schema changes to.")
    var topic = "schema-changes"
    @Option(help: "Attempts at an event before it is dead-lettered.")
    var maxAttempts = 5
    @Option(help: "Apply only events of this source database, repeatable. Default: the first database seen.")
    var sourceDatabase: [String] = []
    @Option(help: "Seconds an event after a missing tenant_seq is held back before it is dead-lettered.")
    var sequenceGapTimeout = 60
    @Option(name: .customLong("kafka-property"), help: "A librdkafka property for consumer and producers, as name=value, repeatable.")
    var kafkaProperties: [String] = []
    @Option(name: .customLong("consumer-property"), help: "A librdkafka property for the consumer only (session.timeout.ms=…), repeatable.")
    var consumerProperties: [String] = []
    @Option(help: "Seconds a graceful shutdown may take before the current event is abandoned (it is delivered again).")
    var shutdownTimeout = 15
    @Option(help: "logfmt or json.")
    var logFormat: LogFormat = .logfmt
    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"
    @Option(help: "Serve /metrics (consumer lag) and /health on this port; 0 picks a free one. Default: none.")
    var httpPort: UInt16?

    /// The runtime configuration, checked as a whole (``ConsumerOptions/check(_:httpPort:)``).
    func runtimeConfiguration(defaultGroup: String) async throws(ConfigurationError) -> ConsumerRuntimeConfiguration {
        guard let brokers = brokers ?? ProcessInfo.processInfo.environment["KAFKA_BROKERS"], !brokers.isEmpty else {
            throw ConfigurationError(key: "brokers", problem: "required (--brokers or KAFKA_BROKERS)")
        }
        guard (1...600).contains(shutdownTimeout) else {
            throw ConfigurationError(key: "shutdown-timeout", problem: "must be between 1 and 600 seconds")
        }
        var configuration = ConsumerRuntimeConfiguration(brokers: brokers, groupID: group ?? defaultGroup)
        configuration.topics = [topic]
        configuration.maxAttempts = maxAttempts
        configuration.shutdownTimeout = .seconds(shutdownTimeout)
        try ConsumerOptions.applyAdmission(
            sourceDatabases: sourceDatabase, sequenceGapTimeout: sequenceGapTimeout, to: &configuration)
        configuration.kafkaProperties = try ConsumerOptions.properties(kafkaProperties, option: "kafka-property")
        configuration.consumerProperties = try ConsumerOptions.properties(consumerProperties, option: "consumer-property")
        try await ConsumerOptions.check(configuration, httpPort: httpPort)
        return configuration
    }

    func level() throws(ConfigurationError) -> Logger.Level {
        guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
            throw ConfigurationError(key: "log-level", problem: "unknown level \(logLevel)")
        }
        return level
    }

    /// Sets up logging at the validated level and returns the command's logger.
    func bootstrapLogging(level: Logger.Level, label: String) -> Logger {
        let format = logFormat
        LoggingSystem.bootstrap { label in
            StructuredLogHandler(label: label, format: format, level: level)
        }
        return Logger(label: label)
    }
}
