import Foundation
import Kafka
import Postgres
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Every command, run as the real executable at its most talkative, with a database password
/// (in a URL and in a conninfo string) and librdkafka secrets set: neither its standard output
/// nor its standard error may contain them.
@Suite("Secrets never reach a log line or an error message")
struct SecretRedactionTests {
    static let databasePassword = "Db-pw-7c41e9"
    static let conninfoPassword = "Ci-pw-52d8af"
    static let saslPassword = "Sasl-pw-0b6e13"
    static let keyPassword = "Key-pw-93fa27"

    /// `url` with `password` as the user's password (the test cluster trusts loopback, so it is
    /// sent nowhere, but every layer that prints the URL sees it).
    private func withPassword(_ url: String, _ password: String = databasePassword) -> String {
        url.replacingOccurrences(of: "postgresql://postgres@", with: "postgresql://postgres:\(password)@")
    }

    private let kafkaSecrets = [
        "--kafka-property", "sasl.password=\(saslPassword)", "--kafka-property", "ssl.key.password=\(keyPassword)",
    ]

    private func expectNoSecret(_ process: RelayProcess, _ name: String) {
        let output = process.standardOutput + process.standardError
        for secret in [Self.databasePassword, Self.conninfoPassword, Self.saslPassword, Self.keyPassword] {
            #expect(!output.contains(secret), "\(name) printed a secret:\n\(output.split(separator: "\n").filter { $0.contains(secret) }.prefix(5).joined(separator: "\n"))")
        }
    }

    @Test("every command at debug level, succeeding and failing, prints no password or Kafka secret")
    func noSecretInAnyOutput() async throws {
        let environment = try await OutboxTestEnvironment.start("secrets")
        let fresh = try await TestDatabase.create("secrets_install")
        let warehouse = try await TestDatabase.create("secrets_warehouse")
        let url = withPassword(environment.database.url)
        let brokers = environment.broker.bootstrapServers
        let components = try #require(URLComponents(string: environment.database.url))
        let conninfo = "host=\(components.host ?? "") port=\(components.port ?? 5432) dbname=\(environment.database.name) "
            + "user=postgres password='\(Self.conninfoPassword)'"
        let unreachable = "postgresql://postgres:\(Self.databasePassword)@127.0.0.1:\(try freeLoopbackPort())/nope"
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("secrets-sdk-\(UUID().uuidString)")

        // Commands that finish by themselves: successes and failures.
        let finishing: [(String, [String])] = [
            ("install", ["install", "--database-url", withPassword(fresh.url)]),
            ("status", ["status", "--database-url", url, "--json"]),
            ("status with conninfo", ["status", "--database-url", conninfo]),
            ("replay", ["replay", "--database-url", url, "--tenant", "nobody", "--yes"]),
            ("prune", ["prune", "--database-url", url, "--dry-run"]),
            ("audit", ["audit", "--database-url", url, "--brokers", brokers] + kafkaSecrets),
            ("status, database unreachable", ["status", "--database-url", unreachable]),
            ("status, bad port in the URL", ["status", "--database-url", url.replacingOccurrences(of: "@127.0.0.1:", with: "@127.0.0.1:x")]),
            ("run, database unreachable", ["run", "--database-url", unreachable, "--brokers", brokers, "--log-level", "debug"] + kafkaSecrets),
            ("run, bad setting", ["run", "--database-url", url, "--brokers", brokers, "--log-level", "debug", "--batch-size", "0"]
                + kafkaSecrets),
            ("run, unknown Kafka property", ["run", "--database-url", url, "--brokers", brokers, "--kafka-property", "nope=\(Self.saslPassword)"]),
            ("run, Kafka unreachable", ["run", "--database-url", url, "--brokers", "127.0.0.1:1", "--log-level", "debug"] + kafkaSecrets),
            ("warehouse-sync, warehouse unreachable",
             ["warehouse-sync", "--brokers", brokers, "--warehouse-url", unreachable, "--log-level", "debug"] + kafkaSecrets),
        ]
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (name, arguments) in finishing {
                group.addTask {
                    let process = try RelayProcess.launch(arguments, label: "secrets")
                    defer { process.stop() }
                    _ = try await process.waitForExit(timeout: .seconds(90))
                    expectNoSecret(process, name)
                }
            }
            try await group.waitForAll()
        }

        // Services: started at debug level (librdkafka's configuration debugging on for the
        // relay), seen working, then stopped with SIGTERM.
        let services: [(String, [String], String)] = [
            ("run", ["run", "--database-url", url, "--brokers", brokers, "--log-level", "debug", "--kafka-property", "debug=conf,broker"]
                + kafkaSecrets, "relay started"),
            ("sdk-sync", ["sdk-sync", "--brokers", brokers, "--out", output.path, "--log-level", "debug"] + kafkaSecrets,
             "consumer started"),
            ("warehouse-sync", ["warehouse-sync", "--brokers", brokers, "--warehouse-url", withPassword(warehouse.url),
                                "--log-level", "debug"] + kafkaSecrets, "consumer started"),
        ]
        for (name, arguments, started) in services {
            let process = try RelayProcess.launch(arguments, label: "secrets-\(name)")
            defer { process.stop() }
            try await process.waitForStandardError(containing: started, timeout: .seconds(60))
            if name == "run" {
                let sql = try await environment.database.connect()
                try await sql.query("SELECT platform.emit('t1', 'test.secret', '{}')")
                try await environment.waitUntilAllDelivered(sql)
            }
            process.kill(SIGTERM)
            let status = try await process.waitForExit(timeout: .seconds(60))
            #expect(status == 0, "\(name) exit \(status)")
            #expect(process.standardError.contains("level=debug"), "\(name) did not log at debug level")
            expectNoSecret(process, name)
        }
        try? await fresh.drop()
        try? await warehouse.drop()
        await environment.drop()
    }
}
