import ArgumentParser
import Consumers
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

struct SDKSyncCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sdk-sync",
        abstract: "Keep a TypeScript SDK (an npm package) per tenant in step with its schema changes.",
        discussion: """
            Joins consumer group --group on --topic and writes, per tenant, DIR/<tenant>/ with \
            package.json, tsconfig.json, src/index.ts and CHANGELOG.md, plus .outbox-sdk-state.json \
            which records applied events so redeliveries change nothing. Run any number of \
            instances with the same group to share the partitions. Events that cannot be applied \
            go to --dead-letter-topic with the reason. Invalid settings exit with status 2.
            """)

    @Option(help: "Kafka bootstrap servers, comma separated (default: KAFKA_BROKERS).")
    var brokers: String?
    @Option(help: "Directory holding one package directory per tenant.")
    var out: String?
    @Option(help: "Consumer group.")
    var group = "sdk-sync"
    @Option(help: "Topic the relay publishes schema changes to.")
    var topic = "schema-changes"
    @Option(help: "Dead-letter topic (default: <group>.dead-letter).")
    var deadLetterTopic: String?
    @Option(help: "Attempts at an event before it is dead-lettered.")
    var maxAttempts = 5
    @Option(help: "npm scope of the generated packages.")
    var packageScope = "@outbox-sdk"
    @Option(name: .customLong("kafka-property"), help: "A librdkafka property for consumer and dead-letter producer, as name=value, repeatable.")
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
    @Option(help: "Apply only events of this source database, repeatable. Default: the first database seen.")
    var sourceDatabase: [String] = []
    @Option(help: "Seconds an event after a missing tenant_seq is held back before it is dead-lettered.")
    var sequenceGapTimeout = 60
    @Option(help: "With no state yet, build it from this compacted schema-state topic, then continue where it ends. Default: none.")
    var bootstrapFrom: String?

    func run() async throws {
        let settings: (ConsumerRuntimeConfiguration, URL, Logger.Level)
        do {
            settings = try await validatedSettings()
        } catch let error as ConfigurationError {
            printError(error.description)
            throw ExitStatus.badSettings
        }
        let (runtimeConfiguration, outputDirectory, level) = settings
        LoggingSystem.bootstrap { label in
            StructuredLogHandler(label: label, format: logFormat, level: level)
        }
        let logger = Logger(label: "outbox-bridge.sdk-sync")
        let runtime: ConsumerRuntime
        do {
            try FileManager.default.createDirectory(at: outputDirectory, withIntermediateDirectories: true)
            runtime = try ConsumerRuntime(
                configuration: runtimeConfiguration,
                handler: SDKSyncHandler(outputDirectory: outputDirectory, packageScope: packageScope, logger: logger),
                logger: logger)
        } catch {
            printError("cannot start sdk-sync: \(error)")
            throw ExitStatus.status(for: error)
        }
        try await ConsumerOptions.serviceGroup(for: runtime, httpPort: httpPort, logger: logger).run()
    }

    private func validatedSettings() async throws -> (ConsumerRuntimeConfiguration, URL, Logger.Level) {
        let environment = ProcessInfo.processInfo.environment
        guard let brokers = brokers ?? environment["KAFKA_BROKERS"], !brokers.isEmpty else {
            throw ConfigurationError(key: "brokers", problem: "required (--brokers or KAFKA_BROKERS)")
        }
        guard let out, !out.isEmpty else {
            throw ConfigurationError(key: "out", problem: "required: the directory to write packages to")
        }
        guard let level = Logger.Level(rawValue: logLevel.lowercased()) else {
            throw ConfigurationError(key: "log-level", problem: "unknown level \(logLevel)")
        }
        guard (1...600).contains(shutdownTimeout) else {
            throw ConfigurationError(key: "shutdown-timeout", problem: "must be between 1 and 600 seconds")
        }
        guard packageScope.hasPrefix("@"), packageScope.count > 1,
              packageScope.dropFirst().allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "-._".contains($0)) })
        else {
            throw ConfigurationError(key: "package-scope", problem: "must look like @name (lowercase npm scope)")
        }
        var configuration = ConsumerRuntimeConfiguration(brokers: brokers, groupID: group)
        configuration.topics = [topic]
        configuration.deadLetterTopic = deadLetterTopic
        configuration.maxAttempts = maxAttempts
        configuration.shutdownTimeout = .seconds(shutdownTimeout)
        try ConsumerOptions.applyAdmission(
            sourceDatabases: sourceDatabase, sequenceGapTimeout: sequenceGapTimeout, to: &configuration)
        configuration.bootstrapTopic = bootstrapFrom
        configuration.kafkaProperties = try ConsumerOptions.properties(kafkaProperties, option: "kafka-property")
        configuration.consumerProperties = try ConsumerOptions.properties(consumerProperties, option: "consumer-property")
        try await ConsumerOptions.check(configuration, httpPort: httpPort)
        return (configuration, URL(fileURLWithPath: out, isDirectory: true), level)
    }
}
