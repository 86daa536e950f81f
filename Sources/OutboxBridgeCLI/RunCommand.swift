import ArgumentParser
import Configuration
import Foundation
import Kafka
import Logging
import Relay
import ServiceLifecycle
import CoreMetrics
import Operations
import Prometheus

struct RunCommand: AsyncParsableCommand, SettingsCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Relay outbox events to Kafka, keyed by tenant, marking each row only after its ack.",
        discussion: """
            Settings come from the YAML file given with --config (config/bridge.yaml documents \
            every key), then environment variables (relay.batchSize is RELAY_BATCH_SIZE, \
            database.url is DATABASE_URL), then these options, each overriding the one before. \
            Invalid settings exit with status 2.
            """)

    @OptionGroup var common: CommonSettingsOptions
    @Option(help: "Outbox database URL or conninfo (database.url, DATABASE_URL); may go through a pooler.")
    var databaseURL: String?
    @Option(help: "Direct connection for LISTEN when --database-url goes through a pooler (listen.url).")
    var listenURL: String?
    @Flag(help: "Never LISTEN; poll only (listen.pollOnly).")
    var pollOnly = false
    @Option(help: "Kafka bootstrap servers (kafka.brokers, KAFKA_BROKERS); required unless --dev-broker.")
    var brokers: String?
    @Flag(help: "Relay to an in-memory development broker in this process instead of Kafka; everything it holds is lost on exit (kafka.devBroker, KAFKA_DEV_BROKER).")
    var devBroker = false
    @Option(help: "Topic template with {tenant}, {schema}, {command}, {database} (relay.topic).")
    var topic: String?
    @Option(help: "Dead-letter topic (relay.deadLetterTopic).")
    var deadLetterTopic: String?
    @Option(help: "Schema the capture SQL is installed in (outbox.schema).")
    var schema: String?
    @Option(help: "Rows per batch (relay.batchSize).")
    var batchSize: String?
    @Option(help: "Seconds between polls when no notification arrives (relay.pollIntervalSeconds).")
    var pollInterval: String?
    @Option(help: "Failed attempts before an event is dead-lettered (relay.maxAttempts).")
    var maxAttempts: String?
    @Option(name: .customLong("kafka-property"), help: "A librdkafka property as name=value, repeatable (kafka.properties).")
    var kafkaProperties: [String] = []
    @Option(name: .customLong("allow-unsafe-kafka-property"),
            help: "Accept this guarantee-breaking librdkafka property (acks, enable.idempotence, partitioner, max.in.flight…), with a warning at every start; repeatable (kafka.allowUnsafeProperties).")
    var allowedUnsafeKafkaProperties: [String] = []
    @Option(help: "Port for /metrics and /health (http.port; 0 picks a free one).")
    var httpPort: String?

    /// Everything `run` reads, beyond the relay's own configuration.
    struct Settings {
        var relay: RelayConfiguration
        var common: CommonSettings
        var retention: RetentionPolicy?
        var observability: ObservabilityEndpoint?
        /// Time between two `reconcile()` calls; nil when drift reconciliation is off.
        var driftInterval: Duration?
        /// Guarantee-breaking properties the settings explicitly allow; warned about at start.
        var acceptedUnsafeProperties: [ProducerGuarantees.Violation]
    }

    func run() async throws {
        let settings = try await loadSettingsOrExit()
        settings.common.bootstrapLogging()
        let logger = Logger(label: "outbox-bridge")
        for accepted in settings.acceptedUnsafeProperties {
            logger.warning("UNSAFE KAFKA PROPERTY ACCEPTED (kafka.allowUnsafeProperties): \(accepted)")
        }
        // Reachable and installed, or exit 3 or 2 with one line, before the relay is assembled.
        _ = try await connectToInstalledOutbox(databaseURL: settings.relay.databaseURL, schema: settings.relay.schema)
        do {
            if let observability = settings.observability {
                MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: observability.registry))
            }
            let assembly = try await RelayApplication.assemble(
                configuration: settings.relay, shutdownTimeout: settings.common.shutdownTimeout, retention: settings.retention,
                observability: settings.observability, driftInterval: settings.driftInterval, logger: logger)
            if let broker = assembly.developmentBroker {
                // Unbuffered, so a script reading our output sees the line at once.
                FileHandle.standardOutput.write(Data("development broker: \(broker.bootstrapServers)\n".utf8))
            }
            try await assembly.serviceGroup.run()
            withExtendedLifetime(assembly.developmentBroker) {}
        } catch let error as RelayApplication.StartupError {
            // The database was checked above and the settings before it: what is left is a
            // dependency that cannot be reached or used.
            printError(error.description)
            throw ExitStatus.unreachable
        }
    }

    var shared: CommonSettingsOptions { common }

    func add(to commandLine: inout CommandLineSettings) throws(ConfigurationError) {
        commandLine.string("database.url", databaseURL, option: "--database-url")
        commandLine.string("listen.url", listenURL, option: "--listen-url")
        commandLine.flag("listen.pollOnly", pollOnly, option: "--poll-only")
        commandLine.string("kafka.brokers", brokers, option: "--brokers")
        commandLine.flag("kafka.devBroker", devBroker, option: "--dev-broker")
        commandLine.list("kafka.allowUnsafeProperties", allowedUnsafeKafkaProperties, option: "--allow-unsafe-kafka-property")
        commandLine.list("kafka.properties", kafkaProperties, option: "--kafka-property")
        commandLine.string("relay.topic", topic, option: "--topic")
        commandLine.string("relay.deadLetterTopic", deadLetterTopic, option: "--dead-letter-topic")
        commandLine.string("outbox.schema", schema, option: "--schema")
        try commandLine.int("relay.batchSize", batchSize, option: "--batch-size")
        try commandLine.number("relay.pollIntervalSeconds", pollInterval, option: "--poll-interval")
        try commandLine.int("relay.maxAttempts", maxAttempts, option: "--max-attempts")
        try commandLine.int("http.port", httpPort, option: "--http-port")
    }

    func settings(from reader: SettingsReader) async throws -> Settings { try await Self.read(from: reader) }

    /// Every setting `run` uses, from whichever layer has it.
    static func read(from settings: SettingsReader) async throws -> Settings {
        let relay = try await RelayConfiguration.read(from: settings)
        return Settings(
            relay: relay, common: try await CommonSettings.read(from: settings),
            retention: try await retention(from: settings),
            observability: try await observability(from: settings),
            driftInterval: try await driftInterval(from: settings),
            acceptedUnsafeProperties: try await checkKafka(relay, settings: settings))
    }

    /// `drift.reconcileIntervalSeconds`; nil when it is 0 (off).
    private static func driftInterval(from settings: SettingsReader) async throws -> Duration? {
        let interval = try await settings.seconds("drift.reconcileIntervalSeconds", default: .seconds(300), in: 0...86_400)
        if interval > .zero, interval < .seconds(1) {
            throw ConfigurationError(
                key: "drift.reconcileIntervalSeconds", problem: "must be 0 (off) or at least 1 second, got \(interval)")
        }
        return interval == .zero ? nil : interval
    }

    /// `retention.keepProcessed` in the units `prune --older-than` takes; `0` keeps everything.
    private static func retention(from settings: SettingsReader) async throws -> RetentionPolicy? {
        let keepText = try await settings.string("retention.keepProcessed", default: "7d")
        let interval = try await settings.seconds("retention.intervalSeconds", default: .seconds(600), in: 1...86_400)
        if keepText.trimmingCharacters(in: .whitespaces) == "0" { return nil }
        guard let keep = parseDuration(keepText) else {
            throw ConfigurationError(
                key: "retention.keepProcessed",
                problem: "expected a number with a unit (7d, 12h, 30m, 45s) or 0 to keep everything, got \(keepText)")
        }
        guard keep > .zero else { return nil }
        var retention = RetentionPolicy()
        retention.keepProcessed = keep
        retention.interval = interval
        return retention
    }

    /// The HTTP endpoint, checked to be bindable now rather than failing (or warning) later.
    private static func observability(from settings: SettingsReader) async throws -> ObservabilityEndpoint? {
        let enabled = try await settings.bool("http.enabled", default: true)
        var endpoint = ObservabilityEndpoint(registry: PrometheusCollectorRegistry())
        endpoint.host = try await settings.string("http.host", default: endpoint.host)
        endpoint.port = UInt16(try await settings.int("http.port", default: Int(endpoint.port), in: 0...65_535))
        endpoint.statusToken = try await settings.statusToken()
        guard enabled else { return nil }
        if let problem = PortCheck.bindProblem(host: endpoint.host, port: endpoint.port) {
            throw ConfigurationError(key: "http.port", problem: problem)
        }
        return endpoint
    }

    /// Brokers or an explicit development broker, properties librdkafka accepts, and no
    /// guarantee-breaking property unless allowed by name.
    /// - Returns: the guarantee-breaking properties that are allowed, to be warned about.
    private static func checkKafka(
        _ relay: RelayConfiguration, settings: SettingsReader
    ) async throws -> [ProducerGuarantees.Violation] {
        let devBroker = try await settings.bool("kafka.devBroker", default: false)
        if relay.brokers.isEmpty, !devBroker {
            throw ConfigurationError(
                key: "kafka.brokers",
                problem: "no Kafka brokers: set --brokers or KAFKA_BROKERS (or pass --dev-broker to relay to an in-memory broker that loses everything on exit)")
        }
        if !relay.brokers.isEmpty, devBroker {
            throw ConfigurationError(key: "kafka.devBroker", problem: "set together with brokers \(relay.brokers); choose one")
        }
        let allowed = Set(try await settings.strings("kafka.allowUnsafeProperties"))
        if let unguarded = allowed.sorted().first(where: { !ProducerGuarantees.isGuarded($0) }) {
            throw ConfigurationError(
                key: "kafka.allowUnsafeProperties", problem: "\(unguarded) is not a property that breaks a guarantee")
        }
        let violations = ProducerGuarantees.violations(in: relay.kafkaProperties)
        if let refused = violations.first(where: { !$0.isAllowed(by: allowed) }) {
            throw ConfigurationError(
                key: "kafka.properties",
                problem: "\(refused); allow it with --allow-unsafe-kafka-property \(refused.property) if you accept that")
        }
        let producer = KafkaProducerConfiguration.defaultProperties
            .merging(ProducerGuarantees.producerProperties(passThrough: relay.kafkaProperties)) { _, relay in relay }
        if let problem = await KafkaPropertyCheck.problem(with: producer, for: .producer) {
            throw ConfigurationError(key: "kafka.properties", problem: problem)
        }
        return violations
    }
}

