import ArgumentParser
import Configuration
import Foundation
import Logging
import Postgres
import Synchronization
import SystemPackage

/// Reads settings through swift-configuration, turning every unreadable or out-of-range value
/// into one `ConfigurationError` that names the key, so `run` can exit with status 2 and one
/// clear line instead of starting with a silently substituted default.
///
/// It remembers every key it was asked for, so that once everything is read
/// ``checkFileHasNoUnknownKeys()`` can refuse a key in the YAML file that nothing reads: a typo
/// such as `relay.batchSzie` must not leave the relay running on the default.
struct SettingsReader {
    let reader: ConfigReader
    /// The keys the YAML file sets (parents included), or empty without a file.
    private let fileKeys: [String]
    private let requestedKeys = RequestedKeys()

    private final class RequestedKeys: Sendable {
        let keys = Mutex<Set<String>>([])
    }

    /// Layers the sources from lowest to highest precedence: the YAML file, environment
    /// variables (`relay.batchSize` is `RELAY_BATCH_SIZE`), then options given on the command
    /// line.
    static func layered(
        yamlFile: String?,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        commandLine: [AbsoluteConfigKey: ConfigValue] = [:]
    ) async throws -> SettingsReader {
        var providers: [any ConfigProvider] = [
            InMemoryProvider(name: "command line", values: commandLine),
            EnvironmentVariablesProvider(environmentVariables: environment),
        ]
        var fileKeys: [String] = []
        if let yamlFile {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(yamlFile)))
                fileKeys = try YAMLKeys.keys(in: String(contentsOfFile: yamlFile, encoding: .utf8))
            } catch let error as ConfigurationError {
                throw error
            } catch {
                throw ConfigurationError(key: "config", problem: "cannot read \(yamlFile): \(error)")
            }
        }
        return SettingsReader(reader: ConfigReader(providers: providers), fileKeys: fileKeys)
    }

    /// Every key read so far, in no order: what the settings file may set.
    var keysRead: Set<String> { requestedKeys.keys.withLock { $0 } }

    /// Throws for the first key in the YAML file that is neither a key read so far nor a parent
    /// of one. Call it after reading every setting.
    func checkFileHasNoUnknownKeys() throws {
        let requested = keysRead
        var known = requested
        for key in requested {
            var components = key.split(separator: ".")
            while components.count > 1 {
                components.removeLast()
                known.insert(components.joined(separator: "."))
            }
        }
        if let unknown = fileKeys.first(where: { !known.contains($0) }) {
            let section = unknown.split(separator: ".").dropLast().joined(separator: ".")
            let siblings = requested.sorted().filter { section.isEmpty || $0.hasPrefix(section + ".") }
            throw ConfigurationError(
                key: unknown,
                problem: "unknown key in the settings file; known keys here: \(siblings.prefix(16).joined(separator: ", "))")
        }
    }

    func string(_ key: String, default defaultValue: String) async throws -> String {
        try await read(key) { try await reader.fetchString(forKey: ConfigKey(key), default: defaultValue) }
    }

    func optionalString(_ key: String) async throws -> String? {
        try await read(key) { try await reader.fetchString(forKey: ConfigKey(key)) }.flatMap { $0.isEmpty ? nil : $0 }
    }

    func secret(_ key: String, default defaultValue: String) async throws -> String {
        try await read(key) { try await reader.fetchString(forKey: ConfigKey(key), isSecret: true, default: defaultValue) }
    }

    func bool(_ key: String, default defaultValue: Bool) async throws -> Bool {
        try await read(key) { try await reader.fetchBool(forKey: ConfigKey(key), default: defaultValue) }
    }

    func strings(_ key: String) async throws -> [String] {
        try await read(key) { try await reader.fetchStringArray(forKey: ConfigKey(key), default: []) }
    }

    func optionalInt(_ key: String, in range: ClosedRange<Int>) async throws -> Int? {
        guard let value = try await read(key, { try await reader.fetchInt(forKey: ConfigKey(key)) }) else { return nil }
        guard range.contains(value) else {
            throw ConfigurationError(key: key, problem: "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    /// A string that must be set and not empty; `problem` says how to set it.
    func requiredString(_ key: String, isSecret: Bool = false, problem: String) async throws -> String {
        let value = try await read(key) { try await reader.fetchString(forKey: ConfigKey(key), isSecret: isSecret) }
        guard let value, !value.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ConfigurationError(key: key, problem: problem)
        }
        return value
    }

    /// `name=value` entries (librdkafka properties) as a dictionary.
    func properties(_ key: String) async throws -> [String: String] {
        do {
            return try kafkaProperties(from: try await strings(key))
        } catch let malformed as MalformedPropertyEntry {
            throw ConfigurationError(key: key, problem: malformed.problem)
        }
    }

    /// A whole number whose bounds the caller checks.
    func int(_ key: String, default defaultValue: Int) async throws -> Int {
        try await read(key) { try await reader.fetchInt(forKey: ConfigKey(key), default: defaultValue) }
    }

    func int(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) async throws -> Int {
        let value = try await int(key, default: defaultValue)
        guard range.contains(value) else {
            throw ConfigurationError(key: key, problem: "must be between \(range.lowerBound) and \(range.upperBound), got \(value)")
        }
        return value
    }

    /// A duration given in (possibly fractional) seconds.
    func seconds(_ key: String, default defaultValue: Duration, in range: ClosedRange<Double>) async throws -> Duration {
        let value = try await read(key) { try await reader.fetchDouble(forKey: ConfigKey(key), default: defaultValue.seconds) }
        guard range.contains(value) else {
            throw ConfigurationError(
                key: key, problem: "must be between \(range.lowerBound) and \(range.upperBound) seconds, got \(value)")
        }
        return .milliseconds(Int64((value * 1000).rounded()))
    }

    /// `http.token`, or the first line of the file `http.tokenFile` (so the token stays out of
    /// the settings file and the process list); not both. `run` and every consumer read it
    /// alike for their status page.
    func statusToken() async throws -> String? {
        let token = try await secret("http.token", default: "")
        let file = try await optionalString("http.tokenFile")
        switch (token.isEmpty ? nil : token, file) {
        case (nil, nil): return nil
        case (let token?, nil): return token
        case (nil, let path?):
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw ConfigurationError(key: "http.tokenFile", problem: "cannot read \(path)")
            }
            let firstLine = String(decoding: contents, as: UTF8.self).split(whereSeparator: \.isNewline).first
            guard let fileToken = firstLine.map({ $0.trimmingCharacters(in: .whitespaces) }), !fileToken.isEmpty else {
                throw ConfigurationError(key: "http.tokenFile", problem: "\(path) holds no token")
            }
            return fileToken
        case (_?, _?):
            throw ConfigurationError(key: "http.token", problem: "set together with http.tokenFile; choose one")
        }
    }

    private func read<T>(_ key: String, _ fetch: () async throws -> T) async throws -> T {
        _ = requestedKeys.keys.withLock { $0.insert(key) }
        do {
            return try await fetch()
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(key: key, problem: "\(error)")
        }
    }
}

