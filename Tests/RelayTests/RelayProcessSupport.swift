import Foundation
import Kafka
import Postgres
import Relay
import Synchronization
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

// Helpers shared by the tests that run `outbox-bridge run` as a child process.

/// A fresh database and broker for one test, with a connection to the database; the database is
/// dropped when `body` ends, however it ends (relay processes are stopped by then).
func withEnvironment(
    _ label: String, _ body: (OutboxTestEnvironment, PostgresConnection) async throws -> Void
) async throws {
    let environment = try await OutboxTestEnvironment.start(label)
    do {
        try await body(environment, try await environment.database.connect())
    } catch {
        await environment.drop()
        throw error
    }
    await environment.drop()
}

/// Two-second leases, so a killed instance's shards are free again quickly; fast retries.
let fastLeases = [
    "RELAY_LEASE_SECONDS": "2",
    "RELAY_RETRY_BACKOFF_SECONDS": "0.2",
    "RELAY_MAX_RETRY_BACKOFF_SECONDS": "1",
]

/// `outbox-bridge run` aimed at the environment's database, as its least-privilege relay login,
/// and its broker.
func relayArguments(
    _ environment: OutboxTestEnvironment, _ extra: [String], databaseURL: String? = nil
) -> [String] {
    ["run", "--database-url", databaseURL ?? environment.relayURL, "--brokers", environment.broker.bootstrapServers,
     "--poll-interval", "0.2", "--log-level", "info"] + extra
}

func processedCount(_ sql: PostgresConnection) async throws -> Int {
    let rows = try await sql.query("SELECT count(*) AS processed FROM platform.schema_changes WHERE processed")
    return try rows[0].require(Int.self, column: "processed")
}

/// Instances holding an unexpired lease, with how many shards each holds.
func leaseOwners(_ sql: PostgresConnection) async throws -> [String: Int] {
    let rows = try await sql.query(
        """
        SELECT owner::text AS owner, count(*) AS shards FROM platform.relay_leases
        WHERE owner IS NOT NULL AND expires_at > pg_catalog.now() GROUP BY owner
        """)
    var owners: [String: Int] = [:]
    for row in rows {
        owners[try row.require(String.self, column: "owner").lowercased()] = try row.require(Int.self, column: "shards")
    }
    return owners
}

/// The most records one relay can have published but not yet marked: the only ones a crash
/// or a cut session can publish twice.
func inFlightLimit(_ batchSize: Int) -> Int {
    batchSize * RelayConfiguration().maxInFlightBatches
}

/// Whether some row has been pending for over a second. The relay claims whenever it has room
/// and looks at least every poll interval (200 ms here), so such a row is in flight awaiting an
/// ack that the broker does not give, or waits behind records that are.
func relayAwaitsAcks(_ sql: PostgresConnection) async throws -> Bool {
    let rows = try await sql.query(
        """
        SELECT EXISTS (SELECT 1 FROM platform.schema_changes
                       WHERE NOT processed AND created_at < pg_catalog.now() - interval '1 second') AS waiting
        """)
    return try rows[0].require(Bool.self, column: "waiting")
}

/// How many lease rows name `instance` as owner, expired or not, plus its heartbeat row.
func shardsRecorded(_ sql: PostgresConnection, for instance: String) async throws -> Int {
    let rows = try await sql.query(
        """
        SELECT (SELECT count(*) FROM platform.relay_leases WHERE owner = $1::uuid)
             + (SELECT count(*) FROM platform.relay_instances WHERE id = $1::uuid) AS recorded
        """, [instance])
    return try rows[0].require(Int.self, column: "recorded")
}

