import Foundation
import Kafka
import Logging
import Operations
import Outbox
import OutboxBridgeCLI
import Postgres
import TestSupport
import Testing

@Suite("Operations: status, delivery audit, replay and retention against real services")
struct OperationsTests {
    /// A relayed outbox: `tenants` tenants x 4 events, all delivered by the real relay.
    private func relayedEnvironment(_ label: String, tenants: Int = 3) async throws -> (OutboxTestEnvironment, PostgresConnection) {
        let environment = try await OutboxTestEnvironment.start(label)
        let sql = try await environment.database.connect()
        try await withRunningRelay(environment.relayConfiguration()) {
            try await sql.query(
                """
                SELECT platform.emit('t' || tenant, 'test.sequence', jsonb_build_object('seq', step))
                FROM generate_series(0, 3) AS step, generate_series(1, $1) AS tenant ORDER BY step, tenant
                """, [tenants])
            try await environment.waitUntilAllDelivered(sql)
        }
        return (environment, sql)
    }

    private func deliveryAudit(of sql: PostgresConnection, broker: KafkaDevelopmentBroker) async throws -> DeliveryAudit {
        let reader = try KafkaRecordReader(bootstrapServers: broker.bootstrapServers, logger: makeKafkaTestLogger("audit"))
        return DeliveryAudit(operations: try await OutboxOperations(connection: sql, schema: "platform"), reader: reader)
    }

    private func runBridge(_ arguments: [String]) async throws -> ToolResult {
        try await runTool(try RelayProcess.executableURL().path, arguments)
    }

    @Test("after a normal run the audit finds every event where its row says; tampering with one offset is reported and exits 1")
    func auditFindsTampering() async throws {
        let (environment, sql) = try await relayedEnvironment("audit")
        let reader = try KafkaRecordReader(bootstrapServers: environment.broker.bootstrapServers, logger: makeKafkaTestLogger("audit"))
        let audit = DeliveryAudit(operations: try await OutboxOperations(connection: sql, schema: "platform"), reader: reader)
        let clean = try await audit.run(from: nil, to: nil, tenant: nil)
        #expect((clean.checked, clean.ok, clean.missing, clean.mismatched) == (12, 12, 0, 0))

        let arguments = ["audit", "--database-url", environment.database.url, "--brokers", environment.broker.bootstrapServers]
        let passing = try await runBridge(arguments)
        #expect(passing.status == 0, "\(passing.errorOutput)")
        #expect(passing.output.contains("checked: 12  ok: 12  missing: 0  mismatched: 0"))
        #expect(passing.errorOutput.contains("audit: checked 12 of 12"))

        // Point one row at its neighbour's record.
        try await sql.query(
            """
            UPDATE platform.schema_changes SET kafka_offset = kafka_offset + 1
            WHERE id = (SELECT min(id) FROM platform.schema_changes WHERE tenant_key = 't1')
            """)
        let tampered = try await audit.run(from: nil, to: nil, tenant: "t1")
        #expect((tampered.checked, tampered.ok, tampered.mismatched) == (4, 3, 1))
        let failing = try await runBridge(arguments + ["--json"])
        #expect(failing.status == 1)
        let report = try JSONSerialization.jsonObject(with: Data(failing.output.utf8)) as? [String: Any]
        #expect(report?["mismatched"] as? Int == 1)
        #expect(report?["checked"] as? Int == 12)
    }

    @Test("records gone from Kafka are reported missing, not mismatched")
    func auditReportsMissing() async throws {
        let (_, sql) = try await relayedEnvironment("audit_missing")
        // A fresh broker: the topic exists but holds none of the recorded offsets.
        let fresh = try KafkaDevelopmentBroker(brokers: 1, logger: makeKafkaTestLogger("fresh"))
        try fresh.createTopic(OutboxTestEnvironment.topic, partitions: 6)
        let reader = try KafkaRecordReader(bootstrapServers: fresh.bootstrapServers, logger: makeKafkaTestLogger("audit"))
        let audit = DeliveryAudit(operations: try await OutboxOperations(connection: sql, schema: "platform"), reader: reader)
        let report = try await audit.run(from: nil, to: nil, tenant: nil)
        #expect((report.checked, report.ok, report.missing, report.mismatched) == (12, 0, 12, 0))
    }

