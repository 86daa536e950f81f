import Configuration
import Foundation
import Postgres
import SystemPackage

/// Reads settings through swift-configuration, turning every unreadable or out-of-range value
/// into one `ConfigurationError` that names the key, so `run` can exit with status 2 and one
/// clear line instead of starting with a silently substituted default.
struct SettingsReader {
    let reader: ConfigReader

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
        if let yamlFile {
            do {
                providers.append(try await FileProvider<YAMLSnapshot>(filePath: FilePath(yamlFile)))
            } catch {
                throw ConfigurationError(key: "config", problem: "cannot read \(yamlFile): \(error)")
            }
        }
        return SettingsReader(reader: ConfigReader(providers: providers))
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

    func int(_ key: String, default defaultValue: Int, in range: ClosedRange<Int>) async throws -> Int {
        let value = try await read(key) { try await reader.fetchInt(forKey: ConfigKey(key), default: defaultValue) }
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

    private func read<T>(_ key: String, _ fetch: () async throws -> T) async throws -> T {
        do {
            return try await fetch()
        } catch let error as ConfigurationError {
            throw error
        } catch {
            throw ConfigurationError(key: key, problem: "\(error)")
        }
    }
}

/// A setting that cannot be used; `run` reports it as one line and exits with status 2.
struct ConfigurationError: Error, CustomStringConvertible {
    let key: String
    let problem: String

    var description: String {
        let oneLine = problem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        return "invalid configuration: \(key): \(oneLine.joined(separator: " "))"
    }
}
