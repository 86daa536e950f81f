import ArgumentParser
import Consumers
import Foundation
import Logging

struct SDKSyncCommand: ConsumerCommand {
    static let configuration = CommandConfiguration(
        commandName: "sdk-sync",
        abstract: "Keep a TypeScript SDK (an npm package) per tenant in step with its schema changes.",
        discussion: """
            Joins consumer group --group on --topic and writes, per tenant, DIR/<tenant>/ with \
            package.json, tsconfig.json, src/index.ts, the compiled dist/ and CHANGELOG.md, plus \
            .outbox-sdk-state.json which records applied events so redeliveries change nothing. Run \
            any number of instances with the same group to share the partitions. Events that cannot \
            be applied go to --dead-letter-topic with the reason. Settings come from --config \
            (config/sdk-sync.yaml documents every key), then environment variables (kafka.brokers \
            is KAFKA_BROKERS), then these options. Invalid settings exit with status 2.
            """)

    @OptionGroup var consumer: ConsumerSettingsOptions
    @OptionGroup var bootstrap: BootstrapOption
    @Option(help: "Directory holding one package directory per tenant (sdk.out); required.")
    var out: String?
    @Option(help: "npm scope of the generated packages (sdk.packageScope, default @outbox-sdk).")
    var packageScope: String?

    /// Everything `sdk-sync` reads.
    struct Settings: ConsumerCommandSettings {
        var consumer: ConsumerSettings
        var outputDirectory: URL
        var packageScope: String
    }

    func makeHandler(_ settings: Settings, logger: Logger) async throws -> any EventHandler {
        try FileManager.default.createDirectory(at: settings.outputDirectory, withIntermediateDirectories: true)
        return SDKSyncHandler(outputDirectory: settings.outputDirectory, packageScope: settings.packageScope, logger: logger)
    }

    func add(to commandLine: inout CommandLineSettings) {
        bootstrap.add(to: &commandLine)
        commandLine.string("sdk.out", out, option: "--out")
        commandLine.string("sdk.packageScope", packageScope, option: "--package-scope")
    }

    func settings(from reader: SettingsReader) async throws -> Settings { try await Self.read(from: reader) }

    /// Every setting `sdk-sync` uses, from whichever layer has it.
    static func read(from settings: SettingsReader) async throws -> Settings {
        let consumer = try await ConsumerSettings.read(from: settings, defaultGroup: "sdk-sync", bootstrappable: true)
        let out = try await settings.requiredString(
            "sdk.out", problem: "required: the directory to write packages to (--out, SDK_OUT or sdk.out)")
        let scope = try await settings.string("sdk.packageScope", default: "@outbox-sdk")
        guard scope.hasPrefix("@"), scope.count > 1,
              scope.dropFirst().allSatisfy({ $0.isASCII && ($0.isLowercase || $0.isNumber || "-._".contains($0)) })
        else {
            throw ConfigurationError(key: "sdk.packageScope", problem: "must look like @name (lowercase npm scope), got \(scope)")
        }
        return Settings(consumer: consumer, outputDirectory: URL(fileURLWithPath: out, isDirectory: true), packageScope: scope)
    }
}
