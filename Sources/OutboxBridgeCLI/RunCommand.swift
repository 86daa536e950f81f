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

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Relay outbox events to Kafka, keyed by tenant, marking each row only after its ack.",
        discussion: """
            Settings come from the YAML file given with --config (config/bridge.yaml documents \
            every key), then environment variables (relay.batchSize is RELAY_BATCH_SIZE, \
            database.url is DATABASE_URL), then these options, each overriding the one before. \
            Invalid settings exit with status 2.
            """)

    @Option(help: "YAML settings file.")
    var config: String?
    @Option(help: "Outbox database URL or conninfo (database.url, DATABASE_URL); may go through a pooler.")
    var databaseURL: String?
    @Option(help: "Direct connection for LISTEN when --database-url goes through a pooler (listen.url).")
    var listenURL: String?
    @Flag(help: "Never LISTEN; poll only (listen.pollOnly).")
    var pollOnly = false
    @Option(help: "Kafka bootstrap servers (kafka.brokers, KAFKA_BROKERS); none starts an in-memory dev broker.")
    var brokers: String?
    @Option(help: "Topic template with {tenant}, {schema}, {command} (relay.topic).")
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
    @Option(help: "trace, debug, info, notice, warning, error or critical (log.level).")
    var logLevel: String?
    @Option(help: "logfmt or json (log.format).")
    var logFormat: String?
    @Option(help: "Port for /metrics and /health (http.port; 0 picks a free one).")
    var httpPort: String?

    /// Everything `run` reads, beyond the relay's own configuration.
    struct Settings {
        var relay: RelayConfiguration
        var shutdownTimeout: Duration
        var retention: RetentionPolicy?
        var observability: ObservabilityEndpoint?
        var logLevel: Logger.Level
        var logFormat: LogFormat
    }

    func run() async throws {
        let settings: Settings
        do {
            settings = try await loadSettings()
        } catch let error as ConfigurationError {
            printError(error.description)
            throw ExitCode(2)
        }
        LoggingSystem.bootstrap { label in
            StructuredLogHandler(label: label, format: settings.logFormat, level: settings.logLevel)
        }
        let logger = Logger(label: "outbox-bridge")
        do {
            if let observability = settings.observability {
                MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: observability.registry))
            }
            let assembly = try await RelayApplication.assemble(
                configuration: settings.relay, shutdownTimeout: settings.shutdownTimeout, retention: settings.retention,
                observability: settings.observability, logger: logger)
            if let broker = assembly.developmentBroker {
                print("development broker: \(broker.bootstrapServers)")
            }
            try await assembly.serviceGroup.run()
            withExtendedLifetime(assembly.developmentBroker) {}
        } catch let error as RelayApplication.StartupError {
            printError(error.description)
            throw ExitCode.failure
        }
    }

    /// Command-line options become the highest-precedence configuration layer.
    private func loadSettings() async throws -> Settings {
        var commandLine: [AbsoluteConfigKey: ConfigValue] = [:]
        func set(_ key: String, _ value: String?) {
            if let value { commandLine[AbsoluteConfigKey(ConfigKey(key))] = ConfigValue(.string(value), isSecret: false) }
        }
        enum NumberKind { case int, double }
        func setNumber(_ key: String, _ value: String?, as kind: NumberKind) throws {
            guard let value else { return }
            let text = value.trimmingCharacters(in: .whitespaces)
            let content: ConfigContent
            switch kind {
            case .int:
                guard let number = Int(text) else {
                    throw ConfigurationError(key: key, problem: "expected a whole number, got \(value)")
                }
                content = .int(number)
            case .double:
                guard let number = Double(text), number.isFinite else {
                    throw ConfigurationError(key: key, problem: "expected a number, got \(value)")
                }
                content = .double(number)
            }
            commandLine[AbsoluteConfigKey(ConfigKey(key))] = ConfigValue(content, isSecret: false)
        }
        set("database.url", databaseURL)
        set("listen.url", listenURL)
        if pollOnly { commandLine[AbsoluteConfigKey(["listen", "pollOnly"])] = ConfigValue(.bool(true), isSecret: false) }
        set("kafka.brokers", brokers)
        set("relay.topic", topic)
        set("relay.deadLetterTopic", deadLetterTopic)
        set("outbox.schema", schema)
        // Numbers are parsed here: the in-memory layer hands strings back as strings, and
        // swift-configuration converts text to numbers only for the environment and files.
        try setNumber("relay.batchSize", batchSize, as: .int)
        try setNumber("relay.pollIntervalSeconds", pollInterval, as: .double)
        try setNumber("relay.maxAttempts", maxAttempts, as: .int)
        try setNumber("http.port", httpPort, as: .int)
        set("log.level", logLevel)
        set("log.format", logFormat)
        if !kafkaProperties.isEmpty {
            commandLine[AbsoluteConfigKey(["kafka", "properties"])] = ConfigValue(.stringArray(kafkaProperties), isSecret: false)
        }
        let settings = try await SettingsReader.layered(
            yamlFile: config ?? ProcessInfo.processInfo.environment["OUTBOX_BRIDGE_CONFIG"], commandLine: commandLine)
        let relay = try await RelayConfiguration.read(from: settings)
        let shutdownTimeout = try await settings.seconds("shutdown.timeoutSeconds", default: .seconds(15), in: 1...600)
        let levelName = try await settings.string("log.level", default: "info")
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ConfigurationError(key: "log.level", problem: "unknown level \(levelName)")
        }
        let formatName = try await settings.string("log.format", default: LogFormat.logfmt.rawValue)
        guard let format = LogFormat(rawValue: formatName.lowercased()) else {
            throw ConfigurationError(key: "log.format", problem: "expected logfmt or json, got \(formatName)")
        }
        var retention: RetentionPolicy? = RetentionPolicy()
        let keepText = try await settings.string("retention.keepProcessed", default: "7d")
        guard let keep = parseAge(keepText) else {
            throw ConfigurationError(key: "retention.keepProcessed", problem: "expected e.g. 7d, 12h, 30m or 0 to keep forever, got \(keepText)")
        }
        if keep == .zero {
            retention = nil
        } else {
            retention?.keepProcessed = keep
            retention?.interval = try await settings.seconds("retention.intervalSeconds", default: .seconds(600), in: 1...86_400)
        }
        var observability: ObservabilityEndpoint?
        if try await settings.bool("http.enabled", default: true) {
            var endpoint = ObservabilityEndpoint(registry: PrometheusCollectorRegistry())
            endpoint.host = try await settings.string("http.host", default: endpoint.host)
            endpoint.port = UInt16(try await settings.int("http.port", default: Int(endpoint.port), in: 0...65_535))
            observability = endpoint
        }
        return Settings(
            relay: relay, shutdownTimeout: shutdownTimeout, retention: retention, observability: observability,
            logLevel: level, logFormat: format)
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
        for entry in try await settings.strings("kafka.properties") {
            guard let separator = entry.firstIndex(of: "="), separator != entry.startIndex else {
                throw ConfigurationError(key: "kafka.properties", problem: "expected name=value, got \(entry)")
            }
            configuration.kafkaProperties[String(entry[..<separator])] = String(entry[entry.index(after: separator)...])
        }
        for (key, value) in [("outbox.schema", configuration.schema), ("outbox.channel", configuration.channel),
                             ("relay.topic", configuration.topicTemplate),
                             ("relay.deadLetterTopic", configuration.deadLetterTopic)] where value.isEmpty {
            throw ConfigurationError(key: key, problem: "must not be empty")
        }
        return configuration
    }
}

/// Writes `message` to standard error as one line: multi-line messages (libpq's hints such as
/// "Is the server running on that host…") are joined with spaces.
func printError(_ message: String) {
    let line = message.split(whereSeparator: \.isNewline)
        .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }.joined(separator: " ")
    FileHandle.standardError.write(Data("outbox-bridge: \(line)\n".utf8))
}