    @Test("one page over several partitions, with gaps between the wanted offsets, finds every row's record")
    func auditSkipsGapsAcrossPartitions() async throws {
        let (environment, sql) = try await relayedEnvironment("audit_gaps", tenants: 8)
        // Every other row goes, so each partition's pass skips records nobody asks for.
        try await sql.query("DELETE FROM platform.schema_changes WHERE id % 2 = 0")
        let rows = try await environment.outboxRows(sql)
        #expect(Set(rows.compactMap(\.partition)).count >= 2, "the page must span several partitions")
        let audit = try await deliveryAudit(of: sql, broker: environment.broker)
        let report = try await audit.run(from: nil, to: nil, tenant: nil)
        #expect((report.checked, report.ok, report.missing, report.mismatched) == (16, 16, 0, 0))
        #expect(report.findings.isEmpty)
    }

    @Test("a row pointed at another existing record, in its own partition or another, is mismatched")
    func auditReportsRowsPointedAtOtherRecords() async throws {
        let (environment, sql) = try await relayedEnvironment("audit_moved", tenants: 8)
        let rows = try await environment.outboxRows(sql)
        let byPartition = Dictionary(grouping: rows, by: { $0.partition ?? -1 })
        // Within a partition: the first row takes its partition's last record, several offsets on.
        let (partition, sameRows) = try #require(byPartition.first { $0.value.count >= 3 })
        let (first, last) = (sameRows[0], try #require(sameRows.last))
        // Across partitions: another partition's first row takes that same partition's first record.
        let other = try #require(byPartition.first { $0.key != partition }?.value.first)
        try await sql.query(
            "UPDATE platform.schema_changes SET kafka_offset = $1 WHERE id = $2", [last.offset, first.id])
        try await sql.query(
            "UPDATE platform.schema_changes SET kafka_partition = $1, kafka_offset = $2 WHERE id = $3",
            [partition, first.offset, other.id])

        let audit = try await deliveryAudit(of: sql, broker: environment.broker)
        let report = try await audit.run(from: nil, to: nil, tenant: nil)
        #expect((report.checked, report.ok, report.missing, report.mismatched) == (32, 30, 0, 2))
        #expect(Set(report.findings.map(\.id)) == [first.id, other.id])
        #expect(report.findings.allSatisfy { $0.problem.contains("the record there is event") })
    }

    @Test("an offset past the partition's end, or no valid offset at all, is missing with its reason")
    func auditReportsOffsetsOutsideThePartition() async throws {
        let (environment, sql) = try await relayedEnvironment("audit_outside")
        let rows = try await environment.outboxRows(sql)
        let (beyond, invalid) = (rows[0], rows[1])
        try await sql.query(
            "UPDATE platform.schema_changes SET kafka_offset = kafka_offset + 1000 WHERE id = $1", [beyond.id])
        // What librdkafka reports for a delivery without an offset (RD_KAFKA_OFFSET_INVALID).
        try await sql.query("UPDATE platform.schema_changes SET kafka_offset = -1001 WHERE id = $1", [invalid.id])

        let audit = try await deliveryAudit(of: sql, broker: environment.broker)
        let report = try await audit.run(from: nil, to: nil, tenant: nil)
        #expect((report.checked, report.ok, report.missing, report.mismatched) == (12, 10, 2, 0))
        let problems = Dictionary(uniqueKeysWithValues: report.findings.map { ($0.id, $0.problem) })
        #expect(problems[beyond.id]?.contains("beyond the partition's end") == true, "\(problems)")
        #expect(problems[invalid.id]?.contains("not a valid offset") == true, "\(problems)")
    }

    @Test("a record Kafka's retention removed is expired and fails only with --fail-on-expired; an offset past the end always fails")
    func auditExpiredAndMissingExitCodes() async throws {
        let (environment, sql) = try await relayedEnvironment("audit_expired")
        let rows = try await environment.outboxRows(sql)
        let partition = try #require(rows.first { $0.tenantKey == "t1" }?.partition)
        let expiring = rows.filter { $0.partition == partition }
        // The mock broker keeps about 5 MiB per partition and drops its oldest record batches
        // beyond that, as a broker's retention does: 7 records of 900 kB, each its own batch,
        // push every relayed record of t1's partition out.
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: environment.broker.bootstrapServers),
            logger: makeKafkaTestLogger("filler"))
        for _ in 0..<7 {
            let report = try await producer.send(
                KafkaRecord(topic: OutboxTestEnvironment.topic, key: "t1", value: [UInt8](repeating: 0x2E, count: 900_000)))
            #expect(report.partition == partition)
        }
        let reader = try KafkaRecordReader(bootstrapServers: environment.broker.bootstrapServers, logger: makeKafkaTestLogger("audit"))
        let logStart = try await reader.watermarks(topic: OutboxTestEnvironment.topic, partition: partition).low
        try #require(expiring.allSatisfy { ($0.offset ?? .max) < logStart }, "the partition starts at \(logStart)")

