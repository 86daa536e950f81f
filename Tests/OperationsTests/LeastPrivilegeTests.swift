import Foundation
import Kafka
import Operations
import Outbox
import Postgres
import TestSupport
import Testing

@Suite("The bridge run as a login granted only outbox_relay, as the README recommends")
struct LeastPrivilegeTests {
    @Test("as an outbox_relay login, `outbox-bridge run` relays and marks events, and retention deletes old processed rows")
    func relayAndRetentionAsRelayLogin() async throws {
        let environment = try await OutboxTestEnvironment.start("least_privilege")
        let sql = try await environment.database.connect()
        let loginURL = environment.relayURL

        // The login really is least-privileged: it may not delete outbox rows itself.
        let login = try await PostgresConnection.connect(loginURL)
        await #expect(throws: PostgresError.self) { try await login.query("DELETE FROM platform.schema_changes") }
        let superuser = try await login.query("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")[0]
        #expect(try superuser.require(Bool.self, column: "rolsuper") == false)

        // Rows retention must keep: a dead event, and a pending one waiting an hour for its retry.
        try await sql.execute(script: """
            SELECT platform.emit('keep', 'test.dead', '{}');
            UPDATE platform.schema_changes SET dead = true, dead_reason = 'test', processed_at = now() - interval '1 day';
            SELECT platform.emit('keep', 'test.waiting', '{}');
            UPDATE platform.schema_changes SET next_attempt_at = now() + interval '1 hour' WHERE NOT dead;
            """)

        let relay = try RelayProcess.launch(
            ["run", "--database-url", loginURL, "--brokers", environment.broker.bootstrapServers,
             "--poll-interval", "0.2", "--log-level", "info"],
            // Rows are aged below, once every event is seen marked: a short keep window would
            // race the wait for all 15 (retention deleted the first ones before the last were
            // marked on a loaded machine, and the count never reached 15).
            environment: ["RETENTION_KEEP_PROCESSED": "1h", "RETENTION_INTERVAL_SECONDS": "1", "RELAY_LEASE_SECONDS": "2"],
            label: "least-privilege")
        defer { relay.stop() }

        try await sql.query(
            """
            SELECT platform.emit('t' || tenant, 'test.sequence', jsonb_build_object('seq', step))
            FROM generate_series(0, 4) AS step, generate_series(1, 3) AS tenant ORDER BY step, tenant
            """)
        var delivered: [OutboxRow] = []
        try await waitUntil("the relay login delivered and marked all 15 events", timeout: .seconds(60)) {
            delivered = try await environment.outboxRows(sql).filter(\.processed)
            return delivered.count == 15
        }
        #expect(delivered.allSatisfy { $0.topic == OutboxTestEnvironment.topic && $0.partition != nil && $0.offset != nil })
        let records = try await environment.kafka.consume(topic: OutboxTestEnvironment.topic)
        #expect(Set(records.compactMap { $0.header("event_id") }) == Set(delivered.map(\.eventID)))

        // The delivered rows turn two hours old; the dead row is a day old, and must stay.
        try await sql.query(
            "UPDATE platform.schema_changes SET processed_at = processed_at - interval '2 hours' WHERE processed AND NOT dead")
        try await waitUntil("retention deleted the processed rows older than 1 h", timeout: .seconds(60)) {
            try await environment.outboxRows(sql).allSatisfy { !$0.processed }
        }
        let left = try await environment.outboxRows(sql)
        #expect(left.map(\.tenantKey) == ["keep", "keep"])
        #expect(left.filter(\.dead).count == 1)
        try await relay.waitForStandardError(containing: "retention deleted processed events")
        let log = relay.standardError
        #expect(!log.contains("42501"), "\(log.suffix(4000))")
        #expect(!log.contains("retention sweep failed"), "\(log.suffix(4000))")
        #expect(relay.isRunning)
        relay.stop()
        await environment.drop()
    }

    @Test("installed with psql -f into an oddly named schema, retention runs as an outbox_relay login and deletes only old processed rows")
    func pruneAsRelayLoginAfterPsqlInstall() async throws {
        let database = try await TestDatabase.create("prune_psql")
        let schema = #"ops "odd" schema"#
        let files = try FileManager.default.contentsOfDirectory(atPath: OutboxTestEnvironment.sqlDirectory.path)
            .filter { $0.hasPrefix("0") && $0.hasSuffix(".sql") }.sorted()
        #expect(files.contains("012_retention.sql"))
        for file in files {
            let result = try await runTool(
                "/usr/bin/psql",
                ["-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "schema=\(schema)", "-d", database.url,
                 "-f", OutboxTestEnvironment.sqlDirectory.appendingPathComponent(file).path])
            #expect(result.status == 0, "\(file): \(result.errorOutput)")
        }
        let sql = try await database.connect()
        let table = "\(try await sql.quoteIdentifier(schema)).schema_changes"
        try await sql.execute(script: """
            INSERT INTO \(table) (event_data, tenant_key, processed, processed_at, dead)
            SELECT jsonb_build_object('event_id', gen_random_uuid(), 'command', 'test', 'kind', 'domain'), 't',
                   n <= 5, now() - interval '2 days', n = 7
            FROM generate_series(1, 8) AS n;
            """)

        let login = try await PostgresConnection.connect(try await database.relayLoginURL())
        // Were retention to wait for a locked row, this bound fails the test instead of hanging it.
        try await login.query("SET statement_timeout = '20s'")
        let operations = try await OutboxOperations(connection: login, schema: schema)
        // A transaction holds the oldest processed row (a replay in progress, say): retention
        // skips it rather than wait, and takes it once it is free.
        try await sql.query("BEGIN")
        try await sql.query("SELECT id FROM \(table) WHERE processed ORDER BY id LIMIT 1 FOR UPDATE")
        #expect(try await operations.prune(olderThan: .seconds(86_400), batchSize: 2) == 4)
        try await sql.query("COMMIT")
        #expect(try await operations.prune(olderThan: .seconds(86_400), batchSize: 2) == 1)
        let left = try await sql.query("SELECT count(*) FILTER (WHERE dead) AS dead, count(*) AS total FROM \(table)")[0]
        #expect(try left.require(Int.self, column: "total") == 3)
        #expect(try left.require(Int.self, column: "dead") == 1)
        try await database.drop()
    }
}
