import ArgumentParser
import Consumers
import Foundation
import Logging
import ServiceLifecycle
import UnixSignals

struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command once per event: workers in any language (docs, compliance checks, dashboards).",
        discussion: """
            Joins consumer group --group on --topic and runs CMD ARGS… for each event, one at a \
            time, in a process group of its own. The event's JSON is on the command's standard \
            input; OUTBOX_TENANT, OUTBOX_EVENT_TYPE (the command tag), OUTBOX_EVENT_ID, \
            OUTBOX_TENANT_SEQ, OUTBOX_EVENT_KIND and OUTBOX_DATABASE say what it is. Exit 0 \
            commits the event; another status (or the --timeout, which kills the whole process \
            group) is retried with backoff, then the event goes to <group>.dead-letter with the \
            exit status and the tail of standard error. A crash before the command finishes runs \
            it again for the same event, so commands must be idempotent by OUTBOX_EVENT_ID. \
            Invalid settings exit with status 2.
            """)

    @Option(help: "Kafka bootstrap servers, comma separated (default: KAFKA_BROKERS).")
    var brokers: String?
    @Option(help: "Consumer group; its dead-letter topic is <group>.dead-letter.")
    var group = "exec"
    @Option(help: "Topic the relay publishes schema changes to.")
    var topic = "schema-changes"
    @Option(help: "Run only for this tenant's events, repeatable. Default: every event.")
    var tenant: [String] = []
    @Option(help: "Run only for events with this command tag ('ALTER TABLE'), repeatable. Default: every type.")
    var commandType: [String] = []
    @Option(help: "Seconds one run may take before its process group is killed.")
    var timeout = 60
    @Option(help: "Runs of one event before it is dead-lettered.")
    var maxAttempts = 5
    @Option(help: "Apply only events of this source database, repeatable. Default: the first database seen.")
    var sourceDatabase: [String] = []
    @Option(help: "Seconds an event after a missing tenant_seq is held back before it is dead-lettered.")
    var sequenceGapTimeout = 60
    @Option(name: .customLong("kafka-property"), help: "A librdkafka property for consumer and dead-letter producer, as name=value, repeatable.")
    var kafkaProperties: [String] = []
    @Option(name: .customLong("consumer-property"), help: "A librdkafka property for the consumer only (session.timeout.ms=…), repeatable.")
    var consumerProperties: [String] = []
    @Option(help: "Seconds a graceful shutdown may take before the running command is killed (its event is delivered again).")
    var shutdownTimeout = 15
    @Option(help: "logfmt or json.")
    var logFormat: LogFormat = .logfmt
    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel = "info"
    @Option(help: "Serve /metrics (consumer lag) and /health on this port; 0 picks a free one. Default: none.")
    var httpPort: UInt16?
    @Argument(parsing: .postTerminator, help: "The command to run and its arguments, after --.")
    var command: [String] = []

    func run() async throws {
        let settings: (ConsumerRuntimeConfiguration, ExecConfiguration, Logger.Level)
        do {
            settings = try await validatedSettings()
        } catch let error as ConfigurationError {
            printError(error.description)
            throw ExitStatus.badSettings
        }
        let (runtimeConfiguration, execConfiguration, level) = settings
        LoggingSystem.bootstrap { label in
            StructuredLogHandler(label: label, format: logFormat, level: level)
        }
        let logger = Logger(label: "outbox-bridge.exec")
        let runtime: ConsumerRuntime
        do {
            runtime = try ConsumerRuntime(
                configuration: runtimeConfiguration,
                handler: ExecHandler(configuration: execConfiguration, logger: logger), logger: logger)
        } catch {
            printError("cannot start exec: \(error)")
            throw ExitStatus.status(for: error)
        }
        try await ConsumerOptions.serviceGroup(for: runtime, httpPort: httpPort, logger: logger).run()
    }

    private func validatedSettings() async throws -> (ConsumerRuntimeConfiguration, ExecConfiguration, Logger.Level) {
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
        guard (1...86_400).contains(timeout) else {
            throw ConfigurationError(key: "timeout", problem: "must be between 1 and 86400 seconds")
        }
        var execConfiguration = ExecConfiguration(command: command)
        execConfiguration.tenants = Set(tenant)
        execConfiguration.commandTypes = Set(commandType)
        execConfiguration.timeout = .seconds(timeout)
        if let problem = execConfiguration.problems.first {
            throw ConfigurationError(key: "command", problem: problem)
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
        return (configuration, execConfiguration, level)
    }
}