/// The instance id the relay logs with every line (`instance=<uuid>`).
func instanceID(in log: String) -> String? {
    guard let range = log.range(of: #"instance=[0-9A-Fa-f-]{36}"#, options: .regularExpression) else { return nil }
    return String(log[range].dropFirst("instance=".count)).lowercased()
}

/// One round: `eventsPerTenant` events for each tenant `t1…tN` in one transaction, interleaved,
/// with per-tenant sequence numbers `round * eventsPerTenant + step`.
func emit(_ sql: PostgresConnection, tenants: Int, eventsPerTenant: Int, firstRound round: Int) async throws {
    try await sql.query(
        """
        SELECT platform.emit('t' || tenant, 'test.sequence', jsonb_build_object('seq', $1::int * $2::int + step))
        FROM generate_series(0, $2::int - 1) AS step, generate_series(1, $3::int) AS tenant
        ORDER BY step, tenant
        """, [round, eventsPerTenant, tenants])
}

/// Emits rounds of events on its own connection, one after another, until stopped, so that
/// events keep arriving while relays start, die and stop.
final class EventWriter: Sendable {
    private final class Flag: Sendable {
        let raised = Atomic<Bool>(false)
    }

    private let stopping = Flag()
    private let task: Task<Int, any Error>

    static func start(_ url: String, tenants: Int, eventsPerTenant: Int, firstRound: Int = 0) async throws -> EventWriter {
        let connection = try await PostgresConnection.connect(url)
        return EventWriter(connection: connection, tenants: tenants, eventsPerTenant: eventsPerTenant, firstRound: firstRound)
    }

    private init(connection: PostgresConnection, tenants: Int, eventsPerTenant: Int, firstRound: Int) {
        let stopping = self.stopping
        task = Task {
            var round = firstRound
            while !stopping.raised.load(ordering: .relaxed) {
                try await emit(connection, tenants: tenants, eventsPerTenant: eventsPerTenant, firstRound: round)
                round += 1
                // Pacing, not waiting: a steady stream rather than as many as the disk takes.
                try await Task.sleep(for: .milliseconds(40))
            }
            return round
        }
    }

    /// Stops after the round being written; returns the rounds written since round 0.
    func stop() async throws -> Int {
        stopping.raised.store(true, ordering: .relaxed)
        return try await task.value
    }
}

struct DeliveryReport {
    var events = 0
    var records = 0
    var duplicates = 0
}

/// Checks the relay's guarantees for every `test.sequence` event in the outbox against what
/// Kafka holds:
/// - every row is processed (none dead), and its event id is in Kafka: nothing lost;
/// - every record in Kafka is an outbox event, and a repeated event id always carries the same
///   tenant and sequence number: the only duplicates are republications of one event;
/// - per tenant, one partition, and the sequence numbers in order of first occurrence by offset
///   are exactly 0, 1, 2, …: order held and nothing skipped;
/// - each row's recorded partition and offset hold a record with its event id.
func verifyDelivery(
    _ environment: OutboxTestEnvironment, _ sql: PostgresConnection, tenants: Int, eventsPerTenant: Int,
    context: String
) async throws -> DeliveryReport {
    let rows = try await environment.outboxRows(sql)
    let records = try await environment.kafka.consume(topic: OutboxTestEnvironment.topic)
    struct Published: Hashable {
        let tenant: String
        let sequence: Int
    }
    var byEventID: [String: Set<Published>] = [:]
    var byPosition: [String: String] = [:]
    for record in records {
        let eventID = try #require(record.header("event_id"), "record without event_id at \(record.partition)/\(record.offset)")
        let value = try JSONSerialization.jsonObject(with: Data((record.payload ?? "").utf8)) as? [String: Any]
        let payload = value?["payload"] as? [String: Any]
        let sequence = try #require(payload?["seq"] as? Int, "record \(eventID) without seq")
        byEventID[eventID, default: []].insert(Published(tenant: record.key ?? "", sequence: sequence))
        byPosition["\(record.partition)/\(record.offset)"] = eventID
    }

    let rowIDs = Set(rows.map(\.eventID))
    let notProcessed = rows.filter { !$0.processed || $0.dead }
    let lost = rows.filter { byEventID[$0.eventID] == nil }
    let phantoms = byEventID.keys.filter { !rowIDs.contains($0) }
    let conflicting = byEventID.filter { $0.value.count > 1 }
    let misrecorded = rows.filter { row in
        guard let partition = row.partition, let offset = row.offset else { return true }
        return row.topic != OutboxTestEnvironment.topic || byPosition["\(partition)/\(offset)"] != row.eventID
    }
    #expect(rows.count == tenants * eventsPerTenant, "\(context): \(rows.count) rows for \(tenants) x \(eventsPerTenant) events")
    #expect(notProcessed.isEmpty, "\(context): \(notProcessed.count) rows not processed, e.g. \(notProcessed.prefix(3))")
    #expect(lost.isEmpty, "\(context): \(lost.count) events lost, e.g. \(lost.prefix(3).map(\.eventID))")
    #expect(phantoms.isEmpty, "\(context): \(phantoms.count) records with no outbox row")
    #expect(conflicting.isEmpty, "\(context): one event id with different content: \(conflicting.prefix(3))")
    #expect(misrecorded.isEmpty, "\(context): \(misrecorded.count) rows record a position not holding their event, e.g. \(misrecorded.prefix(3))")

    let byTenant = Dictionary(grouping: records, by: { $0.key ?? "" })
    #expect(byTenant.count == tenants, "\(context): \(byTenant.count) tenants in Kafka")
    for (tenant, tenantRecords) in byTenant {
        #expect(Set(tenantRecords.map(\.partition)).count == 1, "\(context): tenant \(tenant) spans partitions")
        var seen = Set<String>()
        var firstOccurrences: [Int] = []
        for record in tenantRecords.sorted(by: { $0.offset < $1.offset }) {
            guard let eventID = record.header("event_id"), seen.insert(eventID).inserted,
                  let published = byEventID[eventID]?.first else { continue }
            firstOccurrences.append(published.sequence)
        }
        if firstOccurrences != Array(0..<eventsPerTenant) {
            let wrong = zip(firstOccurrences, 0...).first { $0.0 != $0.1 }
            Issue.record("\(context): tenant \(tenant) out of order or incomplete: \(firstOccurrences.count) events, first mismatch \(String(describing: wrong))")
        }
    }
    return DeliveryReport(events: rows.count, records: records.count, duplicates: records.count - byEventID.count)
}

/// A loopback TCP port whose connections the kernel accepts and nobody ever answers: a server
/// that hangs.
struct SilentListener {
    let port: Int
    private let descriptor: Int32

    init() throws {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestEnvironmentError("socket() failed: errno \(errno)") }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let listening = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, length) == 0 && listen(descriptor, 16) == 0 && getsockname(descriptor, $0, &length) == 0
            }
        }
        guard listening else {
            Glibc.close(descriptor)
            throw TestEnvironmentError("cannot listen on loopback: errno \(errno)")
        }
        self.descriptor = descriptor
        self.port = Int(UInt16(bigEndian: address.sin_port))
    }

    func close() {
        Glibc.close(descriptor)
    }
}
