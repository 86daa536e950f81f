import Foundation
import Kafka
import Postgres
import TestSupport
import Testing

/// DDL that escapes the event triggers reaches consumers without anyone calling reconcile():
/// the running bridge calls it every `drift.reconcileIntervalSeconds`, as the relay's
/// least-privilege login, and counts what it emits.
@Suite("The running bridge reconciles drift periodically")
struct DriftReconciliationTests {
    @Test("DDL made under session_replication_role = replica while the bridge runs is delivered as drift events, once each, and counted")
    func driftWhileRunning() async throws {
        let environment = try await OutboxTestEnvironment.start("drift_service", partitions: 1)
        let sql = try await environment.database.connect()
        try await sql.execute(script: "CREATE SCHEMA tenant_acme; CREATE TABLE tenant_acme.orders (id bigint PRIMARY KEY);")
        let relay = try RelayProcess.launch(
            ["run", "--database-url", environment.relayURL, "--brokers", environment.broker.bootstrapServers,
             "--poll-interval", "0.2"],
            environment: ["RELAY_LEASE_SECONDS": "2", "DRIFT_RECONCILE_INTERVAL_SECONDS": "1"], label: "drift-service")
        defer { relay.stop() }
        let port = try await relay.observabilityPort()
        try await waitUntil("the bridge exports outbox_drift_events_total") {
            try await relay.metric("outbox_drift_events_total", port: port) == 0
        }

        // A session the event triggers do not fire for.
        try await sql.execute(script: """
            SET session_replication_role = replica;
            ALTER TABLE tenant_acme.orders ADD COLUMN total numeric(12,2);
            CREATE TABLE tenant_acme.unseen (id int);
            RESET session_replication_role;
            """)
        try await waitUntil("two drift events are counted", timeout: .seconds(120)) {
            try await relay.metric("outbox_drift_events_total", port: port) == 2
        }
        // A third escaped change, found by a later call: every call in between (one a second)
        // must have emitted nothing, or the first two would be there twice.
        try await sql.execute(script: """
            SET session_replication_role = replica;
            DROP TABLE tenant_acme.unseen;
            RESET session_replication_role;
            """)
        try await waitUntil("the third drift event is counted", timeout: .seconds(120)) {
            try await relay.metric("outbox_drift_events_total", port: port) == 3
        }
        try await environment.waitUntilAllDelivered(sql)

        let records = try await environment.kafka.consume(topic: OutboxTestEnvironment.topic)
        let drift = try records.compactMap { record -> String? in
            let event = try JSONSerialization.jsonObject(with: Data((record.payload ?? "{}").utf8)) as? [String: Any]
            guard event?["kind"] as? String == "drift" else { return nil }
            let table = event?["table"] as? [String: Any]
            let added = ((event?["changes"] as? [String: Any])?["columns_added"] as? [[String: Any]])?.compactMap { $0["name"] as? String }
            return "\(event?["drift"] ?? "?") \(table?["name"] ?? "?") \(added ?? [])"
        }
        #expect(drift == ["altered orders [\"total\"]", "created unseen []", "dropped unseen []"])
        #expect(try await relay.metric("outbox_drift_events_total", port: port) == 3)
        await environment.drop()
    }

    @Test("drift.reconcileIntervalSeconds 0 turns reconciliation off: no drift event, no drift metric")
    func off() async throws {
        let environment = try await OutboxTestEnvironment.start("drift_off", partitions: 1)
        let sql = try await environment.database.connect()
        try await sql.execute(script: """
            CREATE SCHEMA tenant_off;
            SET session_replication_role = replica;
            CREATE TABLE tenant_off.unseen (id int);
            RESET session_replication_role;
            """)
        let relay = try RelayProcess.launch(
            ["run", "--database-url", environment.relayURL, "--brokers", environment.broker.bootstrapServers,
             "--poll-interval", "0.2"],
            environment: ["RELAY_LEASE_SECONDS": "2", "DRIFT_RECONCILE_INTERVAL_SECONDS": "0"], label: "drift-off")
        defer { relay.stop() }
        let port = try await relay.observabilityPort()
        // An event emitted after start is delivered: every service of the bridge has been running
        // for a while, and a reconciling one would have made its first call at start.
        try await sql.query("SELECT platform.emit('off', 'test.after_start', '{}')")
        try await environment.waitUntilAllDelivered(sql)
        try await waitUntil("the backlog gauges have sampled the drained outbox") {
            try await relay.metric("outbox_pending_events_total", port: port) == 0
        }
        #expect(try await relay.metric("outbox_drift_events_total", port: port) == nil)
        #expect(try await sql.query("SELECT count(*) AS n FROM platform.schema_changes WHERE event_data->>'kind' = 'drift'")[0]["n"] == "0")
        await environment.drop()
    }

