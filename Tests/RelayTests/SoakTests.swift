import Foundation
import Kafka
import Postgres
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The fault-injection soak: mixed DDL and `platform.emit` events from 100 tenants, written by
/// three connections, while a scheduler picks faults at random (from a seeded generator whose
/// seed is printed, so a failing run can be repeated with `SOAK_SEED`): `kill -9` and SIGTERM of
/// the real `outbox-bridge run` process (then a restart), `pg_terminate_backend` of its
/// sessions, the broker down for 1–3 s, retriable produce errors, added broker latency, a second
/// instance joining and leaving, an `sdk-sync` consumer killed and restarted, the bridge's
/// PostgreSQL connections blackholed for a spell (a TCP proxy stops forwarding without closing),
/// and every backend of the bridge frozen with SIGSTOP for a spell. Afterwards the
/// faults stop, the bridge drains, and kcat (an independent client) and `outbox-bridge audit`
/// prove nothing was lost, tenant order held, and every duplicate is a republished outbox event.
///
/// `SOAK_SECONDS` sets how long faults are injected (default 60); `scripts/soak.sh` runs the
/// long version.
@Suite("fault-injection soak")
struct SoakTests {
    @Test("mixed DDL from 100 tenants under random faults: nothing lost, tenant order kept, duplicates same-id, audit clean")
    func soak() async throws {
        let seconds = Int(ProcessInfo.processInfo.environment["SOAK_SECONDS"] ?? "") ?? 60
        let seed = UInt64(ProcessInfo.processInfo.environment["SOAK_SEED"] ?? "") ?? UInt64.random(in: 0...UInt64.max)
        print("soak: seed \(seed) (repeat with SOAK_SEED=\(seed)), faults for \(seconds) s")
        var random = SplitMix64(seed: seed)

        // A cluster of its own, so a fast restart of PostgreSQL breaks no other test.
        let cluster = try await PrivatePostgresCluster.start()
        do {
            // librdkafka's mock keeps at most 5 MiB per partition and drops older records, which
            // would look like loss; enough partitions keep a long soak's records (about 1 KiB
            // each, about 70 a second) under that. The check below proves none were dropped.
            let environment = try await OutboxTestEnvironment.start(
                "soak", partitions: max(6, seconds / 15), clusterURL: cluster.url)
            try await runSoak(environment, cluster: cluster, seconds: seconds, seed: seed, random: &random)
        } catch {
            await cluster.stop()
            throw error
        }
        await cluster.stop()
    }
}

private let tenantCount = 100
private let writerCount = 3
/// The relay's sessions carry this application_name, so only they are terminated.
private let relayApplicationName = "soak-relay"

private let soakRelayEnvironment = [
    // Short bounds, so a blackholed or frozen session is abandoned within the spell.
    "DATABASE_CONNECT_TIMEOUT_SECONDS": "5",
    "DATABASE_STATEMENT_TIMEOUT_SECONDS": "3",
    "DATABASE_QUERY_TIMEOUT_SECONDS": "4",
    "RELAY_LEASE_SECONDS": "2",
    "RELAY_RETRY_BACKOFF_SECONDS": "0.2",
    "RELAY_MAX_RETRY_BACKOFF_SECONDS": "1",
]

private enum Fault: String, CaseIterable {
    case killRelay = "kill -9 bridge"
    case stopRelay = "SIGTERM bridge"
    case terminateSessions = "pg_terminate_backend"
    case brokerDown = "broker down"
    case produceErrors = "produce errors"
    case latency = "broker latency"
    case secondInstance = "second instance join/leave"
    case killConsumer = "kill -9 sdk-sync"
    case restartPostgres = "PostgreSQL fast restart"
    case blackholeSessions = "blackholed PostgreSQL connections"
    case freezeBackends = "frozen backends"
}