/// A setting that cannot be used; a command reports it as one line and exits with status 2.
struct ConfigurationError: Error, CustomStringConvertible {
    let key: String
    let problem: String
    /// The command-line option the refused value came from, when it came from one, so the
    /// operator knows which of file, environment and options to fix.
    var option: String?

    init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    var description: String {
        let oneLine = problem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        let source = option.map { " (from \($0))" } ?? ""
        return "invalid configuration: \(key): \(oneLine.joined(separator: " "))\(source)"
    }
}

/// The options a command was given, as the highest-precedence settings layer, each under its
/// settings key. Numbers are parsed here: the in-memory layer hands strings back as strings,
/// and swift-configuration converts text to numbers only for the environment and files.
struct CommandLineSettings {
    private(set) var values: [AbsoluteConfigKey: ConfigValue] = [:]
    /// Settings key → the option that set it.
    private(set) var options: [String: String] = [:]

    mutating func string(_ key: String, _ value: String?, option: String) {
        guard let value else { return }
        set(key, .string(value), option: option)
    }

    mutating func int(_ key: String, _ value: String?, option: String) throws(ConfigurationError) {
        guard let value else { return }
        guard let number = Int(value.trimmingCharacters(in: .whitespaces)) else {
            throw Self.refused(key, "expected a whole number, got \(value)", option: option)
        }
        set(key, .int(number), option: option)
    }

    mutating func number(_ key: String, _ value: String?, option: String) throws(ConfigurationError) {
        guard let value else { return }
        guard let number = Double(value.trimmingCharacters(in: .whitespaces)), number.isFinite else {
            throw Self.refused(key, "expected a number, got \(value)", option: option)
        }
        set(key, .double(number), option: option)
    }

    mutating func flag(_ key: String, _ isSet: Bool, option: String) {
        if isSet { set(key, .bool(true), option: option) }
    }

    /// A repeatable option; given at all, it replaces the whole list of lower layers.
    mutating func list(_ key: String, _ entries: [String], option: String) {
        if !entries.isEmpty { set(key, .stringArray(entries), option: option) }
    }