        let arguments = ["audit", "--database-url", environment.database.url, "--brokers", environment.broker.bootstrapServers]
        let lenient = try await runBridge(arguments)
        #expect(lenient.status == 0, "\(lenient.output)\(lenient.errorOutput)")
        #expect(lenient.output.contains("checked: 12  ok: \(12 - expiring.count)  missing: 0  mismatched: 0  expired: \(expiring.count)"))
        #expect(lenient.output.contains("expired: outbox id \(expiring[0].id) "))
        let strict = try await runBridge(arguments + ["--fail-on-expired"])
        #expect(strict.status == 1, "\(strict.output)\(strict.errorOutput)")

        // A row in another partition claims an offset its partition never reached.
        let beyond = try #require(rows.first { $0.partition != partition })
        try await sql.query("UPDATE platform.schema_changes SET kafka_offset = kafka_offset + 1000 WHERE id = $1", [beyond.id])
        let failing = try await runBridge(arguments + ["--json"])
        #expect(failing.status == 1, "\(failing.output)\(failing.errorOutput)")
        let report = try #require(try JSONSerialization.jsonObject(with: Data(failing.output.utf8)) as? [String: Any])
        #expect(report["expired"] as? Int == expiring.count)
        #expect(report["missing"] as? Int == 1)
        let kinds = (report["findings"] as? [[String: Any]] ?? []).reduce(into: [Int64: String]()) { kinds, finding in
            if let id = finding["id"] as? Int64 ?? (finding["id"] as? Int).map(Int64.init) { kinds[id] = finding["kind"] as? String }
        }
        #expect(kinds[beyond.id] == "missing")
        #expect(expiring.allSatisfy { kinds[$0.id] == "expired" }, "\(kinds)")
        await environment.drop()
    }

    @Test("an audit over several pages checks every row exactly once and reports progress per page")
    func auditCountsEveryRowOnceAcrossPages() async throws {
        let (environment, sql) = try await relayedEnvironment("audit_pages")
        let audit = try await deliveryAudit(of: sql, broker: environment.broker)
        var progress: [Int] = []
        let clean = try await audit.run(from: nil, to: nil, tenant: nil, pageSize: 5) { checked, total in
            #expect(total == 12)
            progress.append(checked)
        }
        #expect((clean.checked, clean.ok, clean.missing, clean.mismatched) == (12, 12, 0, 0))
        #expect(progress == [5, 10, 12])

        // With every row missing, the findings name each row once, in id order.
        try await sql.query("UPDATE platform.schema_changes SET kafka_offset = kafka_offset + 1000")
        let missing = try await audit.run(from: nil, to: nil, tenant: nil, pageSize: 5)
        #expect((missing.checked, missing.ok, missing.missing) == (12, 0, 12))
        let ids = try await environment.outboxRows(sql).map(\.id)
        #expect(missing.findings.map(\.id) == ids)
    }

    @Test("replay republishes exactly the selected events and keeps their earlier positions")
    func replaySelected() async throws {
        let (environment, sql) = try await relayedEnvironment("replay")
        let before = try await environment.outboxRows(sql)
        let operations = try await OutboxOperations(connection: sql, schema: "platform")
        #expect(try await operations.replayCount(.tenant("t2")) == 4)

        let declined = try await runBridge(["replay", "--database-url", environment.database.url, "--tenant", "t2"])
        #expect(declined.status != 0)
        #expect(try await environment.outboxRows(sql).allSatisfy(\.processed), "a declined replay changed rows")

        let accepted = try await runBridge(["replay", "--database-url", environment.database.url, "--tenant", "t2", "--yes"])
        #expect(accepted.status == 0, "\(accepted.errorOutput)")
        #expect(accepted.output.contains("4 events are pending again"))
        #expect(try await environment.outboxRows(sql).filter { !$0.processed }.map(\.tenantKey) == Array(repeating: "t2", count: 4))
        try await withRunningRelay(environment.relayConfiguration()) {
            try await environment.waitUntilAllDelivered(sql)
        }

        let records = try await environment.kafka.consume(topic: OutboxTestEnvironment.topic)
        let copies = Dictionary(grouping: records, by: { $0.header("event_id") ?? "" }).mapValues(\.count)
        for row in before {
            #expect(copies[row.eventID] == (row.tenantKey == "t2" ? 2 : 1), "event of \(row.tenantKey ?? "")")
        }
        let history = try await sql.query(
            "SELECT outbox_id, kafka_partition, kafka_offset FROM platform.delivery_history ORDER BY outbox_id")
        let replayedRows = before.filter { $0.tenantKey == "t2" }
        #expect(history.map { $0["outbox_id"] } == replayedRows.map { String($0.id) })
        #expect(history.map { $0["kafka_offset"] } == replayedRows.map { $0.offset.map(String.init) })
        let after = try await environment.outboxRows(sql).filter { $0.tenantKey == "t2" }
        #expect(zip(after, replayedRows).allSatisfy { $0.offset != $1.offset })
    }

    @Test("prune deletes only processed events older than the age; dead and pending ones stay")
    func pruneOnlyOldProcessed() async throws {
        let (environment, sql) = try await relayedEnvironment("prune")
        try await sql.query("SELECT platform.emit('t9', 'test.pending', '{}')")
        try await sql.execute(script: """
            UPDATE platform.schema_changes SET processed_at = now() - interval '10 days' WHERE tenant_key IN ('t1', 't2');
            UPDATE platform.schema_changes SET processed = false, dead = true, dead_reason = 'test',
                   processed_at = now() - interval '10 days' WHERE id = (SELECT min(id) FROM platform.schema_changes WHERE tenant_key = 't1');
            """)
        let result = try await runTool(
            try RelayProcess.executableURL().path, ["prune", "--database-url", environment.database.url, "--older-than", "7d", "--batch-size", "2", "--yes"])
        #expect(result.status == 0, "\(result.errorOutput)")
        #expect(result.output.contains("deleted 7 processed events"))
        let left = try await environment.outboxRows(sql)
        #expect(left.filter(\.processed).map(\.tenantKey) == Array(repeating: "t3", count: 4))
        #expect(left.filter(\.dead).count == 1)
        #expect(left.filter { !$0.processed && !$0.dead }.map(\.tenantKey) == ["t9"])

        let bad = try await runBridge(["prune", "--database-url", environment.database.url, "--older-than", "soon"])
        #expect(bad.status != 0)
        #expect(bad.errorOutput.contains("--older-than"))
    }

    @Test("retention on an outbox installed before migration 12 says to run `outbox-bridge install`")
    func pruneWithoutRetentionFunctionNamesTheFix() async throws {
        let environment = try await OutboxTestEnvironment.start("prune_unmigrated")
        let sql = try await environment.database.connect()
        try await sql.execute(script: """
            DROP FUNCTION platform.prune_processed(interval, int);
            DELETE FROM platform.schema_migrations WHERE version = 12;
            """)
        let operations = try await OutboxOperations(connection: sql, schema: "platform")
        let error = await #expect(throws: PostgresError.self) { try await operations.prune(olderThan: .seconds(60)) }
        #expect(error?.description.contains("run `outbox-bridge install`") == true, "\(String(describing: error))")
        await environment.drop()
    }

    @Test("the running bridge deletes processed events past the retention age, and only those")
    func runningBridgeRetention() async throws {
        let (environment, sql) = try await relayedEnvironment("retention")
        try await sql.execute(script: """
            UPDATE platform.schema_changes SET processed_at = now() - interval '2 hours' WHERE tenant_key = 't1';
            UPDATE platform.schema_changes SET processed = false, dead = true, dead_reason = 'test'
            WHERE tenant_key = 't2';
            UPDATE platform.schema_changes SET processed_at = now() - interval '2 hours' WHERE tenant_key = 't2';
            """)
        var retention = RetentionPolicy()
        retention.keepProcessed = .seconds(3600)
        retention.interval = .milliseconds(100)
        try await withRunningRelay(environment.relayConfiguration(), retention: retention) {
            try await waitUntil("t1's old processed events are deleted") {
                try await environment.outboxRows(sql).allSatisfy { $0.tenantKey != "t1" }
            }
        }
        let left = try await environment.outboxRows(sql)
        #expect(left.filter { $0.tenantKey == "t2" }.allSatisfy { $0.dead })
        #expect(left.filter { $0.tenantKey == "t2" }.count == 4)
        #expect(left.filter { $0.tenantKey == "t3" }.count == 4)
    }

    @Test("status reports the backlog and each tenant's last position, also as JSON")
    func status() async throws {
        let (environment, sql) = try await relayedEnvironment("status")
        try await sql.query("SELECT platform.emit('t9', 'test.pending', '{}')")
        let result = try await runBridge(["status", "--database-url", environment.database.url, "--json"])
        #expect(result.status == 0, "\(result.errorOutput)")
        let status = try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any]
        #expect(status?["pending"] as? Int == 1)
        #expect(status?["processed"] as? Int == 12)
        #expect(status?["dead"] as? Int == 0)
        #expect((status?["oldest_pending_age_seconds"] as? Double).map { $0 >= 0 } == true)
        let tenants = status?["tenants"] as? [[String: Any]]
        #expect(tenants?.compactMap { $0["tenant"] as? String } == ["t1", "t2", "t3"])
        let rows = try await environment.outboxRows(sql)
        let lastOfT1 = rows.filter { $0.tenantKey == "t1" }.last
        #expect(tenants?.first?["offset"] as? Int64 == lastOfT1?.offset || tenants?.first?["offset"] as? Int == lastOfT1?.offset.map(Int.init))
    }

    @Test("status --json prints the same keys for an empty outbox and a busy one, with null where a value does not apply")
    func statusKeysAreStable() async throws {
        let environment = try await OutboxTestEnvironment.start("status_keys")
        let sql = try await environment.database.connect()
        let arguments = ["status", "--database-url", environment.database.url, "--json"]
        func status() async throws -> [String: Any] {
            let result = try await runBridge(arguments)
            #expect(result.status == 0, "\(result.errorOutput)")
            return try #require(try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as? [String: Any])
        }
        let keys: Set = [
            "pending", "oldest_pending_age_seconds", "dead", "processed", "tenants", "backlog", "retrying", "dead_letters",
            "recent_deliveries", "delivery_rate", "instances", "unowned_shards", "readiness", "in_flight", "generated_at",
        ]

        let empty = try await status()
        #expect(Set(empty.keys) == keys)
        #expect(empty["oldest_pending_age_seconds"] is NSNull)

        try await withRunningRelay(environment.relayConfiguration()) {
            try await sql.query("SELECT platform.emit('t' || n, 'test.event', '{}') FROM generate_series(1, 3) AS n")
            try await environment.waitUntilAllDelivered(sql)
        }
        try await sql.query("SELECT platform.emit('t9', 'test.pending', '{}')")
        let busy = try await status()
        #expect(Set(busy.keys) == keys)
        #expect((busy["oldest_pending_age_seconds"] as? Double).map { $0 >= 0 } == true)
        let tenants = try #require(busy["tenants"] as? [[String: Any]])
        #expect(tenants.count == 3)
        #expect(tenants.allSatisfy { Set($0.keys) == ["tenant", "topic", "partition", "offset", "delivered_at"] })
        await environment.drop()
    }
}
