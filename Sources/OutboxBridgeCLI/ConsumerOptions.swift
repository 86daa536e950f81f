import ArgumentParser
import Consumers
import Kafka
import Logging
import ServiceLifecycle
import UnixSignals

/// The options every consumer command shares, each with its settings key (config/ documents
/// them per command). A consumer command adds its own options next to this group.
struct ConsumerSettingsOptions: ParsableArguments, SharedSettingsOptions {
    @Option(help: "Kafka bootstrap servers, comma separated (kafka.brokers, KAFKA_BROKERS); required.")
    var brokers: String?
    @Option(help: "Consumer group (consumer.group; default: the command's name).")
    var group: String?
    @Option(help: "Topic the relay publishes schema changes to (consumer.topic, default schema-changes).")
    var topic: String?
    @Option(help: "Dead-letter topic (consumer.deadLetterTopic, default <group>.dead-letter).")
    var deadLetterTopic: String?
    @Option(help: "Attempts at an event before it is dead-lettered (consumer.maxAttempts, default 5).")
    var maxAttempts: String?
    @Option(name: .customLong("kafka-property"),
            help: "A librdkafka property for consumer and dead-letter producer, as name=value, repeatable (kafka.properties).")
    var kafkaProperties: [String] = []
    @Option(name: .customLong("consumer-property"),
            help: "A librdkafka property for the consumer only (session.timeout.ms=…), repeatable (kafka.consumerProperties).")
    var consumerProperties: [String] = []
    @Option(help: "Serve /metrics (consumer lag) and /health on this port; 0 picks a free one (http.port; default: none).")
    var httpPort: String?
    @Option(help: "Apply only events of this source database, repeatable (consumer.sourceDatabases; default: the first database seen).")
    var sourceDatabase: [String] = []
    @Option(help: "Seconds an event after a missing tenant_seq is held back before it is dead-lettered (consumer.sequenceGapTimeoutSeconds, default 60).")
    var sequenceGapTimeout: String?
    @OptionGroup var common: CommonSettingsOptions

    func add(to commandLine: inout CommandLineSettings) throws(ConfigurationError) {
        try common.add(to: &commandLine)
        commandLine.string("kafka.brokers", brokers, option: "--brokers")
        commandLine.string("consumer.group", group, option: "--group")
        commandLine.string("consumer.topic", topic, option: "--topic")
        commandLine.string("consumer.deadLetterTopic", deadLetterTopic, option: "--dead-letter-topic")
        try commandLine.int("consumer.maxAttempts", maxAttempts, option: "--max-attempts")
        commandLine.list("kafka.properties", kafkaProperties, option: "--kafka-property")
        commandLine.list("kafka.consumerProperties", consumerProperties, option: "--consumer-property")
        try commandLine.int("http.port", httpPort, option: "--http-port")
        commandLine.list("consumer.sourceDatabases", sourceDatabase, option: "--source-database")
        try commandLine.number("consumer.sequenceGapTimeoutSeconds", sequenceGapTimeout, option: "--sequence-gap-timeout")
    }
}

/// `--bootstrap-from`, for the consumers whose state can be built from the schema-state topic
/// (`sdk-sync`, `warehouse-sync`).
struct BootstrapOption: ParsableArguments {
    @Option(help: "With no state yet, build it from this compacted schema-state topic, then continue where it ends (consumer.bootstrapFrom; default: none).")
    var bootstrapFrom: String?

    func add(to commandLine: inout CommandLineSettings) {
        commandLine.string("consumer.bootstrapFrom", bootstrapFrom, option: "--bootstrap-from")
    }
}

/// What every consumer command reads, checked before anything connects.
struct ConsumerSettings {
    var runtime: ConsumerRuntimeConfiguration
    var httpPort: UInt16?
    /// The bearer token that opens the status page to clients off loopback; `nil`: loopback only.
    var statusToken: String?
    var common: CommonSettings

