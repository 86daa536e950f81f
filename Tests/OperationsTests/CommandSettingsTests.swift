import ArgumentParser
import Consumers
import Foundation
import Logging
@testable import OutboxBridgeCLI
import Relay
import TestSupport
import Testing

/// `run`, `sdk-sync`, `warehouse-sync`, `exec` and `schema-state` read their settings one way: the YAML file, then
/// environment variables, then options; a key nothing reads and a value that cannot be used are
/// refused with one line naming the key; `config/` documents every key each command reads.
@Suite("One settings path for every long-running command")
struct CommandSettingsTests {
    /// A settings file in a fresh temporary directory.
    private func settingsFile(_ yaml: String) throws -> String {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("settings-\(UUID().uuidString).yaml")
        try yaml.write(to: file, atomically: true, encoding: .utf8)
        return file.path
    }

    private func refusal(_ load: () async throws -> Void) async -> ConfigurationError? {
        await #expect(throws: ConfigurationError.self) { try await load() }
    }

    @Test("run: file < environment < option")
    func runPrecedence() async throws {
        let file = try settingsFile("relay:\n  batchSize: 10\nshutdown:\n  timeoutSeconds: 20\nkafka:\n  brokers: 127.0.0.1:9\n")
        let environment = ["HTTP_PORT": "0"]
        let fromFile = try await RunCommand.parse(["--config", file]).loadSettings(environment: environment)
        #expect(fromFile.relay.batchSize == 10)
        #expect(fromFile.common.shutdownTimeout == .seconds(20))
        let overridden = environment.merging(["RELAY_BATCH_SIZE": "20", "SHUTDOWN_TIMEOUT_SECONDS": "30"]) { $1 }
        let fromEnvironment = try await RunCommand.parse(["--config", file]).loadSettings(environment: overridden)
        #expect(fromEnvironment.relay.batchSize == 20)
        #expect(fromEnvironment.common.shutdownTimeout == .seconds(30))
        let fromOptions = try await RunCommand.parse(["--config", file, "--batch-size", "30", "--shutdown-timeout", "40"])
            .loadSettings(environment: overridden)
        #expect(fromOptions.relay.batchSize == 30)
        #expect(fromOptions.common.shutdownTimeout == .seconds(40))
    }

    @Test("sdk-sync: file < environment < option")
    func sdkSyncPrecedence() async throws {
        let file = try settingsFile("""
            kafka:
              brokers: 127.0.0.1:9
            consumer:
              group: file-group
              maxAttempts: 3
            sdk:
              out: /tmp/from-file
            log:
              level: debug

            """)
        let fromFile = try await SDKSyncCommand.parse(["--config", file]).loadSettings(environment: [:])
        #expect(fromFile.consumer.runtime.groupID == "file-group")
        #expect(fromFile.consumer.runtime.maxAttempts == 3)
        #expect(fromFile.outputDirectory.path == "/tmp/from-file")
        #expect(fromFile.consumer.common.logLevel == .debug)
        #expect(fromFile.consumer.common.shutdownTimeout == .seconds(15))
        let environment = ["CONSUMER_GROUP": "env-group", "SDK_OUT": "/tmp/from-env", "LOG_LEVEL": "warning"]
        let fromEnvironment = try await SDKSyncCommand.parse(["--config", file]).loadSettings(environment: environment)
        #expect(fromEnvironment.consumer.runtime.groupID == "env-group")
        #expect(fromEnvironment.consumer.runtime.maxAttempts == 3)
        #expect(fromEnvironment.outputDirectory.path == "/tmp/from-env")
        #expect(fromEnvironment.consumer.common.logLevel == .warning)
        let fromOptions = try await SDKSyncCommand.parse([
            "--config", file, "--group", "option-group", "--out", "/tmp/from-option", "--log-level", "error", "--max-attempts", "7",
        ]).loadSettings(environment: environment)
        #expect(fromOptions.consumer.runtime.groupID == "option-group")
        #expect(fromOptions.consumer.runtime.maxAttempts == 7)
        #expect(fromOptions.outputDirectory.path == "/tmp/from-option")
        #expect(fromOptions.consumer.common.logLevel == .error)
        #expect(fromOptions.consumer.runtime.effectiveDeadLetterTopic == "option-group.dead-letter")
    }

