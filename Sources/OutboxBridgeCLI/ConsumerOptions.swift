import Consumers
import Kafka

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
}
