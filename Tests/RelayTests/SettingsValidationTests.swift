import Foundation
#if canImport(Glibc)
import Glibc
#endif
@testable import OutboxBridgeCLI
import Postgres
import Relay
import TestSupport
import Testing

@Suite("Settings are checked as a whole before anything connects")
struct SettingsValidationTests {
    @Test("a guarantee-breaking librdkafka property is named with the guarantee it breaks; aliases count, safe values pass")
    func producerGuarantees() {
        let violations = ProducerGuarantees.violations(in: [
            "acks": "1", "enable.idempotence": "false", "partitioner": "random",
            "max.in.flight.requests.per.connection": "10", "compression.type": "lz4",
        ])
        #expect(violations.map(\.property) == ["acks", "enable.idempotence", "max.in.flight.requests.per.connection", "partitioner"])
        #expect(violations.allSatisfy { !$0.guarantee.isEmpty && $0.description.contains("breaks a guarantee") })
        #expect(ProducerGuarantees.violations(in: ["request.required.acks": "0"]).map(\.canonicalProperty) == ["acks"])
        #expect(ProducerGuarantees.violations(in: ["max.in.flight": "6"]).map(\.canonicalProperty)
            == ["max.in.flight.requests.per.connection"])
        let safe = ["acks": "all", "request.required.acks": "-1", "enable.idempotence": "true",
                    "partitioner": "murmur2_random", "max.in.flight": "5", "linger.ms": "100"]
        #expect(ProducerGuarantees.violations(in: safe).isEmpty)
        let acks = ProducerGuarantees.violations(in: ["request.required.acks": "1"])[0]
        #expect(acks.isAllowed(by: ["acks"]) && acks.isAllowed(by: ["request.required.acks"]) && !acks.isAllowed(by: ["partitioner"]))
    }

    @Test("the relay's producer runs with every guarantee by default; pass-through properties win where no guarantee is at stake")
    func relayProducerDefaults() {
        #expect(ProducerGuarantees.violations(in: ProducerGuarantees.relayDefaults).isEmpty)
        let properties = ProducerGuarantees.producerProperties(passThrough: ["linger.ms": "2", "compression.type": "lz4"])
        #expect(properties["linger.ms"] == "2" && properties["compression.type"] == "lz4")
        #expect(properties["acks"] == "all" && properties["enable.idempotence"] == "true"
            && properties["partitioner"] == "murmur2_random" && properties["message.timeout.ms"] == "30000")
    }

    @Test("the YAML key scanner finds every key of a block-style file, typos included, and refuses flow mappings")
    func yamlKeys() throws {
        let keys = try YAMLKeys.keys(in: """
            # comment: not a key
            relay:
              batchSzie: 50   # a typo
              topic: "a: b"
            kafka:
              properties:
                - sasl.password=x: y
              brokers: |
                not: a key
              devBroker: true
            'quoted.top': 1
            """)
        #expect(keys == ["relay", "relay.batchSzie", "relay.topic", "kafka", "kafka.properties", "kafka.brokers",
                         "kafka.devBroker", "quoted.top"])
        #expect(throws: ConfigurationError.self) { try YAMLKeys.keys(in: "relay: {batchSize: 5}\n") }
    }

    @Test("config/bridge.yaml sets only keys the bridge reads")
    func documentedKeysAreKnown() async throws {
        let file = OutboxTestEnvironment.sqlDirectory.deletingLastPathComponent().appendingPathComponent("config/bridge.yaml")
        let relay = try RelayProcess.launch(["run", "--config", file.path, "--log-level", "debug"], label: "documented-keys")
        defer { relay.stop() }
        let status = try await relay.waitForExit(timeout: .seconds(60))
        // Every key is read and known; what stops it is the empty broker list the file documents.
        #expect(status == 2)
        #expect(relay.standardErrorLines == [
            "outbox-bridge: invalid configuration: kafka.brokers: no Kafka brokers: set --brokers or KAFKA_BROKERS "
                + "(or pass --dev-broker to relay to an in-memory broker that loses everything on exit)",
        ])
    }

    @Test("durations need a unit, as prune and retention both read them")
    func durations() {
        #expect(parseDuration("7d") == .seconds(7 * 86_400))
        #expect(parseDuration("12h") == .seconds(12 * 3600))
        #expect(parseDuration("30m") == .seconds(1800))
        #expect(parseDuration("45s") == .seconds(45))
        #expect(parseDuration("0d") == .zero)
        for refused in ["7", "0", "", "d", "-1d", "1.5h", "7w", "99999999999999999999d"] {
            #expect(parseDuration(refused) == nil, "\(refused)")
        }
        #expect(formatDuration(.seconds(7 * 86_400)) == "7d" && formatDuration(.seconds(90)) == "90s")
    }

    @Test("connection strings: the password and target_session_attrs, from URLs and conninfo alike")
    func connectionStrings() {
        let url = ConnectionString("postgresql://relay:s%40cret@db1:5432,db2:5432/app?target_session_attrs=read-write&sslmode=require")
        #expect(url.password == "s@cret" && url.problem == nil)
        #expect(ConnectionString("postgres://relay:p@ss@db/app").password == "p@ss")
        #expect(ConnectionString("postgresql://db/app?password=qwerty").password == "qwerty")
        let conninfo = ConnectionString("host=db  password = 'it\\'s secret' target_session_attrs=primary")
        #expect(conninfo.password == "it's secret" && conninfo.problem == nil)
        #expect(ConnectionString("host=db target_session_attrs=read-wrte").problem?.contains("read-wrte") == true)
        #expect(ConnectionString("postgresql://db/app?target_session_attrs=master").problem?.contains("master") == true)
    }

    @Test("secrets are masked: registered values anywhere, credential-looking text always")
    func redaction() {
        SecretRedaction.register("registered-secret-value")
        let cases = [
            ("config: RelayConfiguration(databaseURL: \"postgresql://relay:hunter2@db/app\")", "hunter2"),
            ("conninfo host=db password=hunter3 dbname=app", "hunter3"),
            ("conninfo host=db password='with space' dbname=app", "with space"),
            ("properties [\"sasl.password=hunter4\", \"ssl.key.password=hunter5\"]", "hunter4"),
            ("properties [\"sasl.password=hunter4\", \"ssl.key.password=hunter5\"]", "hunter5"),
            ("sasl.oauthbearer.client.secret=hunter6", "hunter6"),
            ("{\"password\":\"hunter7\"}", "hunter7"),
            ("librdkafka says: Invalid value registered-secret-value", "registered-secret-value"),
        ]
        for (line, secret) in cases {
            let redacted = SecretRedaction.redact(line)
            #expect(!redacted.contains(secret), "\(line) → \(redacted)")
            #expect(redacted.contains(SecretRedaction.mask), "\(line) → \(redacted)")
        }
        SecretRedaction.register(arguments: [
            "audit", "--kafka-property", "ssl.keystore.password=arg-secret-1", "--database-url=postgresql://u:arg-secret-2@h/db",
        ])
        #expect(SecretRedaction.redact("librdkafka: \"arg-secret-1\" libpq: arg-secret-2") == "librdkafka: \"***\" libpq: ***")
        let harmless = "password authentication failed for user \"relay\"; 3 rows at schema-changes[2]@17"
        #expect(SecretRedaction.redact(harmless) == harmless)
    }
}