    @Test("warehouse-sync: file < environment < option")
    func warehouseSyncPrecedence() async throws {
        let file = try settingsFile("""
            kafka:
              brokers: 127.0.0.1:9
              properties:
                - client.id=from-file
            warehouse:
              url: postgresql://file@127.0.0.1:1/dw
              dropPolicy: drop
            shutdown:
              timeoutSeconds: 5

            """)
        let fromFile = try await WarehouseSyncCommand.parse(["--config", file]).loadSettings(environment: [:])
        #expect(fromFile.warehouse.warehouseURL == "postgresql://file@127.0.0.1:1/dw")
        #expect(fromFile.warehouse.dropPolicy == .drop)
        #expect(fromFile.consumer.runtime.kafkaProperties == ["client.id": "from-file"])
        #expect(fromFile.consumer.runtime.groupID == "warehouse-sync")
        #expect(fromFile.consumer.runtime.shutdownTimeout == .seconds(5))
        let environment = [
            "WAREHOUSE_URL": "postgresql://env@127.0.0.1:1/dw", "WAREHOUSE_DROP_POLICY": "keep",
            "KAFKA_PROPERTIES": "client.id=from-env", "SHUTDOWN_TIMEOUT_SECONDS": "6",
        ]
        let fromEnvironment = try await WarehouseSyncCommand.parse(["--config", file]).loadSettings(environment: environment)
        #expect(fromEnvironment.warehouse.warehouseURL == "postgresql://env@127.0.0.1:1/dw")
        #expect(fromEnvironment.warehouse.dropPolicy == .keep)
        #expect(fromEnvironment.consumer.runtime.kafkaProperties == ["client.id": "from-env"])
        #expect(fromEnvironment.consumer.runtime.shutdownTimeout == .seconds(6))
        let fromOptions = try await WarehouseSyncCommand.parse([
            "--config", file, "--warehouse-url", "postgresql://option@127.0.0.1:1/dw", "--drop-policy", "drop",
            "--kafka-property", "client.id=from-option", "--shutdown-timeout", "7",
        ]).loadSettings(environment: environment)
        #expect(fromOptions.warehouse.warehouseURL == "postgresql://option@127.0.0.1:1/dw")
        #expect(fromOptions.warehouse.dropPolicy == .drop)
        #expect(fromOptions.consumer.runtime.kafkaProperties == ["client.id": "from-option"])
        #expect(fromOptions.consumer.runtime.shutdownTimeout == .seconds(7))
    }

    @Test("exec: file < environment < option")
    func execPrecedence() async throws {
        let file = try settingsFile("""
            kafka:
              brokers: 127.0.0.1:9
            consumer:
              group: file-group
            exec:
              tenants: [from-file]
              timeoutSeconds: 10

            """)
        let command = ["--", "examples/markdown-docs.sh"]
        let fromFile = try await ExecCommand.parse(["--config", file] + command).loadSettings(environment: [:])
        #expect(fromFile.consumer.runtime.groupID == "file-group")
        #expect(fromFile.exec.tenants == ["from-file"])
        #expect(fromFile.exec.timeout == .seconds(10))
        #expect(fromFile.exec.command == ["examples/markdown-docs.sh"])
        let environment = ["CONSUMER_GROUP": "env-group", "EXEC_TENANTS": "from-env", "EXEC_TIMEOUT_SECONDS": "20"]
        let fromEnvironment = try await ExecCommand.parse(["--config", file] + command).loadSettings(environment: environment)
        #expect(fromEnvironment.consumer.runtime.groupID == "env-group")
        #expect(fromEnvironment.exec.tenants == ["from-env"])
        #expect(fromEnvironment.exec.timeout == .seconds(20))
        let fromOptions = try await ExecCommand.parse(
            ["--config", file, "--group", "option-group", "--tenant", "from-option", "--timeout", "30"] + command
        ).loadSettings(environment: environment)
        #expect(fromOptions.consumer.runtime.groupID == "option-group")
        #expect(fromOptions.exec.tenants == ["from-option"])
        #expect(fromOptions.exec.timeout == .seconds(30))
    }

