import Consumers
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