    /// `error` with the option named when the refused key was set by one.
    func attributed(_ error: ConfigurationError) -> ConfigurationError {
        var error = error
        error.option = error.option ?? options[error.key]
        return error
    }

    private mutating func set(_ key: String, _ content: ConfigContent, option: String) {
        values[AbsoluteConfigKey(ConfigKey(key))] = ConfigValue(content, isSecret: false)
        options[key] = option
    }

    private static func refused(_ key: String, _ problem: String, option: String) -> ConfigurationError {
        var error = ConfigurationError(key: key, problem: problem)
        error.option = option
        return error
    }
}

/// The options every long-running command (`run` and the consumers) shares, with the keys
/// they set.
struct CommonSettingsOptions: ParsableArguments {
    @Option(help: "YAML settings file (default: OUTBOX_BRIDGE_CONFIG); config/ documents every key.")
    var config: String?
    @Option(help: "trace, debug, info, notice, warning, error or critical (log.level, default info).")
    var logLevel: String?
    @Option(help: "logfmt or json (log.format, default logfmt).")
    var logFormat: String?
    @Option(help: "Seconds a graceful shutdown may take before work in progress is abandoned (shutdown.timeoutSeconds, default 15).")
    var shutdownTimeout: String?

    func add(to commandLine: inout CommandLineSettings) throws(ConfigurationError) {
        commandLine.string("log.level", logLevel, option: "--log-level")
        commandLine.string("log.format", logFormat, option: "--log-format")
        try commandLine.number("shutdown.timeoutSeconds", shutdownTimeout, option: "--shutdown-timeout")
    }

    /// The one settings path: the YAML file (`--config`, else `OUTBOX_BRIDGE_CONFIG`), then
    /// environment variables, then `commandLine`; `read` takes what the command needs, and a
    /// key in the file that nothing read is refused. Every refusal is a ``ConfigurationError``
    /// naming the key (and the option, when one set it).
    func load<Settings>(
        _ commandLine: CommandLineSettings, environment: [String: String] = ProcessInfo.processInfo.environment,
        _ read: (SettingsReader) async throws -> Settings
    ) async throws(ConfigurationError) -> Settings {
        do {
            let reader = try await SettingsReader.layered(
                yamlFile: config ?? environment["OUTBOX_BRIDGE_CONFIG"], environment: environment,
                commandLine: commandLine.values)
            let settings = try await read(reader)
            try reader.checkFileHasNoUnknownKeys()
            return settings
        } catch let error as ConfigurationError {
            throw commandLine.attributed(error)
        } catch {
            throw ConfigurationError(key: "config", problem: "\(error)")
        }
    }
}

/// Logging and shutdown, read the same way by every long-running command.
struct CommonSettings: Sendable {
    var logLevel: Logger.Level
    var logFormat: LogFormat
    /// How long a graceful shutdown may take before the service group cancels what is left.
    var shutdownTimeout: Duration

    static func read(from settings: SettingsReader) async throws -> CommonSettings {
        let levelName = try await settings.string("log.level", default: "info")
        guard let level = Logger.Level(rawValue: levelName.lowercased()) else {
            throw ConfigurationError(
                key: "log.level", problem: "unknown level \(levelName) (trace, debug, info, notice, warning, error or critical)")
        }
        let formatName = try await settings.string("log.format", default: LogFormat.logfmt.rawValue)
        guard let format = LogFormat(rawValue: formatName.lowercased()) else {
            throw ConfigurationError(key: "log.format", problem: "expected logfmt or json, got \(formatName)")
        }
        let shutdownTimeout = try await settings.seconds("shutdown.timeoutSeconds", default: .seconds(15), in: 1...600)
        return CommonSettings(logLevel: level, logFormat: format, shutdownTimeout: shutdownTimeout)
    }

    /// Every log line of the process in the one format all commands share.
    func bootstrapLogging() {
        ProcessLogging.use(format: logFormat, level: logLevel)
    }
}

/// `name=value` entries as librdkafka properties: the one parser for settings files, the
/// environment and every command's `--kafka-property`.
func kafkaProperties(from entries: [String]) throws(MalformedPropertyEntry) -> [String: String] {
    var properties: [String: String] = [:]
    for entry in entries {
        guard let separator = entry.firstIndex(of: "="), separator != entry.startIndex else {
            throw MalformedPropertyEntry(entry: entry)
        }
        properties[String(entry[..<separator])] = String(entry[entry.index(after: separator)...])
    }
    return properties
}

struct MalformedPropertyEntry: Error {
    let entry: String

    var problem: String { "expected name=value, got \(entry)" }
}
