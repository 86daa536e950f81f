public import Foundation
public import Kafka
import Logging
import Outbox
public import Postgres
public import Relay

/// A database with the outbox installed by the real installer, and an embedded Kafka cluster
/// with the relay's topics, for tests that follow events from DDL to Kafka.
public struct OutboxTestEnvironment: Sendable {
    public let database: TestDatabase
    /// The database as a login that has only `outbox_relay`, the one role the README tells users
    /// to grant the bridge: relays under test run as it, never as the superuser, so a privilege
    /// the documented deployment lacks fails the tests.
    public let relayURL: String
    public let broker: KafkaDevelopmentBroker
    public let kafka: IndependentKafkaClient
    /// Partitions of the main topic.
    public let partitions: Int
    public static let topic = "schema-changes"
    public static let deadLetterTopic = "schema-changes.dead-letter"

    /// The repository's `sql/` folder, the same files `outbox-bridge install` applies.
    public static let sqlDirectory = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("sql")

    /// `clusterURL` puts the database in a cluster of the test's own instead of the shared one.
    public static func start(
        _ label: String, partitions: Int = 6, brokers: Int = 1, clusterURL: String? = nil
    ) async throws -> OutboxTestEnvironment {
        let database = try await TestDatabase.create(label, clusterURL: clusterURL)
        let connection = try await database.connect()
        try await OutboxInstaller(connection: connection, schema: "platform", logger: Logger(label: "test.install"))
            .install(try OutboxMigration.load(from: sqlDirectory))
        let relayURL = try await database.relayLoginURL()
        let broker = try KafkaDevelopmentBroker(brokers: brokers, logger: makeKafkaTestLogger("test.broker"))
        try broker.createTopic(topic, partitions: partitions)
        try broker.createTopic(deadLetterTopic, partitions: 1)
        return OutboxTestEnvironment(
            database: database, relayURL: relayURL, broker: broker,
            kafka: IndependentKafkaClient(bootstrapServers: broker.bootstrapServers), partitions: partitions)
    }

    /// A relay configuration aimed at this environment, tuned to react quickly in tests.
    public func relayConfiguration() -> RelayConfiguration {
        var configuration = RelayConfiguration()
        configuration.databaseURL = relayURL
        configuration.brokers = broker.bootstrapServers
        configuration.pollInterval = .milliseconds(200)
        configuration.retryBackoff = .milliseconds(200)
        configuration.maxRetryBackoff = .seconds(1)
        configuration.leaseDuration = .seconds(2)
        return configuration
    }

    /// Outbox rows and their delivery state, in id order.
    public func outboxRows(_ connection: PostgresConnection) async throws -> [OutboxRow] {
        let rows = try await connection.query(
            """
            SELECT id, event_data->>'event_id' AS event_id, tenant_key, processed, dead, dead_reason, attempts,
                   last_error, kafka_topic, kafka_partition, kafka_offset
            FROM platform.schema_changes ORDER BY id
            """)
        return try rows.map { row throws(PostgresError) in
            OutboxRow(
                id: try row.require(Int64.self, column: "id"),
                eventID: try row.require(String.self, column: "event_id"),
                tenantKey: row["tenant_key"],
                processed: try row.require(Bool.self, column: "processed"),
                dead: try row.require(Bool.self, column: "dead"),
                deadReason: row["dead_reason"],
                attempts: try row.require(Int.self, column: "attempts"),
                lastError: row["last_error"],
                topic: row["kafka_topic"],
                partition: try row.decode(Int32.self, column: "kafka_partition"),
                offset: try row.decode(Int64.self, column: "kafka_offset"))
        }
    }

    /// Waits until no outbox row is pending.
    public func waitUntilAllDelivered(_ connection: PostgresConnection, timeout: Duration = .seconds(60)) async throws {
        try await waitUntil("every outbox row is processed or dead", timeout: timeout) {
            let rows = try await connection.query(
                "SELECT count(*) AS pending FROM platform.schema_changes WHERE NOT processed AND NOT dead")
            return try rows[0].require(Int.self, column: "pending") == 0
        }
    }

    public func drop() async {
        try? await database.drop()
    }
}

/// One outbox row as the relay left it.
public struct OutboxRow: Sendable, Hashable {
    public let id: Int64
    public let eventID: String
    public let tenantKey: String?
    public let processed: Bool
    public let dead: Bool
    public let deadReason: String?
    public let attempts: Int
    public let lastError: String?
    public let topic: String?
    public let partition: Int32?
    public let offset: Int64?
}
