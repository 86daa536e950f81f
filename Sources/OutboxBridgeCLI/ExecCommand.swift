import ArgumentParser
import Consumers
import Foundation
import Logging

struct ExecCommand: ConsumerCommand {
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

    @OptionGroup var consumer: ConsumerSettingsOptions
    @Option(help: "Run only for this tenant's events, repeatable (exec.tenants; default: every event).")
    var tenant: [String] = []
    @Option(help: "Run only for events with this command tag ('ALTER TABLE'), repeatable (exec.commandTypes; default: every type).")
    var commandType: [String] = []
    @Option(help: "Seconds one run may take before its process group is killed (exec.timeoutSeconds, default 60).")
    var timeout: String?
    @Argument(parsing: .postTerminator, help: "The command to run and its arguments, after --.")
    var command: [String] = []

    /// Everything `exec` reads.
    struct Settings: ConsumerCommandSettings {
        var consumer: ConsumerSettings
        var exec: ExecConfiguration
    }

    func makeHandler(_ settings: Settings, logger: Logger) -> any EventHandler {
        ExecHandler(configuration: settings.exec, logger: logger)
    }

    func add(to commandLine: inout CommandLineSettings) throws(ConfigurationError) {
        commandLine.list("exec.tenants", tenant, option: "--tenant")
        commandLine.list("exec.commandTypes", commandType, option: "--command-type")
        try commandLine.number("exec.timeoutSeconds", timeout, option: "--timeout")
    }

    func settings(from reader: SettingsReader) async throws -> Settings { try await Self.read(from: reader, command: command) }

    /// Every setting `exec` uses, from whichever layer has it; the command itself comes only
    /// from the command line.
    static func read(from settings: SettingsReader, command: [String]) async throws -> Settings {
        let consumer = try await ConsumerSettings.read(from: settings, defaultGroup: "exec")
        var exec = ExecConfiguration(command: command)
        exec.tenants = Set(try await settings.strings("exec.tenants"))
        exec.commandTypes = Set(try await settings.strings("exec.commandTypes"))
        exec.timeout = try await settings.seconds("exec.timeoutSeconds", default: exec.timeout, in: 1...86_400)
        if let problem = exec.problems.first {
            throw ConfigurationError(key: "command", problem: problem)
        }
        return Settings(consumer: consumer, exec: exec)
    }
}