    /// - Parameter bootstrappable: whether the command's handler can be built from the
    ///   schema-state topic, so that `consumer.bootstrapFrom` is read.
    static func read(
        from settings: SettingsReader, defaultGroup: String, bootstrappable: Bool = false
    ) async throws -> ConsumerSettings {
        let brokers = try await settings.requiredString(
            "kafka.brokers", problem: "required (--brokers, KAFKA_BROKERS or kafka.brokers in the settings file)")
        let defaults = ConsumerRuntimeConfiguration(brokers: brokers, groupID: defaultGroup)
        var runtime = ConsumerRuntimeConfiguration(
            brokers: brokers, groupID: try await settings.string("consumer.group", default: defaultGroup))
        runtime.topics = [try await settings.string("consumer.topic", default: defaults.topics[0])]
        runtime.deadLetterTopic = try await settings.optionalString("consumer.deadLetterTopic")
        // Bounded by the runtime's own problems ("maxAttempts must be at least 1"), checked below.
        runtime.maxAttempts = try await settings.int("consumer.maxAttempts", default: defaults.maxAttempts)
        runtime.kafkaProperties = try await settings.properties("kafka.properties")
        runtime.consumerProperties = try await settings.properties("kafka.consumerProperties")
        runtime.sourceDatabases = try await settings.strings("consumer.sourceDatabases")
        runtime.sequenceGapTimeout = try await settings.seconds(
            "consumer.sequenceGapTimeoutSeconds", default: defaults.sequenceGapTimeout, in: 0...86_400)
        if bootstrappable {
            runtime.bootstrapTopic = try await settings.optionalString("consumer.bootstrapFrom")
        }
        let common = try await CommonSettings.read(from: settings)
        runtime.shutdownTimeout = common.shutdownTimeout
        let httpPort = try await settings.optionalInt("http.port", in: 0...65_535).map { UInt16($0) }
        let statusToken = try await settings.statusToken()
        try await check(runtime, httpPort: httpPort)
        return ConsumerSettings(runtime: runtime, httpPort: httpPort, statusToken: statusToken, common: common)
    }

    /// Starts the consumer `name` with the handler `makeHandler` builds, and with a port its
    /// `/metrics`, `/health` and status page, until SIGTERM or SIGINT stops it within the
    /// shutdown bound. A handler, consumer or endpoint that cannot be built is one line on stderr
    /// and the exit status its cause calls for.
    func run(_ name: String, makeHandler: (Logger) async throws -> any EventHandler) async throws {
        common.bootstrapLogging()
        let logger = Logger(label: "outbox-bridge.\(name)")
        let runtime: ConsumerRuntime
        let observability: [ServiceGroupConfiguration.ServiceConfiguration]
        do {
            runtime = try ConsumerRuntime(configuration: self.runtime, handler: try await makeHandler(logger), logger: logger)
            observability = try await ConsumerObservability.services(
                for: runtime, port: httpPort, statusToken: statusToken, logger: logger)
        } catch let error as ConsumerStartupError {
            printError(error.description)
            throw error.status
        } catch {
            printError("cannot start \(name): \(error)")
            throw ExitStatus.status(for: error)
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: observability + [.init(service: runtime, successTerminationBehavior: .gracefullyShutdownGroup)],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        groupConfiguration.maximumGracefulShutdownDuration = common.shutdownTimeout
        try await ServiceGroup(configuration: groupConfiguration).run()
    }

    /// Registers the secrets among the properties for redaction, then refuses a configuration
    /// with a problem, a property librdkafka rejects, or an HTTP port that cannot be bound.
    private static func check(_ configuration: ConsumerRuntimeConfiguration, httpPort: UInt16?) async throws(ConfigurationError) {
        SecretRedaction.register(kafkaProperties: configuration.kafkaProperties)
        SecretRedaction.register(kafkaProperties: configuration.consumerProperties)
        if let problem = configuration.problems.first {
            throw ConfigurationError(key: "consumer", problem: problem)
        }
        // As the runtime builds its clients: the dead-letter producer with the shared set, the
        // consumer with both.
        let producer = KafkaProducerConfiguration.defaultProperties.merging(configuration.kafkaProperties) { _, user in user }
        if let problem = await KafkaPropertyCheck.problem(with: producer, for: .producer) {
            throw ConfigurationError(key: "kafka.properties", problem: problem)
        }
        let consumer = KafkaConsumerConfiguration.defaultProperties
            .merging(configuration.kafkaProperties) { _, user in user }
            .merging(configuration.consumerProperties) { _, user in user }
        if let problem = await KafkaPropertyCheck.problem(with: consumer, for: .consumer) {
            let key = configuration.consumerProperties.isEmpty ? "kafka.properties" : "kafka.consumerProperties"
            throw ConfigurationError(key: key, problem: problem)
        }
        if let httpPort, let problem = PortCheck.bindProblem(host: "0.0.0.0", port: httpPort) {
            throw ConfigurationError(key: "http.port", problem: problem)
        }
    }
}

/// A consumer's handler that cannot start, said in the handler's own words.
struct ConsumerStartupError: Error, CustomStringConvertible {
    let description: String
    /// ``ExitStatus/unreachable`` unless the failure is one of the settings.
    var status = ExitStatus.unreachable
}
