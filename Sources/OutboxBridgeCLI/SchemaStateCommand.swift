import ArgumentParser
import Consumers
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

    @OptionGroup var consumer: ConsumerCommandOptions
    @Option(help: "The compacted topic to keep the state in.")
    var stateTopic = "schema-state"

    func run() async throws {
        let settings: (ConsumerRuntimeConfiguration, Logger.Level)
        do {
            let level = try consumer.level()
            guard !stateTopic.isEmpty, stateTopic != consumer.topic else {
                throw ConfigurationError(key: "state-topic", problem: "must be a topic other than --topic")
            }
            settings = (try await consumer.runtimeConfiguration(defaultGroup: "schema-state"), level)
        } catch let error as ConfigurationError {
            printError(error.description)
            throw ExitStatus.badSettings
        }
        let (runtimeConfiguration, level) = settings
        let logger = consumer.bootstrapLogging(level: level, label: "outbox-bridge.schema-state")
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
                    stateTopic: stateTopic, producer: producer, brokers: runtimeConfiguration.brokers,
                    kafkaProperties: runtimeConfiguration.kafkaProperties, logger: logger),
                logger: logger)
        } catch {
            printError("cannot start schema-state: \(error)")
            throw ExitStatus.status(for: error)
        }
        try await ConsumerOptions.serviceGroup(for: runtime, httpPort: consumer.httpPort, logger: logger).run()
        await producer.shutdown(flushTimeout: runtimeConfiguration.shutdownTimeout)
    }
}