    @Test("reconcile() called while a captured ALTER is in progress reports nothing, and keeps the ALTER's snapshot")
    func reconcileBesideDDLInProgress() async throws {
        let database = try await TestDatabase.createInstalled("drift_concurrent")
        let admin = try await database.connect()
        try await admin.execute(script: "CREATE SCHEMA tenant_c; CREATE TABLE tenant_c.t (id int);")
        #expect(try await admin.query("SELECT platform.reconcile() AS n")[0]["n"] == "0")

        let migration = try await database.connect()
        try await migration.execute(script: "BEGIN; ALTER TABLE tenant_c.t ADD COLUMN during text;")
        let reconciler = try await database.connect()
        let pid = try await reconciler.query("SELECT pg_backend_pid() AS pid")[0]["pid"] ?? "?"
        let first = Task { try await reconciler.query("SELECT platform.reconcile() AS n")[0]["n"] }
        try await waitUntil("reconcile() has run beside the ALTER in progress (returned, or waits for a lock)") {
            try await admin.query(
                """
                SELECT count(*) AS n FROM pg_stat_activity
                 WHERE pid = $1::int AND query LIKE '%platform.reconcile()%' AND (state = 'idle' OR wait_event_type = 'Lock')
                """, [pid]
            )[0]["n"] == "1"
        }
        try await migration.execute(script: "COMMIT")
        #expect(try await first.value == "0")
        // Had reconcile() written back the shape it read before the ALTER committed, this call
        // would report the ALTER a second time, as drift.
        #expect(try await admin.query("SELECT platform.reconcile() AS n")[0]["n"] == "0")
        let commands = try await admin.query("SELECT event_data->>'command' AS command FROM platform.schema_changes ORDER BY id")
        #expect(commands.map { $0["command"] } == ["CREATE SCHEMA", "CREATE TABLE", "ALTER TABLE"])
        try? await database.drop()
    }

    @Test("reconcile() does not wait behind a capture in progress: it leaves that table's drift to the capture's own event, reported once")
    func reconcileBesideCaptureHoldingSnapshot() async throws {
        let database = try await TestDatabase.createInstalled("drift_skip")
        let admin = try await database.connect()
        try await admin.execute(script: """
            CREATE SCHEMA tenant_s; CREATE TABLE tenant_s.t (id int);
            SET session_replication_role = replica;
            ALTER TABLE tenant_s.t ADD COLUMN escaped text;
            RESET session_replication_role;
            """)
        // A COMMENT leaves the table readable but holds the table's snapshot row until it commits.
        let migration = try await database.connect()
        try await migration.execute(script: "BEGIN; COMMENT ON TABLE tenant_s.t IS 'in progress';")
        let started = ContinuousClock.now
        #expect(try await admin.query("SELECT platform.reconcile() AS n")[0]["n"] == "0")
        #expect(ContinuousClock.now - started < .seconds(30), "reconcile() waited for the migration")
        try await migration.execute(script: "COMMIT")
        #expect(try await admin.query("SELECT platform.reconcile() AS n")[0]["n"] == "0")
        let events = try await admin.query(
            """
            SELECT event_data->>'command' AS command, event_data->'changes'->'columns_added'->0->>'name' AS added
              FROM platform.schema_changes ORDER BY id
            """)
        #expect(events.map { [$0["command"], $0["added"]] } == [["CREATE SCHEMA", nil], ["CREATE TABLE", nil], ["COMMENT", "escaped"]])
        try? await database.drop()
    }

    @Test("a reconcile interval below 1 s (other than 0, off) or negative exits 2 with one line naming the key", arguments: ["0.5", "-1"])
    func badInterval(_ interval: String) async throws {
        let relay = try RelayProcess.launch(
            ["run", "--database-url", "postgresql://relay@127.0.0.1:1/nope", "--brokers", "127.0.0.1:1"],
            environment: ["DRIFT_RECONCILE_INTERVAL_SECONDS": interval], label: "drift-settings")
        defer { relay.stop() }
        #expect(try await relay.waitForExit(timeout: .seconds(60)) == 2)
        #expect(relay.standardErrorLines.count == 1, "\(relay.standardError)")
        #expect(relay.standardErrorLines.first?.contains("drift.reconcileIntervalSeconds: ") == true, "\(relay.standardError)")
    }
}