private func runSoak(
    _ environment: OutboxTestEnvironment, cluster: PrivatePostgresCluster, seconds: Int, seed: UInt64,
    random: inout SplitMix64
) async throws {
    var sql = try await environment.database.connect()
    // The bridge reaches PostgreSQL, as its least-privilege login, through a proxy the soak can
    // blackhole.
    let proxy = try TCPProxy(targetPort: cluster.port)
    defer { proxy.stop() }
    var relayComponents = URLComponents(string: environment.relayURL)!
    relayComponents.port = proxy.port
    let relayURL = relayComponents.string! + "?application_name=\(relayApplicationName)"
    let relayArguments = [
        "run", "--database-url", relayURL, "--listen-url", relayURL,
        "--brokers", environment.broker.bootstrapServers, "--poll-interval", "0.2", "--log-level", "info",
        "--batch-size", "50",
        // librdkafka's mock checks an idempotent producer's sequence numbers only for transactional
        // producers, so after an injected produce error it writes the pipelined requests behind
        // the failed one, which a real broker refuses (OUT_OF_ORDER_SEQUENCE_NUMBER) until the
        // failed one is retried. One request in flight gives the broker's ordering here; what
        // the relay does when a broker breaks it is RelayFaultTests.ackWithoutOffsetIsRepublished.
        "--kafka-property", "max.in.flight.requests.per.connection=1",
    ]
    var launches = 0
    func launchRelay() throws -> RelayProcess {
        launches += 1
        return try RelayProcess.launch(relayArguments, environment: soakRelayEnvironment, label: "soak\(launches)")
    }
    let consumerOutput = FileManager.default.temporaryDirectory.appendingPathComponent("soak-sdk-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: consumerOutput) }
    func launchConsumer() throws -> RelayProcess {
        try RelayProcess.launch(
            ["sdk-sync", "--brokers", environment.broker.bootstrapServers, "--out", consumerOutput.path,
             "--group", "soak-sdk-sync", "--log-level", "warning"],
            label: "soak-sdk")
    }

    var primary = try launchRelay()
    var secondary: RelayProcess?
    var consumer = try launchConsumer()
    var retired: [RelayProcess] = []
    defer {
        primary.stop()
        secondary?.stop()
        consumer.stop()
        for process in retired { process.stop() }
    }
    try await primary.waitForStandardError(containing: "relay started")

    let writers = try await (0..<writerCount).asyncMap { index in
        try await SoakWriter.start(
            environment.database.url, index: index, seed: seed &+ UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15)
    }

    var injected: [Fault: Int] = [:]
    var unexpectedExits: [String] = []
    var failedStops: [String] = []
    let clock = ContinuousClock()
    let deadline = clock.now + .seconds(seconds)
    while clock.now < deadline {
        try await Task.sleep(for: .milliseconds(Int.random(in: 800...2500, using: &random)))
        // A bridge or consumer that died without being told to is a failure in itself.
        if !primary.isRunning {
            unexpectedExits.append("bridge exited \(primary.exitStatus ?? -1): \(primary.standardError.suffix(1500))")
            retired.append(primary)
            primary = try launchRelay()
        }
        if let running = secondary, !running.isRunning {
            unexpectedExits.append("second bridge exited \(running.exitStatus ?? -1): \(running.standardError.suffix(1500))")
            retired.append(running)
            secondary = nil
        }
        if !consumer.isRunning {
            unexpectedExits.append("sdk-sync exited \(consumer.exitStatus ?? -1): \(consumer.standardError.suffix(1500))")
            retired.append(consumer)
            consumer = try launchConsumer()
        }

        let fault = Fault.allCases.randomElement(using: &random)!
        injected[fault, default: 0] += 1
        switch fault {
        case .killRelay, .stopRelay:
            // Either instance, when two run.
            let victimIsSecond = secondary != nil && Bool.random(using: &random)
            let victim = victimIsSecond ? secondary! : primary
            let signal = fault == .killRelay ? SIGKILL : SIGTERM
            victim.kill(signal)
            let status = try await victim.waitForExit(timeout: .seconds(20))
            let expected = fault == .killRelay ? 128 + SIGKILL : 0
            if status != expected {
                failedStops.append("\(fault.rawValue): exit \(status), expected \(expected): \(victim.standardError.suffix(1500))")
            }
            retired.append(victim)
            if victimIsSecond {
                secondary = nil
            } else {
                try await Task.sleep(for: .milliseconds(Int.random(in: 0...1000, using: &random)))
                primary = try launchRelay()
            }
        case .terminateSessions:
            _ = try await sql.query(
                """
                SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(pid)) AS terminated
                FROM pg_catalog.pg_stat_activity
                WHERE datname = pg_catalog.current_database() AND application_name = $1
                """, [relayApplicationName])
        case .brokerDown:
            try environment.broker.setBrokerDown(1)
            try await Task.sleep(for: .milliseconds(Int.random(in: 1000...3000, using: &random)))
            try environment.broker.setBrokerUp(1)
        case .produceErrors:
            environment.broker.pushRequestErrors(
                apiKey: .produce,
                errors: Array(repeating: .notEnoughReplicas, count: Int.random(in: 1...6, using: &random)))
        case .latency:
            try environment.broker.setRoundTripTime(broker: 1, milliseconds: Int32.random(in: 50...400, using: &random))
            try await Task.sleep(for: .milliseconds(Int.random(in: 2000...5000, using: &random)))
            try environment.broker.setRoundTripTime(broker: 1, milliseconds: 0)
        case .secondInstance:
            if let running = secondary {
                running.kill(SIGTERM)
                let status = try await running.waitForExit(timeout: .seconds(20))
                if status != 0 {
                    failedStops.append("second instance leaving: exit \(status): \(running.standardError.suffix(1500))")
                }
                retired.append(running)
                secondary = nil
            } else {
                secondary = try launchRelay()
            }
        case .restartPostgres:
            try await cluster.restartFast()
            sql = try await environment.database.connect()
        case .blackholeSessions:
            // Shorter or longer than the bridge's 4 s deadline: a slow network, or sessions to
            // abandon. Their statements arrive late, if at all.
            proxy.blackhole(proxy.openConnections)
            try await Task.sleep(for: .milliseconds(Int.random(in: 1000...8000, using: &random)))
            proxy.restore()
        case .freezeBackends:
            let frozen = try await sql.query(
                """
                SELECT pid FROM pg_catalog.pg_stat_activity
                WHERE datname = pg_catalog.current_database() AND application_name = $1
                """, [relayApplicationName]
            ).map { row throws(PostgresError) in try row.require(Int32.self, column: "pid") }
            for pid in frozen { kill(pid, SIGSTOP) }
            defer { for pid in frozen { kill(pid, SIGCONT) } }
            try await Task.sleep(for: .milliseconds(Int.random(in: 1000...8000, using: &random)))
        case .killConsumer:
            consumer.kill(SIGKILL)
            _ = try await consumer.waitForExit(timeout: .seconds(10))
            retired.append(consumer)
            consumer = try launchConsumer()
        }
    }

    // Faults off; writers stop; the bridge drains.
    try environment.broker.setBrokerUp(1)
    try environment.broker.setRoundTripTime(broker: 1, milliseconds: 0)
    environment.broker.clearRequestErrors(apiKey: .produce)
    var written: [WriterResult] = []
    for writer in writers { written.append(try await writer.stop()) }
    if !primary.isRunning {
        unexpectedExits.append("bridge exited \(primary.exitStatus ?? -1) before the drain: \(primary.standardError.suffix(1500))")
        retired.append(primary)
        primary = try launchRelay()
    }
    sql = try await environment.database.connect()
    let drainStarted = clock.now
    try await environment.waitUntilAllDelivered(sql, timeout: .seconds(120))
    let drain = clock.now - drainStarted
    for process in [primary] + (secondary.map { [$0] } ?? []) {
        process.kill(SIGTERM)
        let status = try await process.waitForExit(timeout: .seconds(20))
        if status != 0 { failedStops.append("final SIGTERM: exit \(status): \(process.standardError.suffix(1500))") }
    }
    #expect(consumer.isRunning, "sdk-sync is not running at the end: \(consumer.standardError.suffix(1500))")

    // What was committed, per tenant in commit order.
    var committedByTenant: [String: [String]] = [:]
    var committed = 0
    for result in written {
        for event in result.events {
            committedByTenant[event.tenant, default: []].append(event.eventID)
            committed += 1
        }
    }
    let committedIDs = Set(written.flatMap { $0.events.map(\.eventID) })

    // What the outbox and Kafka hold.
    let checkStarted = clock.now
    let rows = try await environment.outboxRows(sql)
    let rowIDs = Set(rows.map(\.eventID))
    let processedRows = rows.filter { $0.processed && !$0.dead }.count
    let records = try await environment.kafka.consume(topic: OutboxTestEnvironment.topic)
    struct Content: Hashable {
        let key: String?
        let payload: String?
    }
    var contentByID: [String: Set<Content>] = [:]
    var missingHeader = 0
    for record in records {
        guard let eventID = record.header("event_id") else {
            missingHeader += 1
            continue
        }
        contentByID[eventID, default: []].insert(Content(key: record.key, payload: record.payload))
    }
    let lost = committedIDs.filter { contentByID[$0] == nil }
    let delivered = committedIDs.count - lost.count
    let phantoms = contentByID.keys.filter { !rowIDs.contains($0) }
    let conflicting = contentByID.filter { $0.value.count > 1 }
    let duplicates = records.count - missingHeader - contentByID.count

    // Order: per tenant, event ids by first occurrence in Kafka against commit order.
    var outOfOrder = 0
    var orderProblems: [String] = []
    let recordsByKey = Dictionary(grouping: records, by: { $0.key ?? "" })
    for (tenant, events) in committedByTenant where !tenant.isEmpty {
        let position = Dictionary(uniqueKeysWithValues: events.enumerated().map { ($0.element, $0.offset) })
        let tenantRecords = recordsByKey[tenant] ?? []
        if Set(tenantRecords.map(\.partition)).count > 1 {
            orderProblems.append("tenant \(tenant) spans partitions \(Set(tenantRecords.map(\.partition)).sorted())")
        }
        var seen = Set<String>()
        var previous = -1
        for record in tenantRecords.sorted(by: { ($0.partition, $0.offset) < ($1.partition, $1.offset) }) {
            guard let eventID = record.header("event_id"), seen.insert(eventID).inserted,
                  let index = position[eventID] else { continue }
            if index < previous {
                outOfOrder += 1
                if orderProblems.count < 5 {
                    let row = rows.first { $0.eventID == eventID }
                    orderProblems.append(
                        "tenant \(tenant): event \(index) (outbox id \(row?.id ?? -1), \(row?.attempts ?? -1) failed attempts, "
                        + "last error \(row?.lastError ?? "none")) first seen after event \(previous) at offset \(record.offset)")
                }
            }
            previous = max(previous, index)
        }
    }

    let kafkaCheck = clock.now - checkStarted
    // The bridge's own audit, as an operator runs it.
    let auditStarted = clock.now
    let audit = try await runTool(
        try RelayProcess.executableURL().path,
        ["audit", "--database-url", environment.database.url, "--brokers", environment.broker.bootstrapServers, "--json"])
    let report = try? JSONDecoder().decode(AuditReport.self, from: audit.outputData)
    let auditTime = clock.now - auditStarted

    let faultSummary = Fault.allCases.map { "\($0.rawValue) \(injected[$0] ?? 0)" }.joined(separator: ", ")
    let transactions = written.reduce(0) { $0 + $1.transactions }
    let ddlEvents = rows.count - written.reduce(0) { $0 + $1.emitted }
    print("""
        soak: seed \(seed), \(seconds) s of faults (\(injected.values.reduce(0, +)) injected: \(faultSummary)); \
        \(launches) bridge launches; drained in \(drain); kcat check \(kafkaCheck), audit \(auditTime)
        soak: \(transactions) transactions from \(writerCount) writers \
        (\(written.reduce(0) { $0 + $1.interrupted }) cut by restarts) over \(committedByTenant.count) tenant keys; \
        committed \(committed) events (\(ddlEvents) DDL, \(rows.count - ddlEvents) emitted), outbox rows \(rows.count), \
        processed \(processedRows), \
        \(rows.filter { $0.processed && ($0.offset ?? -1) < 0 }.count) of them without a valid offset
        soak: delivered \(delivered), lost \(lost.count), out of order \(outOfOrder), duplicates \(duplicates) \
        (\(records.count) records; \(phantoms.count) without an outbox row, \(conflicting.count) ids with differing content)
        soak: audit exit \(audit.status): checked \(report?.checked ?? -1), ok \(report?.ok ?? -1), \
        missing \(report?.missing ?? -1), mismatched \(report?.mismatched ?? -1)
        """)

    #expect(unexpectedExits.isEmpty, "processes exited on their own: \(unexpectedExits)")
    #expect(failedStops.isEmpty, "stops with an unexpected status: \(failedStops)")
    #expect(written.allSatisfy { $0.failures == 0 }, "writer transactions failed: \(written.map(\.lastFailure))")
    #expect(committed > 0)
    #expect(committedIDs.count == committed, "an event id was committed twice")
    #expect(rowIDs == committedIDs, "\(rows.count) outbox rows for \(committed) committed events")
    #expect(processedRows == rows.count, "\(rows.count - processedRows) rows not processed or dead")
    let lostRows = rows.filter { lost.contains($0.eventID) }.map {
        "outbox id \($0.id) tenant \($0.tenantKey ?? "-") recorded at \($0.partition.map(String.init) ?? "-")/\($0.offset.map(String.init) ?? "-") after \($0.attempts) attempts"
    }
    #expect(lost.isEmpty, "\(lost.count) events lost: \(lostRows.prefix(10))")
    // The ack's position is what a row records: never librdkafka's "no offset" (-1001).
    let unpositioned = rows.filter { $0.processed && ($0.offset ?? -1) < 0 }
    #expect(unpositioned.isEmpty, "\(unpositioned.count) rows marked processed without a valid offset: \(unpositioned.prefix(5).map { "id \($0.id) offset \($0.offset.map(String.init) ?? "nil")" })")
    #expect(outOfOrder == 0 && orderProblems.isEmpty, "order: \(orderProblems)")
    // A partition whose first record is not at offset 0 lost records to the mock's size limit.
    let trimmed = Dictionary(grouping: records, by: \.partition).compactMapValues { $0.map(\.offset).min() }.filter { $0.value > 0 }
    #expect(trimmed.isEmpty, "the mock broker dropped old records (first offset by partition: \(trimmed)); give the soak more partitions")
    #expect(missingHeader == 0, "\(missingHeader) records without an event_id header")
    #expect(phantoms.isEmpty, "\(phantoms.count) records whose event id is no outbox row")
    #expect(conflicting.isEmpty, "event ids published with differing key or payload: \(conflicting.prefix(2))")
    #expect(audit.status == 0, "audit exited \(audit.status): \(audit.errorOutput.suffix(2000))")
    let audited = try #require(report, "audit --json printed no report: \(audit.output.prefix(2000))")
    #expect(audited.mismatched == 0 && audited.missing == 0, "audit: \(audit.output.prefix(4000))")
    #expect(audited.checked == processedRows, "audit checked \(audited.checked) of \(processedRows) processed rows")
}

private struct AuditReport: Decodable {
    let checked: Int
    let ok: Int
    let missing: Int
    let mismatched: Int
}

// MARK: - Writers

private struct CommittedEvent: Sendable {
    let tenant: String
    let eventID: String
}

private struct WriterResult: Sendable {
    var events: [CommittedEvent] = []
    var transactions = 0
    var emitted = 0
    var failures = 0
    var interrupted = 0
    var lastFailure: String?
}

/// One writer connection issuing a stream of small transactions for its own tenants
/// (`n % writerCount == index`): CREATE SCHEMA and TABLE, ALTER TABLE, COMMENT, or
/// `platform.emit`, each recording the event ids it wrote (rows of its own transaction) once
/// the commit succeeded. A tenant has one writer, so its commit order is this writer's order.
private final class SoakWriter: Sendable {
    private final class Flag: Sendable {
        let raised = Atomic<Bool>(false)
    }

    private let stopping = Flag()
    private let task: Task<WriterResult, any Error>

    static func start(_ url: String, index: Int, seed: UInt64) async throws -> SoakWriter {
        SoakWriter(url: url, connection: try await PostgresConnection.connect(url), index: index, seed: seed)
    }

    private init(url: String, connection first: PostgresConnection, index: Int, seed: UInt64) {
        let stopping = self.stopping
        task = Task {
            var random = SplitMix64(seed: seed)
            let tenants = Array(stride(from: index + 1, through: tenantCount, by: writerCount))
            var tables: [Int: Int] = [:]
            var columns: [Int: Int] = [:]
            var emitted: [Int: Int] = [:]
            var result = WriterResult()
            var current: PostgresConnection? = first
            while !stopping.raised.load(ordering: .relaxed) {
                guard let connection = current else {
                    // PostgreSQL is restarting: try again shortly.
                    current = try? await PostgresConnection.connect(url)
                    if current == nil { try await Task.sleep(for: .milliseconds(100)) }
                    continue
                }
                let tenant = tenants.randomElement(using: &random)!
                let schema = "tenant_\(tenant)"
                let tableCount = tables[tenant]
                let statement: String
                var isEmit = false
                var emitCount = 0
                switch (tableCount, Int.random(in: 0..<10, using: &random)) {
                case (nil, _):
                    statement = "CREATE SCHEMA \(schema); CREATE TABLE \(schema).t0 (id bigint PRIMARY KEY, name text)"
                case let (count?, 0...1):
                    statement = "CREATE TABLE \(schema).t\(count) (id bigint PRIMARY KEY, created timestamptz)"
                case let (count?, 2...3):
                    let column = columns[tenant, default: 0]
                    statement = "ALTER TABLE \(schema).t\(Int.random(in: 0..<count, using: &random)) ADD COLUMN c\(column) integer"
                case let (count?, 4):
                    statement = "COMMENT ON TABLE \(schema).t\(Int.random(in: 0..<count, using: &random)) IS 'soak \(result.transactions)'"
                default:
                    emitCount = Int.random(in: 1...3, using: &random)
                    let first = emitted[tenant, default: 0]
                    statement = """
                        SELECT platform.emit('\(tenant)', 'soak.event', jsonb_build_object('seq', \(first) + step))
                        FROM generate_series(0, \(emitCount - 1)) AS step ORDER BY step
                        """
                    isEmit = true
                }
                var events: [CommittedEvent] = []
                var committed = false
                do {
                    try await connection.query("BEGIN")
                    try await connection.execute(script: statement)
                    let rows = try await connection.query(
                        """
                        SELECT coalesce(tenant_key, '') AS tenant, event_data->>'event_id' AS event_id
                        FROM platform.schema_changes WHERE xmin = pg_catalog.pg_current_xact_id()::xid ORDER BY id
                        """)
                    events = try rows.map { row throws(PostgresError) in
                        CommittedEvent(
                            tenant: try row.require(String.self, column: "tenant"),
                            eventID: try row.require(String.self, column: "event_id"))
                    }
                    try await connection.query("COMMIT")
                    committed = true
                } catch {
                    if (try? await connection.query("ROLLBACK")) != nil {
                        // The session is fine, so the statement itself failed.
                        result.failures += 1
                        result.lastFailure = "\(statement): \(error)"
                    } else {
                        // The session was cut (a restart): whether a COMMIT in flight took effect
                        // is what the outbox says once PostgreSQL is back.
                        result.interrupted += 1
                        current = nil
                        if let probe = events.first {
                            committed = try await Self.wasCommitted(probe.eventID, url: url)
                        }
                    }
                }
                if committed {
                    result.events += events
                    result.transactions += 1
                    if isEmit {
                        emitted[tenant, default: 0] += emitCount
                        result.emitted += events.count
                    } else if tableCount == nil {
                        tables[tenant] = 1
                    } else if statement.hasPrefix("CREATE TABLE") {
                        tables[tenant, default: 1] += 1
                    } else if statement.hasPrefix("ALTER TABLE") {
                        columns[tenant, default: 0] += 1
                    }
                }
                // Pacing: a steady stream the 2-core test machines keep up with.
                try await Task.sleep(for: .milliseconds(Int.random(in: 40...90, using: &random)))
            }
            return result
        }
    }

    /// Whether the transaction that wrote `eventID` committed, asked on a new session as soon
    /// as PostgreSQL accepts one again.
    private static func wasCommitted(_ eventID: String, url: String) async throws -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(60)
        while true {
            do {
                let connection = try await PostgresConnection.connect(url)
                let rows = try await connection.query(
                    "SELECT count(*) AS found FROM platform.schema_changes WHERE event_data->>'event_id' = $1", [eventID])
                return try rows[0].require(Int.self, column: "found") > 0
            } catch {
                guard clock.now < deadline else { throw error }
                try await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    func stop() async throws -> WriterResult {
        stopping.raised.store(true, ordering: .relaxed)
        return try await task.value
    }
}

// MARK: - Helpers

/// A small seeded generator, so a soak's faults and statements can be replayed from its seed.
private struct SplitMix64: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