/// `outbox-bridge run` with bad settings, as a process: each exits 2 with one line naming the key
/// and the problem, before connecting to anything (the database URL points at a port nobody
/// listens on, so a connection attempt would show as a different failure).
@Suite("Bad settings for run: exit 2, one line naming the key")
struct RunSettingsProcessTests {
    struct Case: Sendable {
        let name: String
        let arguments: [String]
        var environment: [String: String] = [:]
        var yaml: String?
        let mentions: String
    }

    @Test("each bad setting exits 2 with one line naming it, before any connection")
    func badSettings() async throws {
        let unusedPort = try freeLoopbackPort()
        let unreachable = "postgresql://relay:s3cret-pw@127.0.0.1:\(unusedPort)/nope"
        let takenPort = try SilentListener()
        defer { takenPort.close() }
        let base = ["run", "--database-url", unreachable, "--brokers", "127.0.0.1:1"]
        let cases = [
            Case(name: "no brokers", arguments: ["run", "--database-url", unreachable],
                 mentions: "kafka.brokers: no Kafka brokers: set --brokers or KAFKA_BROKERS"),
            Case(name: "KAFKA_BROKER (a typo) does not count", arguments: ["run", "--database-url", unreachable],
                 environment: ["KAFKA_BROKER": "127.0.0.1:9092"], mentions: "kafka.brokers: no Kafka brokers"),
            Case(name: "dev broker and brokers", arguments: base + ["--dev-broker"], mentions: "kafka.devBroker: "),
            Case(name: "unknown YAML key", arguments: base, yaml: "relay:\n  batchSzie: 50\n",
                 mentions: "invalid configuration: relay.batchSzie: unknown key"),
            Case(name: "unknown top-level YAML key", arguments: base, yaml: "relya:\n  batchSize: 50\n",
                 mentions: "invalid configuration: relya: unknown key"),
            Case(name: "unknown topic placeholder", arguments: base + ["--topic", "events.{tenat}"],
                 mentions: "relay.topic: unknown placeholder {tenat}"),
            Case(name: "negative batch size", arguments: base + ["--batch-size=-5"], mentions: "relay.batchSize: "),
            Case(name: "zero lease", arguments: base, environment: ["RELAY_LEASE_SECONDS": "0"], mentions: "relay.leaseSeconds: "),
            Case(name: "zero shutdown timeout", arguments: base, yaml: "shutdown:\n  timeoutSeconds: 0\n",
                 mentions: "shutdown.timeoutSeconds: "),
            Case(name: "negative port", arguments: base + ["--http-port=-1"], mentions: "http.port: "),
            Case(name: "port already taken", arguments: base + ["--http-port", "\(takenPort.port)"],
                 environment: ["HTTP_HOST": "127.0.0.1"], mentions: "http.port: cannot listen on 127.0.0.1:\(takenPort.port)"),
            Case(name: "retention without a unit", arguments: base, environment: ["RETENTION_KEEP_PROCESSED": "7"],
                 mentions: "retention.keepProcessed: expected a number with a unit"),
            Case(name: "target_session_attrs libpq rejects",
                 arguments: ["run", "--database-url", unreachable + "?target_session_attrs=read-wrte", "--brokers", "127.0.0.1:1"],
                 mentions: "database.url: target_session_attrs must be one of"),
            Case(name: "unknown librdkafka property", arguments: base + ["--kafka-property", "nope.nope=1"],
                 mentions: "kafka.properties: nope.nope rejected by librdkafka"),
            Case(name: "acks=1", arguments: base + ["--kafka-property", "acks=1"],
                 mentions: "kafka.properties: acks=1 breaks a guarantee: rows are marked processed only once every in-sync replica"),
            Case(name: "request.required.acks=0", arguments: base + ["--kafka-property", "request.required.acks=0"],
                 mentions: "kafka.properties: request.required.acks=0 breaks a guarantee"),
            Case(name: "enable.idempotence=false", arguments: base + ["--kafka-property", "enable.idempotence=false"],
                 mentions: "kafka.properties: enable.idempotence=false breaks a guarantee"),
            Case(name: "partitioner=random", arguments: base + ["--kafka-property", "partitioner=random"],
                 mentions: "kafka.properties: partitioner=random breaks a guarantee"),
            Case(name: "max.in.flight=10", arguments: base + ["--kafka-property", "max.in.flight=10"],
                 mentions: "kafka.properties: max.in.flight=10 breaks a guarantee"),
            Case(name: "a combination librdkafka refuses",
                 arguments: base + ["--kafka-property", "acks=1", "--allow-unsafe-kafka-property", "acks"],
                 mentions: "kafka.properties: librdkafka refuses these properties together"),
            Case(name: "allowing one does not allow another",
                 arguments: base + ["--kafka-property", "acks=1", "--kafka-property", "partitioner=random",
                                    "--allow-unsafe-kafka-property", "acks"],
                 mentions: "kafka.properties: partitioner=random breaks a guarantee"),
            Case(name: "allowing a property that is not guarded", arguments: base + ["--allow-unsafe-kafka-property", "linger.ms"],
                 mentions: "kafka.allowUnsafeProperties: linger.ms is not a property that breaks a guarantee"),
            Case(name: "an unknown option (swift-argument-parser's 64)", arguments: base + ["--batch-sise", "5"],
                 mentions: "Unknown option '--batch-sise'"),
        ]
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("settings-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, testCase) in cases.enumerated() {
                var arguments = testCase.arguments
                if let yaml = testCase.yaml {
                    let file = directory.appendingPathComponent("case-\(index).yaml")
                    try yaml.write(to: file, atomically: true, encoding: .utf8)
                    arguments += ["--config", file.path]
                }
                group.addTask { [arguments] in
                    let relay = try RelayProcess.launch(arguments, environment: testCase.environment, label: "settings")
                    defer { relay.stop() }
                    let status = try await relay.waitForExit(timeout: .seconds(60))
                    let lines = relay.standardErrorLines
                    #expect(status == 2, "\(testCase.name): exit \(status): \(lines)")
                    #expect(lines.count == 1, "\(testCase.name): stderr is not one line:\n\(relay.standardError)")
                    #expect(lines.first?.hasPrefix("outbox-bridge: ") == true, "\(testCase.name): \(lines)")
                    #expect(lines.first?.contains(testCase.mentions) == true, "\(testCase.name) does not mention \(testCase.mentions): \(lines)")
                    #expect(!relay.standardError.contains("s3cret-pw"), "\(testCase.name) printed the password")
                }
            }
            try await group.waitForAll()
        }
    }
}

