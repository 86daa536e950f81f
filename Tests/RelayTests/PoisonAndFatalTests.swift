import Foundation
@testable import Kafka
import Outbox
import OutboxBridgeCLI
import Postgres
import Relay
import ServiceLifecycle
import TestSupport
import Testing

@Suite("Fatal producer errors and poison events: the relay goes on, and other tenants never wait")
struct PoisonAndFatalTests {
    @Test("a fatal producer error: not ready, nothing marked on the failed instance's word, a new instance delivers everything")
    func fatalProducerErrorIsSurvived() async throws {
        let environment = try await OutboxTestEnvironment.start("fatal_producer")
        let sql = try await environment.database.connect()

        var configuration = environment.relayConfiguration()
        // One produce request carries all the events below: the mock broker handles a
        // connection's next request only after answering the one before.
        configuration.kafkaProperties["linger.ms"] = "200"

        let firstCopies = try await withAssembledRelay(configuration) { producer in
            try await sql.query("SELECT platform.emit('t1', 'test.warmup', '{}')")
            try await environment.waitUntilAllDelivered(sql)
            // The broker stores the events at once and acknowledges them 10 s later, so they
            // are in Kafka and unacknowledged when the producer fails. The next produce requests,
            // the new instance's first ones, are answered as late, so nothing is acknowledged
            // before the test has seen the relay report the failure.
            try environment.broker.delayResponses(broker: 1, apiKey: .produce, count: 4, milliseconds: 10_000)
            try await emit(sql, tenants: 3, eventsPerTenant: 3, firstRound: 0)
            try await waitUntil("the broker has written the events", timeout: .seconds(60)) {
                try await environment.kafka.consume(topic: OutboxTestEnvironment.topic).count == 10
            }
            let firstCopies = try await environment.kafka.consume(topic: OutboxTestEnvironment.topic)
            #expect(producer.instance.client.raiseFatalErrorForTesting(.outOfOrderSequenceNumber, reason: "test"))
            try await waitUntil("the relay reports the fatal error") { producer.unrecoveredFatalError != nil }
            try await environment.waitUntilAllDelivered(sql, timeout: .seconds(120))
            #expect(producer.unrecoveredFatalError == nil, "ready again once the new instance delivered")
            return firstCopies
        }

        let rows = try await environment.outboxRows(sql)
        #expect(rows.count == 10 && rows.allSatisfy { $0.processed && !$0.dead })
        let records = try await environment.kafka.consume(topic: OutboxTestEnvironment.topic)
        for row in rows.dropFirst() {
            #expect(!firstCopies.contains { $0.partition == row.partition && $0.offset == row.offset },
                    "row \(row.id) was marked at the copy the failed instance sent")
            let record = records.first { $0.partition == row.partition && $0.offset == row.offset }
            #expect(record?.header("event_id") == row.eventID, "row \(row.id)")
        }
    }

    @Test("an oversized event: its dead letter is a small summary that fits, and the row is marked dead")
    func oversizedEventIsSummarised() async throws {
        let environment = try await OutboxTestEnvironment.start("oversized")
        let sql = try await environment.database.connect()

        try await withAssembledRelay(environment.relayConfiguration()) { _ in
            // Larger than librdkafka's message.max.bytes (1 MB).
            try await sql.query("SELECT platform.emit('big', 'test.too_large', jsonb_build_object('blob', repeat('x', 2000000)))")
            try await environment.waitUntilAllDelivered(sql)
        }

        let row = try #require(try await environment.outboxRows(sql).first)
        #expect(row.dead && row.attempts == 1 && row.deadReason?.contains("MSG_SIZE_TOO_LARGE") == true)
        let deadLetters = try await environment.kafka.consume(topic: OutboxTestEnvironment.deadLetterTopic)
        #expect(deadLetters.count == 1)
        let record = try #require(deadLetters.first)
        #expect(row.topic == OutboxTestEnvironment.deadLetterTopic && row.offset == record.offset)
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data((record.payload ?? "").utf8)) as? [String: Any])
        #expect(summary["event_id"] as? String == row.eventID)
        #expect(summary["outbox_id"] as? Int == Int(row.id))
        #expect(summary["tenant"] as? String == "big")
        #expect((summary["size_bytes"] as? Int ?? 0) > 2_000_000)
        #expect((summary["reason"] as? String)?.contains("MSG_SIZE_TOO_LARGE") == true)
        #expect((record.payload ?? "").utf8.count < 2_000)
    }

    /// The dead-letter topic does not exist (metadata says UNKNOWN_TOPIC_OR_PART) or refuses
    /// the producer (TOPIC_AUTHORIZATION_FAILED): either way librdkafka holds the dead letter
    /// until `message.timeout.ms` before failing it.
    @Test("a dead-letter topic that is missing or refuses: other tenants are marked while the dead letter waits; the row stays pending with the error, and is dead-lettered once the topic takes it",
          arguments: [KafkaErrorCode.unknownTopicOrPartition, .topicAuthorizationFailed])
    func unusableDeadLetterTopicBlocksNobody(topicError: KafkaErrorCode) async throws {
        let environment = try await OutboxTestEnvironment.start("dlq_unusable")
        let sql = try await environment.database.connect()
        var configuration = environment.relayConfiguration()
        configuration.kafkaProperties["message.timeout.ms"] = "30000"
        environment.broker.setTopicError(OutboxTestEnvironment.deadLetterTopic, error: topicError)
        let poisonRow = { try await environment.outboxRows(sql).first { $0.tenantKey == "poison" } }

        try await withAssembledRelay(configuration) { producer in
            try await sql.query("SELECT platform.emit('warm', 'test.warmup', '{}')")
            try await environment.waitUntilAllDelivered(sql)
            try await sql.query("SELECT platform.emit('poison', 'test.too_large', jsonb_build_object('blob', repeat('x', 2000000)))")
            try await waitUntil("the dead letter waits in the producer") { producer.instance.client.outstandingCount > 0 }
            try await emit(sql, tenants: 3, eventsPerTenant: 3, firstRound: 0)
            try await waitUntil("the other tenants are delivered while the dead letter waits", timeout: .seconds(20)) {
                try await environment.outboxRows(sql).filter { $0.tenantKey != "poison" }.allSatisfy(\.processed)
            }
            let waiting = try #require(try await poisonRow())
            #expect(waiting.attempts == 0 && waiting.lastError == nil, "the dead letter failed before the others were marked")
            try await waitUntil("the poison event's dead letter has failed", timeout: .seconds(120)) {
                try await poisonRow()?.lastError?.contains("dead-letter publish failed") == true
            }
            let failed = try #require(try await poisonRow())
            #expect(!failed.processed && !failed.dead && failed.attempts == 1)
            // Once the topic takes records, the retry dead-letters the event.
            environment.broker.setTopicError(OutboxTestEnvironment.deadLetterTopic, error: .noError)
            try await environment.waitUntilAllDelivered(sql, timeout: .seconds(120))
        }
        let poison = try #require(try await poisonRow())
        #expect(poison.dead && poison.attempts >= 2)
        #expect(try await environment.kafka.consume(topic: OutboxTestEnvironment.deadLetterTopic).count == 1)
    }

    @Test("a marker write that fails after its dead letter landed is retried without publishing the dead letter again")
    func retriedWriteDoesNotRepublishTheDeadLetter() async throws {
        let environment = try await OutboxTestEnvironment.start("retried_dead_write")
        let sql = try await environment.database.connect()
        try await failFirstDeadMark(sql)

        try await withAssembledRelay(environment.relayConfiguration()) { _ in
            try await sql.query("SELECT platform.emit('big', 'test.too_large', jsonb_build_object('blob', repeat('x', 2000000)))")
            try await environment.waitUntilAllDelivered(sql)
        }
        #expect(try await sql.query("SELECT last_value FROM platform.dead_mark_attempts")[0].require(Int.self, column: "last_value") >= 2,
                "the injected failure never happened")
        let row = try #require(try await environment.outboxRows(sql).first)
        #expect(row.dead && row.attempts == 1)
        let deadLetters = try await environment.kafka.consume(topic: OutboxTestEnvironment.deadLetterTopic)
        #expect(deadLetters.count == 1)
        #expect(row.offset == deadLetters.first?.offset)
    }

    @Test("a write of outcomes is all or nothing, and writing it again changes nothing")
    func outcomesAreWrittenAtomicallyAndIdempotently() async throws {
        let environment = try await OutboxTestEnvironment.start("idempotent_write")
        let sql = try await environment.database.connect()
        try await sql.query("SELECT platform.emit('a', 'test.one', '{}'), platform.emit('b', 'test.two', '{}'), platform.emit('c', 'test.three', '{}')")
        let ids = try await environment.outboxRows(sql).map(\.id)
        try await failFirstDeadMark(sql)
        let store = try await OutboxStore(connection: sql, schema: "platform")
        let outcomes = OutboxOutcomes(
            delivered: [OutboxDelivery(eventID: ids[0], topic: "t", partition: 0, offset: 7)],
            failures: [OutboxFailure(eventID: ids[1], previousAttempts: 0, error: "retriable", retryAfterSeconds: 60)],
            deadLetters: [OutboxDeadLetter(
                previousAttempts: 0, reason: "permanent",
                deadLetter: OutboxDelivery(eventID: ids[2], topic: "dlq", partition: 0, offset: 3))])

        await #expect(throws: PostgresError.self) { try await store.record(outcomes) }
        let afterFailure = try await environment.outboxRows(sql)
        #expect(afterFailure.allSatisfy { !$0.processed && !$0.dead && $0.attempts == 0 }, "part of a failed write stayed")

        // The retry, and a repeat as after a commit whose answer was lost.
        try await store.record(outcomes)
        try await store.record(outcomes)
        let rows = try await environment.outboxRows(sql)
        #expect(rows[0].processed && rows[0].offset == 7 && rows[0].attempts == 0)
        #expect(!rows[1].processed && rows[1].attempts == 1 && rows[1].lastError == "retriable")
        #expect(rows[2].dead && rows[2].attempts == 1 && rows[2].offset == 3)
    }

    @Test(
        "a tenant waiting for a retry with 100,000 events behind it: claims return the other tenants' oldest events not in flight, without reading its backlog, with a plan per call or the prepared claim's generic plan",
        arguments: [false, true])
    func claimSkipsAWaitingTenantsBacklog(prepared: Bool) async throws {
        let environment = try await OutboxTestEnvironment.start("claim_skips_backlog")
        let sql = try await environment.database.connect()
        try await insertBacklog(sql, poisonedRows: 100_000, otherTenants: 20, rowsPerOtherTenant: 250)
        if prepared {
            // PostgreSQL may keep planning a prepared statement per call; this makes it use the
            // one plan made without the parameters' values, the plan the relay relies on.
            try await sql.query("SET plan_cache_mode = force_generic_plan")
        }
        let store = try await OutboxStore(connection: sql, schema: "platform", preparesStatements: prepared)
        let others = try await sql.query(
            "SELECT id FROM platform.schema_changes WHERE tenant_key <> 'poisoned' ORDER BY id"
        ).map { try $0.require(Int64.self, column: "id") }
        let inFlight = Array(others.prefix(3_000))

        let before = try await rowsRead(sql)
        let claimed = try await store.claimPending(limit: 1000, shards: Array(0..<16), shardCount: 16, excluding: inFlight)
        let read = try await rowsRead(sql) - before

        #expect(claimed.count == 1000)
        #expect(!claimed.contains { $0.tenantKey == "poisoned" })
        #expect(claimed.map(\.id) == Array(others[3_000..<4_000]), "the oldest claimable events not in flight, in order")
        #expect(read < 25_000, "the claim read \(read) rows: it walked the waiting tenant's backlog")
        if prepared {
            let plans = try await sql.query(
                "SELECT generic_plans FROM pg_catalog.pg_prepared_statements WHERE name = 'outbox_claim'")
            #expect(try plans[0].require(Int.self, column: "generic_plans") == 1)
        }
    }

    @Test("a prepared claim and outcome write planned while the outbox held 5 rows still walk indexes once it holds 50,000")
    func preparedStatementsPlannedOnANearlyEmptyOutboxWalkIndexes() async throws {
        let environment = try await OutboxTestEnvironment.start("prepared_small_plan")
        let sql = try await environment.database.connect()
        try await sql.query("SELECT platform.emit('t' || n, 'test.early', '{}') FROM generate_series(1, 5) AS n")
        let store = try await OutboxStore(connection: sql, schema: "platform", preparesStatements: true)
        // Plan once, now, with the table this small: what PostgreSQL may do at the sixth call.
        try await sql.query("SET plan_cache_mode = force_generic_plan")
        let shards = Array(0..<16)
        func relayEverythingPending() async throws -> Int {
            let claimed = try await store.claimPending(limit: 1000, shards: shards, shardCount: 16)
            try await store.markDelivered(claimed.map { OutboxDelivery(eventID: $0.id, topic: "t", partition: 0, offset: $0.id) })
            return claimed.count
        }
        #expect(try await relayEverythingPending() == 5)

        try await sql.query(
            """
            INSERT INTO platform.schema_changes (event_data, tenant_key, processed, processed_at)
            SELECT jsonb_build_object('event_id', gen_random_uuid(), 'command', 'test.old', 'kind', 'domain'),
                   't' || (g % 100), true, pg_catalog.now()
            FROM generate_series(1, 50000) AS g
            """)
        try await sql.query("SELECT platform.emit('t' || n, 'test.late', '{}') FROM generate_series(1, 3) AS n")
        let before = try await rowsRead(sql)
        #expect(try await relayEverythingPending() == 3)
        let read = try await rowsRead(sql) - before
        #expect(read < 1_000, "the claim and the write read \(read) rows: a plan made for 5 rows scans the table")
    }

    /// The figure for issue 12: one claim with a waiting tenant holding 100,000 pending events
    /// against one with none. A measurement, not a test of timing: it asserts nothing about
    /// time and runs only through `scripts/bench-claim.sh`.
    @Test("measure: claim time with and without a waiting tenant's 100,000-event backlog",
          .enabled(if: ProcessInfo.processInfo.environment["OUTBOX_BRIDGE_MEASURE_CLAIM"] == "1"))
    func measureClaimWithAWaitingBacklog() async throws {
        var stores: [(label: String, store: OutboxStore, environment: OutboxTestEnvironment)] = []
        for (label, poisonedRows) in [("none", 0), ("poisoned", 100_000)] {
            let environment = try await OutboxTestEnvironment.start("claim_measure")
            let sql = try await environment.database.connect()
            try await insertBacklog(sql, poisonedRows: poisonedRows, otherTenants: 20, rowsPerOtherTenant: 100)
            stores.append((label, try await OutboxStore(connection: sql, schema: "platform"), environment))
        }
        // Alternating the two claims spreads the machine's other load over both alike.
        var times: [String: [Duration]] = [:]
        for _ in 0..<60 {
            for (label, store, _) in stores {
                let started = ContinuousClock.now
                let claimed = try await store.claimPending(limit: 1000, shards: Array(0..<16), shardCount: 16)
                times[label, default: []].append(ContinuousClock.now - started)
                #expect(claimed.count == 1000)
            }
        }
        for (_, _, environment) in stores {
            await environment.drop()
        }
        let median = { (label: String) in times[label]!.sorted()[times[label]!.count / 2] }
        let none = median("none"), poisoned = median("poisoned")
        print("claim of 1000 among 20 tenants x 100 events: median \(none) with no waiting tenant, \(poisoned) with a waiting tenant holding 100,000 events: \(String(format: "%.2f", poisoned / none))x")
    }

    /// A tenant whose oldest event waits an hour for a retry, with `poisonedRows - 1` events
    /// behind it, all older than the other tenants' events: the worst case for a claim that
    /// walks pending rows in id order.
    private func insertBacklog(
        _ sql: PostgresConnection, poisonedRows: Int, otherTenants: Int, rowsPerOtherTenant: Int
    ) async throws {
        try await sql.query(
            """
            INSERT INTO platform.schema_changes (event_data, tenant_key, attempts, next_attempt_at)
            SELECT jsonb_build_object('event_id', gen_random_uuid(), 'command', 'test.poisoned', 'kind', 'domain',
                                      'tenant_id', 'poisoned'),
                   'poisoned', CASE WHEN g = 1 THEN 1 ELSE 0 END,
                   CASE WHEN g = 1 THEN pg_catalog.now() + interval '1 hour' END
            FROM generate_series(1, $1::int) AS g
            """, [poisonedRows])
        try await sql.query(
            """
            INSERT INTO platform.schema_changes (event_data, tenant_key)
            SELECT jsonb_build_object('event_id', gen_random_uuid(), 'command', 'test.other', 'kind', 'domain',
                                      'tenant_id', 't' || (g % $1::int)),
                   't' || (g % $1::int)
            FROM generate_series(1, $1::int * $2::int) AS g
            """, [otherTenants, rowsPerOtherTenant])
        try await sql.query("VACUUM ANALYZE platform.schema_changes")
    }

    /// Rows of the outbox table this session's statements have read so far, by index or scan.
    /// PostgreSQL publishes a session's counters when its transaction ends, at most once a
    /// second unless asked to publish the next ones at once.
    private func rowsRead(_ sql: PostgresConnection) async throws -> Int {
        try await sql.query("SELECT pg_catalog.pg_stat_force_next_flush()")
        try await sql.query("SELECT pg_catalog.pg_stat_clear_snapshot()")
        return try await sql.query(
            """
            SELECT coalesce(t.seq_tup_read, 0)
                   + (SELECT coalesce(sum(i.idx_tup_read), 0) FROM pg_catalog.pg_stat_user_indexes i WHERE i.relid = t.relid)
                   AS read
            FROM pg_catalog.pg_stat_user_tables t WHERE t.relid = 'platform.schema_changes'::regclass
            """)[0].require(Int.self, column: "read")
    }

    /// Makes the first update that marks a row dead fail. A sequence counts the tries: unlike
    /// a table, it keeps counting when the failing transaction rolls back.
    private func failFirstDeadMark(_ sql: PostgresConnection) async throws {
        try await sql.execute(script: """
            CREATE SEQUENCE platform.dead_mark_attempts;
            -- The trigger runs as the relay's login, which has only outbox_relay.
            GRANT USAGE ON SEQUENCE platform.dead_mark_attempts TO outbox_relay;
            CREATE FUNCTION platform.fail_first_dead_mark() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF NEW.dead AND NOT OLD.dead AND pg_catalog.nextval('platform.dead_mark_attempts') = 1 THEN
                    RAISE EXCEPTION 'injected: the first write marking a row dead fails';
                END IF;
                RETURN NEW;
            END $$;
            CREATE TRIGGER fail_first_dead_mark BEFORE UPDATE ON platform.schema_changes
                FOR EACH ROW EXECUTE FUNCTION platform.fail_first_dead_mark();
            """)
    }

    /// Runs the relay as `outbox-bridge run` assembles it, handing `body` its producer, so a
    /// test can reach into the producer's librdkafka instance.
    private func withAssembledRelay<T: Sendable>(
        _ configuration: RelayConfiguration, _ body: (KafkaProducer) async throws -> T
    ) async throws -> T {
        let assembly = try await RelayApplication.assemble(
            configuration: configuration, shutdownTimeout: .seconds(10), logger: makeKafkaTestLogger("test.relay"))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await assembly.serviceGroup.run() }
            defer { group.cancelAll() }
            let result: Result<T, any Error>
            do {
                result = .success(try await body(assembly.producer))
            } catch {
                result = .failure(error)
            }
            await assembly.serviceGroup.triggerGracefulShutdown()
            try await group.waitForAll()
            return try result.get()
        }
    }
}
