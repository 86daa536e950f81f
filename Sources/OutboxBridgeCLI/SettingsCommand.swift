import ArgumentParser
import Consumers
import Foundation
import Logging

/// The option group a long-running command shares with the others of its kind:
/// ``CommonSettingsOptions`` for `run`, ``ConsumerSettingsOptions`` for the consumers.
protocol SharedSettingsOptions {
    /// `--config` and the logging and shutdown options, which every long-running command has.
    var common: CommonSettingsOptions { get }
    func add(to commandLine: inout CommandLineSettings) throws(ConfigurationError)
}

extension CommonSettingsOptions: SharedSettingsOptions {
    var common: CommonSettingsOptions { self }
}

/// A long-running command (`run` and the consumers), whose settings come through the one
/// settings path: the YAML file, then the environment, then its options.
protocol SettingsCommand {
    associatedtype Shared: SharedSettingsOptions
    associatedtype Settings

    var shared: Shared { get }
    /// Records the command's own options, each under its settings key, beside the shared ones.
    func add(to commandLine: inout CommandLineSettings) throws(ConfigurationError)
    /// Every setting the command uses, from whichever layer has it.
    func settings(from reader: SettingsReader) async throws -> Settings
}

extension SettingsCommand {
    /// The settings from file, environment and options, checked as a whole.
    func loadSettings(
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) async throws(ConfigurationError) -> Settings {
        var commandLine = CommandLineSettings()
        try shared.add(to: &commandLine)
        try add(to: &commandLine)
        return try await shared.common.load(commandLine, environment: environment, settings(from:))
    }

    /// The settings, or, when they cannot be used, their one line on stderr and exit status 2:
    /// how every long-running command starts.
    func loadSettingsOrExit() async throws(ExitCode) -> Settings {
        do {
            return try await loadSettings()
        } catch {
            printError(error.description)
            throw ExitStatus.badSettings
        }
    }
}

/// A consumer command whose start-up is the shared one (``ConsumerSettings/run(_:makeHandler:)``):
/// all it adds is its own options, settings and handler.
protocol ConsumerCommand: AsyncParsableCommand, SettingsCommand
where Shared == ConsumerSettingsOptions, Settings: ConsumerCommandSettings {
    var consumer: ConsumerSettingsOptions { get }
    /// The command's event handler, built once the settings are checked and logging is set up.
    func makeHandler(_ settings: Settings, logger: Logger) async throws -> any EventHandler
}

/// A consumer command's settings, which hold the shared consumer settings.
protocol ConsumerCommandSettings {
    var consumer: ConsumerSettings { get }
}

extension ConsumerCommand {
    var shared: ConsumerSettingsOptions { consumer }

    func run() async throws {
        let settings = try await loadSettingsOrExit()
        try await settings.consumer.run(Self.configuration.commandName ?? "consumer") { logger in
            try await makeHandler(settings, logger: logger)
        }
    }
}