    @Test("schema-state: file < environment < option")
    func schemaStatePrecedence() async throws {
        let file = try settingsFile("""
            kafka:
              brokers: 127.0.0.1:9
            schemaState:
              topic: state-from-file
            shutdown:
              timeoutSeconds: 5

            """)
        let fromFile = try await SchemaStateCommand.parse(["--config", file]).loadSettings(environment: [:])
        #expect(fromFile.stateTopic == "state-from-file")
        #expect(fromFile.consumer.runtime.groupID == "schema-state")
        #expect(fromFile.consumer.runtime.shutdownTimeout == .seconds(5))
        let environment = ["SCHEMA_STATE_TOPIC": "state-from-env", "SHUTDOWN_TIMEOUT_SECONDS": "6"]
        let fromEnvironment = try await SchemaStateCommand.parse(["--config", file]).loadSettings(environment: environment)
        #expect(fromEnvironment.stateTopic == "state-from-env")
        #expect(fromEnvironment.consumer.runtime.shutdownTimeout == .seconds(6))
        let fromOptions = try await SchemaStateCommand.parse(
            ["--config", file, "--state-topic", "state-from-option", "--shutdown-timeout", "7"]
        ).loadSettings(environment: environment)
        #expect(fromOptions.stateTopic == "state-from-option")
        #expect(fromOptions.consumer.runtime.shutdownTimeout == .seconds(7))
    }

    @Test("An unknown key in the file is refused, naming it, by every command")
    func unknownKeys() async throws {
        let run = try settingsFile("kafka:\n  brokers: 127.0.0.1:9\nrelay:\n  batchSzie: 5\n")
        let runError = await refusal { _ = try await RunCommand.parse(["--config", run]).loadSettings(environment: ["HTTP_PORT": "0"]) }
        #expect(runError?.key == "relay.batchSzie")
        let sdk = try settingsFile("kafka:\n  brokers: 127.0.0.1:9\nsdk:\n  out: /tmp/x\n  packageScop: \"@x\"\n")
        let sdkError = await refusal { _ = try await SDKSyncCommand.parse(["--config", sdk]).loadSettings(environment: [:]) }
        #expect(sdkError?.key == "sdk.packageScop")
        #expect(sdkError?.description.hasPrefix("invalid configuration: sdk.packageScop: unknown key in the settings file") == true)
        let warehouse = try settingsFile("kafka:\n  brokers: 127.0.0.1:9\nwarehouse:\n  url: postgresql://x@127.0.0.1:1/dw\nconsumer:\n  gruop: x\n")
        let warehouseError = await refusal {
            _ = try await WarehouseSyncCommand.parse(["--config", warehouse]).loadSettings(environment: [:])
        }
        #expect(warehouseError?.key == "consumer.gruop")
        let exec = try settingsFile("kafka:\n  brokers: 127.0.0.1:9\nexec:\n  timeout: 5\n")
        let execError = await refusal {
            _ = try await ExecCommand.parse(["--config", exec, "--", "true"]).loadSettings(environment: [:])
        }
        #expect(execError?.key == "exec.timeout")
        let schemaState = try settingsFile("kafka:\n  brokers: 127.0.0.1:9\nschemaState:\n  stateTopic: x\n")
        let schemaStateError = await refusal {
            _ = try await SchemaStateCommand.parse(["--config", schemaState]).loadSettings(environment: [:])
        }
        #expect(schemaStateError?.key == "schemaState.stateTopic")
    }

