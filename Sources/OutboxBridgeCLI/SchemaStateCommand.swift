import ArgumentParser
import Consumers
import Foundation
import Kafka
import Logging
import ServiceLifecycle
import UnixSignals

struct SchemaStateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema-state",
        abstract: "Keep a compacted topic with the latest shape of every tenant table and enum.",
        discussion: """
            Joins consumer group --group on --topic and writes, per object, key \
            <tenant>/<schema>.<name> to --state-topic: the latest table or enum shape with the \
            event id, tenant_seq and the events-topic position it came from; a dropped table \
            writes a tombstone. An input offset is committed only after the broker acknowledged \
            the output, and the same input always gives the same output. Create the state topic \
            with cleanup.policy=compact (the compose recipe does). New consumers can start from \
            it with --bootstrap-from schema-state. Invalid settings exit with status 2.
            """)

    @Option(help: "Kafka bootstrap servers, comma separated (default: KAFKA_BROKERS).")
    var brokers: String?
    @Option(help: "Consumer group.")
    var group = "schema-state"
    @Option(help: "Topic the relay publishes schema changes to.")
    var topic = "schema-changes"
    @Option(help: "The compacted topic to keep the state in.")
    var stateTopic = "schema-state"
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
    @Option(help: "Seconds a graceful shutdown may take before the current event is abandoned.")
    var shutdownTimeout = 15
    @Option(help: "logfmt or json.")
    var logFormat: LogFormat = .logfmt
    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"
    @Option(help: "Serve /metrics (consumer lag) and /health on this port; 0 picks a free one. Default: none.")
    var httpPort: UInt16?

    func run() async throws {
        let settings: (ConsumerRuntimeConfiguration, Logger.Level)
        do {
            settings = try await validatedSettings()
        } catch let error as ConfigurationError {
            printError(error.description)
            throw ExitStatus.badSettings
        }
        let (runtimeConfiguration, level) = settings
        LoggingSystem.bootstrap { label in
            StructuredLogHandler(label: label, format: logFormat, level: level)
        }
        let logger = Logger(label: "outbox-bridge.schema-state")
        let producer: KafkaProducer
        let runtime: ConsumerRuntime
        do {
            producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(
                    bootstrapServers: runtimeConfiguration.brokers, properties: runtimeConfiguration.kafkaProperties),
                logger: logger)
            runtime = try ConsumerRuntime(
                configuration: runtimeConfiguration,
                handler: SchemaStateHandler(stateTopic: stateTopic, producer: producer, logger: logger), logger: logger)
        } catch {
            printError("cannot start schema-state: \(error)")
            throw ExitStatus.status(for: error)
        }
        try await ConsumerOptions.serviceGroup(for: runtime, httpPort: httpPort, logger: logger).run()
        await producer.shutdown(flushTimeout: runtimeConfiguration.shutdownTimeout)
    }

    private func validatedSettings() async throws -> (ConsumerRuntimeConfiguration, Logger.Level) {
        let environment = ProcessInfo.processInfo.environment
        guard let brokers = brokers ?? environment["KAFKA_BROKERS"], !brokers.isEmpty else {
            throw ConfigurationError(key: "brokers", problem: "required (--brokers or KAFKA_BROKERS)")
        }
        guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
            throw ConfigurationError(key: "log-level", problem: "unknown level \(logLevel)")
        }
        guard (1...600).contains(shutdownTimeout) else {
            throw ConfigurationError(key: "shutdown-timeout", problem: "must be between 1 and 600 seconds")
        }
        guard !stateTopic.isEmpty, stateTopic != topic else {
            throw ConfigurationError(key: "state-topic", problem: "must be a topic other than --topic")
        }
        var configuration = ConsumerRuntimeConfiguration(brokers: brokers, groupID: group)
        configuration.topics = [topic]
        configuration.maxAttempts = maxAttempts
        configuration.shutdownTimeout = .seconds(shutdownTimeout)
        try ConsumerOptions.applyAdmission(
            sourceDatabases: sourceDatabase, sequenceGapTimeout: sequenceGapTimeout, to: &configuration)
        configuration.kafkaProperties = try ConsumerOptions.properties(kafkaProperties, option: "kafka-property")
        configuration.consumerProperties = try ConsumerOptions.properties(consumerProperties, option: "consumer-property")
        try await ConsumerOptions.check(configuration, httpPort: httpPort)
        return (configuration, level)
    }
}
