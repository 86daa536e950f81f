import ArgumentParser
import Consumers
import Foundation
import Kafka
import Logging

struct SchemaStateCommand: AsyncParsableCommand, SettingsCommand {
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

    var shared: ConsumerSettingsOptions { consumer }

    func run() async throws {
        let settings = try await loadSettingsOrExit()
        let runtime = settings.consumer.runtime
        // Outlives the consumer, so the state written for the last events is flushed after it stops.
        var producer: KafkaProducer?
        try await settings.consumer.run("schema-state") { logger in
            let stateProducer = try KafkaProducer(
                configuration: KafkaProducerConfiguration(bootstrapServers: runtime.brokers, properties: runtime.kafkaProperties),
                logger: logger)
            producer = stateProducer
            return SchemaStateHandler(
                stateTopic: settings.stateTopic, producer: stateProducer, brokers: runtime.brokers,
                kafkaProperties: runtime.kafkaProperties, logger: logger)
        }
        await producer?.shutdown(flushTimeout: runtime.shutdownTimeout)
    }

    func add(to commandLine: inout CommandLineSettings) {
        commandLine.string("schemaState.topic", stateTopic, option: "--state-topic")
    }

    func settings(from reader: SettingsReader) async throws -> Settings { try await Self.read(from: reader) }

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
