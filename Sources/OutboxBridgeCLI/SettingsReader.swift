import Configuration
import Foundation
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

    /// Throws for the first key in the YAML file that is neither a key read so far nor a parent
    /// of one. Call it after reading every setting.
    func checkFileHasNoUnknownKeys() throws {
        let requested = requestedKeys.keys.withLock { $0 }
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

/// A setting that cannot be used; `run` reports it as one line and exits with status 2.
struct ConfigurationError: Error, CustomStringConvertible {
    let key: String
    let problem: String

    var description: String {
        let oneLine = problem.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        return "invalid configuration: \(key): \(oneLine.joined(separator: " "))"
    }
}