@Suite("Explicit choices: the development broker and unsafe Kafka properties")
struct ExplicitChoiceTests {
    @Test("--dev-broker (or KAFKA_DEV_BROKER) relays to an in-memory broker, saying so; an allowed unsafe property is warned about at start")
    func explicitChoices() async throws {
        try await withEnvironment("explicit_choices") { environment, sql in
            for (arguments, variables) in [(["--dev-broker"], [String: String]()), ([], ["KAFKA_DEV_BROKER": "true"])] {
                let relay = try RelayProcess.launch(
                    ["run", "--database-url", environment.database.url, "--poll-interval", "0.2"] + arguments,
                    environment: variables, label: "dev-broker")
                defer { relay.stop() }
                try await relay.waitForStandardError(containing: "relay started", timeout: .seconds(60))
                #expect(relay.standardOutput.hasPrefix("development broker: 127.0.0.1:"), "\(relay.standardOutput)")
                #expect(relay.standardError.contains("relaying to an in-memory development broker"))
                try await sql.query("SELECT platform.emit('t1', 'test.dev', '{}')")
                try await waitUntil("the event is marked processed") { try await processedCount(sql) >= 1 }
                relay.kill(SIGTERM)
                #expect(try await relay.waitForExit(timeout: .seconds(60)) == 0)
            }

            // librdkafka refuses acks=1 with idempotence, so accepting one means accepting both.
            let relay = try RelayProcess.launch(
                relayArguments(environment, ["--kafka-property", "acks=1", "--kafka-property", "enable.idempotence=false",
                                             "--allow-unsafe-kafka-property", "acks",
                                             "--allow-unsafe-kafka-property", "enable.idempotence"]),
                label: "unsafe-allowed")
            defer { relay.stop() }
            try await relay.waitForStandardError(containing: "relay started", timeout: .seconds(60))
            let warnings = relay.standardErrorLines.filter { $0.contains("UNSAFE KAFKA PROPERTY ACCEPTED") }
            #expect(warnings.count == 2 && warnings.allSatisfy { $0.contains("level=warning") }, "\(relay.standardError)")
            #expect(warnings.first?.contains("acks=1 breaks a guarantee") == true, "\(warnings)")
            #expect(warnings.last?.contains("enable.idempotence=false breaks a guarantee") == true, "\(warnings)")
            relay.kill(SIGTERM)
            #expect(try await relay.waitForExit(timeout: .seconds(60)) == 0)
        }
    }
}