extension RelayConfiguration {
    /// Every relay setting with its key; defaults come from `RelayConfiguration` itself.
    static func read(from settings: SettingsReader) async throws -> RelayConfiguration {
        var configuration = RelayConfiguration()
        let defaults = configuration
        configuration.databaseURL = try await settings.secret("database.url", default: defaults.databaseURL)
        configuration.listenURL = try await settings.optionalString("listen.url")
        configuration.pollOnly = try await settings.bool("listen.pollOnly", default: defaults.pollOnly)
        configuration.listenHeartbeat = try await settings.seconds(
            "listen.heartbeatSeconds", default: defaults.listenHeartbeat, in: 0.1...3600)
        configuration.schema = try await settings.string("outbox.schema", default: defaults.schema)
        configuration.channel = try await settings.string("outbox.channel", default: defaults.channel)
        configuration.topicTemplate = try await settings.string("relay.topic", default: defaults.topicTemplate)
        configuration.deadLetterTopic = try await settings.string("relay.deadLetterTopic", default: defaults.deadLetterTopic)
        configuration.cloudEventsSource = try await settings.string(
            "relay.cloudEventsSource", default: defaults.cloudEventsSource)
        configuration.batchSize = try await settings.int("relay.batchSize", default: defaults.batchSize, in: 1...100_000)
        configuration.maxInFlightBatches = try await settings.int(
            "relay.maxInFlightBatches", default: defaults.maxInFlightBatches, in: 1...16)
        configuration.pollInterval = try await settings.seconds(
            "relay.pollIntervalSeconds", default: defaults.pollInterval, in: 0.01...3600)
        configuration.turnInterval = try await settings.seconds(
            "relay.turnIntervalSeconds", default: defaults.turnInterval, in: 0...1)
        configuration.writeInterval = try await settings.seconds(
            "relay.writeIntervalSeconds", default: defaults.writeInterval, in: 0...1)
        configuration.maxAttempts = try await settings.int("relay.maxAttempts", default: defaults.maxAttempts, in: 1...1000)
        configuration.retryBackoff = try await settings.seconds(
            "relay.retryBackoffSeconds", default: defaults.retryBackoff, in: 0.01...3600)
        configuration.maxRetryBackoff = try await settings.seconds(
            "relay.maxRetryBackoffSeconds", default: defaults.maxRetryBackoff, in: 0.01...86400)
        configuration.leaseDuration = try await settings.seconds(
            "relay.leaseSeconds", default: defaults.leaseDuration, in: 1...600)
        configuration.database = try await .read(from: settings)
        configuration.readiness = try await .read(from: settings)
        configuration.brokers = try await settings.string("kafka.brokers", default: defaults.brokers)
        configuration.kafkaProperties = try await settings.properties("kafka.properties")
        SecretRedaction.register(connectionString: configuration.databaseURL)
        SecretRedaction.register(connectionString: configuration.listenURL)
        SecretRedaction.register(kafkaProperties: configuration.kafkaProperties)
        for (key, url) in [("database.url", configuration.databaseURL), ("listen.url", configuration.listenURL ?? "")] {
            if let problem = ConnectionString(url).problem { throw ConfigurationError(key: key, problem: problem) }
        }
        for (key, template, placeholders) in [("relay.topic", configuration.topicTemplate, topicPlaceholders),
                                              ("relay.deadLetterTopic", configuration.deadLetterTopic, [])] {
            if let problem = topicProblem(template, placeholders: placeholders) {
                throw ConfigurationError(key: key, problem: problem)
            }
        }
        for (key, value) in [("outbox.schema", configuration.schema), ("outbox.channel", configuration.channel),
                             ("relay.topic", configuration.topicTemplate),
                             ("relay.deadLetterTopic", configuration.deadLetterTopic)] where value.isEmpty {
            throw ConfigurationError(key: key, problem: "must not be empty")
        }
        return configuration
    }
}

/// What `EventRouter` fills in per event.
private let topicPlaceholders = ["{tenant}", "{schema}", "{command}", "{database}"]

/// Why `template` cannot name Kafka topics, or `nil`: an unknown `{placeholder}` would otherwise
/// be published literally, and Kafka allows only ASCII letters, digits, `.`, `_` and `-`.
private func topicProblem(_ template: String, placeholders: [String]) -> String? {
    var literal = template
    for placeholder in placeholders { literal = literal.replacingOccurrences(of: placeholder, with: "") }
    if let open = literal.firstIndex(of: "{") {
        let unknown = literal[open...].prefix { $0 != "}" } + (literal[open...].contains("}") ? "}" : "")
        let allowed = placeholders.isEmpty ? "none are filled in here" : "known: \(placeholders.joined(separator: ", "))"
        return "unknown placeholder \(unknown) (\(allowed))"
    }
    if let bad = literal.first(where: { !($0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0))) }) {
        return "\"\(bad)\" is not allowed in a Kafka topic name (letters, digits, '.', '_' and '-' only)"
    }
    return nil
}