    @Test("A bad value is refused with one line naming the key, and the option when it came from one")
    func badValues() async throws {
        let required = ["KAFKA_BROKERS": "127.0.0.1:9", "SDK_OUT": "/tmp/x", "WAREHOUSE_URL": "postgresql://x@127.0.0.1:1/dw"]
        let cases: [(command: String, arguments: [String], environment: [String: String], line: String)] = [
            ("run", ["--batch-size", "many"], ["HTTP_PORT": "0"],
             "invalid configuration: relay.batchSize: expected a whole number, got many (from --batch-size)"),
            ("run", [], ["HTTP_PORT": "0", "SHUTDOWN_TIMEOUT_SECONDS": "0"],
             "invalid configuration: shutdown.timeoutSeconds: must be between 1.0 and 600.0 seconds, got 0.0"),
            ("sdk-sync", ["--max-attempts", "0"], [:],
             "invalid configuration: consumer: maxAttempts must be at least 1"),
            ("sdk-sync", ["--package-scope", "NoScope"], [:],
             "invalid configuration: sdk.packageScope: must look like @name (lowercase npm scope), got NoScope (from --package-scope)"),
            ("sdk-sync", [], ["LOG_FORMAT": "xml"], "invalid configuration: log.format: expected logfmt or json, got xml"),
            ("warehouse-sync", ["--kafka-property", "novalue"], [:],
             "invalid configuration: kafka.properties: expected name=value, got novalue (from --kafka-property)"),
            ("warehouse-sync", [], ["WAREHOUSE_DROP_POLICY": "archive"],
             "invalid configuration: warehouse.dropPolicy: must be keep or drop, not 'archive'"),
            ("warehouse-sync", ["--http-port", "70000"], [:],
             "invalid configuration: http.port: must be between 0 and 65535, got 70000 (from --http-port)"),
            ("exec", ["--timeout", "0", "--", "true"], [:],
             "invalid configuration: exec.timeoutSeconds: must be between 1.0 and 86400.0 seconds, got 0.0 (from --timeout)"),
            ("exec", ["--timeout", "soon", "--", "true"], [:],
             "invalid configuration: exec.timeoutSeconds: expected a number, got soon (from --timeout)"),
            ("exec", [], [:], "invalid configuration: command: a command to run is required (after --)"),
            ("schema-state", ["--state-topic", "schema-changes"], [:],
             "invalid configuration: schemaState.topic: must be a topic other than the events topic (consumer.topic) (from --state-topic)"),
            ("schema-state", [], ["CONSUMER_SEQUENCE_GAP_TIMEOUT_SECONDS": "-1"],
             "invalid configuration: consumer.sequenceGapTimeoutSeconds: must be between 0.0 and 86400.0 seconds, got -1.0"),
        ]
        for (command, arguments, environment, line) in cases {
            let merged = required.merging(environment) { $1 }
            let error = await refusal { try await Self.load(command, arguments, environment: merged) }
            #expect(error?.description == line, "\(command) \(arguments) \(environment)")
        }
        let missing = await refusal { try await Self.load("warehouse-sync", [], environment: ["KAFKA_BROKERS": "127.0.0.1:9"]) }
        #expect(missing?.key == "warehouse.url")
    }

    @Test("config/ documents every key each command reads, and nothing else")
    func configurationFilesDocumentEveryKey() async throws {
        let config = OutboxTestEnvironment.sqlDirectory.deletingLastPathComponent().appendingPathComponent("config")
        let required = ["KAFKA_BROKERS": "127.0.0.1:9", "SDK_OUT": "/tmp/x", "WAREHOUSE_URL": "postgresql://x@127.0.0.1:1/dw"]
        let commands = [
            ("run", "bridge.yaml"), ("sdk-sync", "sdk-sync.yaml"), ("warehouse-sync", "warehouse-sync.yaml"),
            ("exec", "exec.yaml"), ("schema-state", "schema-state.yaml"),
        ]
        for (command, file) in commands {
            let path = config.appendingPathComponent(file).path
            let settings = try await SettingsReader.layered(yamlFile: path, environment: required.merging(["HTTP_PORT": "0"]) { $1 })
            switch command {
            case "run": _ = try await RunCommand.read(from: settings)
            case "sdk-sync": _ = try await SDKSyncCommand.read(from: settings)
            case "exec": _ = try await ExecCommand.read(from: settings, command: ["true"])
            case "schema-state": _ = try await SchemaStateCommand.read(from: settings)
            default: _ = try await WarehouseSyncCommand.read(from: settings)
            }
            try settings.checkFileHasNoUnknownKeys()
            let text = try String(contentsOfFile: path, encoding: .utf8)
            // A key without a default (such as an optional port) is documented commented out.
            let uncommented = text.replacingOccurrences(of: #"(?m)^(\s*)# ([A-Za-z]+): "#, with: "$1$2: ", options: .regularExpression)
            let documented = Set(try YAMLKeys.keys(in: uncommented))
            let undocumented = settings.keysRead.subtracting(documented).sorted()
            #expect(undocumented.isEmpty, "\(file) does not document \(undocumented)")
        }
    }

    private static func load(_ command: String, _ arguments: [String], environment: [String: String]) async throws {
        switch command {
        case "run": _ = try await RunCommand.parse(arguments).loadSettings(environment: environment)
        case "sdk-sync": _ = try await SDKSyncCommand.parse(arguments).loadSettings(environment: environment)
        case "exec": _ = try await ExecCommand.parse(arguments).loadSettings(environment: environment)
        case "schema-state": _ = try await SchemaStateCommand.parse(arguments).loadSettings(environment: environment)
        default: _ = try await WarehouseSyncCommand.parse(arguments).loadSettings(environment: environment)
        }
    }
}
