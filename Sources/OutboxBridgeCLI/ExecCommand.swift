import ArgumentParser
import Consumers
import Logging
import ServiceLifecycle

struct ExecCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command once per event: workers in any language (docs, compliance checks, dashboards).",
        discussion: """
            Joins consumer group --group (default: exec) on --topic and runs CMD ARGS… for each \
            event, one at a time, in a process group of its own. The event's JSON is on the \
            command's standard input; OUTBOX_TENANT, OUTBOX_EVENT_TYPE (the command tag), \
            OUTBOX_EVENT_ID, OUTBOX_TENANT_SEQ, OUTBOX_EVENT_KIND and OUTBOX_DATABASE say what it \
            is. Exit 0 commits the event; another status (or the --timeout, which kills the whole \
            process group) is retried with backoff, then the event goes to <group>.dead-letter \
            with the exit status and the tail of standard error. A crash before the command \
            finishes runs it again for the same event, so commands must be idempotent by \
            OUTBOX_EVENT_ID. Invalid settings exit with status 2.
            """)

    @OptionGroup var consumer: ConsumerCommandOptions
    @Option(help: "Run only for this tenant's events, repeatable. Default: every event.")
    var tenant: [String] = []
    @Option(help: "Run only for events with this command tag ('ALTER TABLE'), repeatable. Default: every type.")
    var commandType: [String] = []
    @Option(help: "Seconds one run may take before its process group is killed.")
    var timeout = 60
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
        let logger = consumer.bootstrapLogging(level: level, label: "outbox-bridge.exec")
        let runtime: ConsumerRuntime
        do {
            runtime = try ConsumerRuntime(
                configuration: runtimeConfiguration,
                handler: ExecHandler(configuration: execConfiguration, logger: logger), logger: logger)
        } catch {
            printError("cannot start exec: \(error)")
            throw ExitStatus.status(for: error)
        }
        try await ConsumerOptions.serviceGroup(for: runtime, httpPort: consumer.httpPort, logger: logger).run()
    }

    private func validatedSettings() async throws -> (ConsumerRuntimeConfiguration, ExecConfiguration, Logger.Level) {
        let level = try consumer.level()
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
        return (try await consumer.runtimeConfiguration(defaultGroup: "exec"), execConfiguration, level)
    }
}
