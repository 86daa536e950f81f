import ArgumentParser
import Consumers
import Foundation
import Kafka
import Logging
import ServiceLifecycle

struct SchemaStateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "schema-state",
        abstract: "Keep a compacted topic with the latest shape of every tenant table and enum.",
        discussion: """
            Joins consumer group --group (default: schema-state) on --topic and writes, per \
            object, key <tenant>/<schema>.<name> to --state-topic: the latest table or enum shape \
            with the event id, tenant_seq and the events-topic position it came from; a dropped \
            table writes a tombstone. An input offset is committed only after the broker \
            acknowledged the output, and the same input always gives the same output. Create the \
            state topic with cleanup.policy=compact (the compose recipe does). New consumers can \
            start from it with --bootstrap-from schema-state. Invalid settings exit with status 2.
            """)

    @OptionGroup var consumer: ConsumerSettingsOptions
    @Option(help: "The compacted topic to keep the state in (schemaState.topic, default schema-state).")
    var stateTopic: String?

    /// Everything `schema-state` reads.
    struct Settings {
        var consumer: ConsumerSettings
        var stateTopic: String
    }

    func run() async throws {
        let settings = try await settingsOrExit { try await loadSettings() }
        settings.consumer.common.bootstrapLogging()
        let logger = Logger(label: "outbox-bridge.schema-state")
        let runtimeConfiguration = settings.consumer.runtime
        let producer: KafkaProducer
        let runtime: ConsumerRuntime
        do {
            producer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(
                    bootstrapServers: runtimeConfiguration.brokers, properties: runtimeConfiguration.kafkaProperties),
                logger: logger)
            runtime = try ConsumerRuntime(
                configuration: runtimeConfiguration,
                handler: SchemaStateHandler(
                    stateTopic: settings.stateTopic, producer: producer, brokers: runtimeConfiguration.brokers,
                    kafkaProperties: runtimeConfiguration.kafkaProperties, logger: logger),
                logger: logger)
        } catch {
            printError("cannot start schema-state: \(error)")
            throw ExitStatus.status(for: error)
        }
        try await settings.consumer.serviceGroup(for: runtime, logger: logger).run()
        await producer.shutdown(flushTimeout: runtimeConfiguration.shutdownTimeout)
    }

    /// The settings from file, environment and options, checked as a whole.
    func loadSettings(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws(ConfigurationError) -> Settings {
        var commandLine = CommandLineSettings()
        try consumer.add(to: &commandLine)
        commandLine.string("schemaState.topic", stateTopic, option: "--state-topic")
        return try await consumer.common.load(commandLine, environment: environment, Self.read)
    }

    /// Every setting `schema-state` uses, from whichever layer has it.
    static func read(from settings: SettingsReader) async throws -> Settings {
        let consumer = try await ConsumerSettings.read(from: settings, defaultGroup: "schema-state")
        let stateTopic = try await settings.string("schemaState.topic", default: "schema-state")
        guard !stateTopic.isEmpty, !consumer.runtime.topics.contains(stateTopic) else {
            throw ConfigurationError(key: "schemaState.topic", problem: "must be a topic other than the events topic (consumer.topic)")
        }
        return Settings(consumer: consumer, stateTopic: stateTopic)
    }
}
