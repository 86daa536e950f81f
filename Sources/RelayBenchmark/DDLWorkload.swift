import Foundation
import Postgres

/// How DDL is written while a relay runs: one statement at a time with the relay idle in
/// between (workload b), or at a steady rate on a fixed schedule (workload c).
enum DDLLoad: Equatable {
    case idle(samples: Int)
    case steady(perSecond: Int, seconds: Int)

    var label: String {
        switch self {
        case .idle(let samples): "idle, \(samples) single statements"
        case .steady(let perSecond, let seconds): "\(perSecond.grouped)/s for \(seconds) s"
        }
    }
}

/// What became of the DDL of one relay under one load.
struct DDLResult {
    let load: DDLLoad
    let statements: Int
    /// Committed statements per second from the schedule's start to the last commit (steady
    /// load only).
    let achievedRate: Double?
    /// How far behind its schedule the latest statement was sent: the writers' own limit.
    let worstWriterLag: Duration
    /// Commit → the record is readable by the benchmark's consumer.
    let toKafka: LatencyDistribution
    /// Commit → the row's `processed_at`; `nil` for a relay that marks before publishing, for
    /// which it says nothing about the ack.
    let toMarked: LatencyDistribution?
    /// CPU of the relay's process while the load ran and drained (start-up excluded).
    let cpuSeconds: Double
    let peakRSSKiB: Int
    /// Context switches and instructions of the relay's processes while the load ran and drained.
    let counts: StableCounters.Counts
}

/// What the steady load writes: schema changes (the product's own events), or domain events
/// through `emit()`. A DDL statement with its capture costs PostgreSQL about as much CPU as the
/// relay spends on its event, so on a small machine DDL writers cannot reach 1,000/s beside a
/// relay (2 cores: 275-777/s, depending on how much CPU the relay leaves them), and the rate
/// measures the machine's saturation instead of the relay; `emit()` costs a fraction of that.
enum SteadyWrites: String {
    case ddl
    case emit
}

/// Schema changes in tenant schemas `tenant_load_<n>` (or domain events of tenants `load_<n>`),
/// written by several connections while a relay runs, and matched with what the relay did with
/// each.
///
/// Every statement is ordinary tenant migration DDL producing exactly one event: per tenant, a
/// `CREATE TABLE` and then three `ALTER TABLE … ADD COLUMN` on it, over and over. New tables keep
/// events small (an event carries its table's whole shape) and the column count far from
/// PostgreSQL's limit. Each tenant belongs to one writer connection, so a tenant's statements
/// commit in the order they were sent, and the n-th outbox row of a tenant (in id order) is its
/// n-th commit: that is how commit times are joined to event ids without an extra round trip
/// per statement. Events are matched by their tenant key, `load_<n>`, which both kinds share.
struct DDLWorkload {
    /// The outbox's tenant key of a tenant's events, DDL or emitted: for DDL the capture takes it
    /// from the schema name without its `tenant_` prefix.
    private static let tenantKeyPrefix = "load_"
    static let schemaPrefix = "tenant_\(tenantKeyPrefix)"
    /// A schema outside the measured ones for the statement that shows a relay is running.
    static let warmUpSchema = "tenant_warmup"
    /// Tenants per writer connection.
    static let tenantsPerWriter = 25
    /// Pause after each idle sample once it is delivered, so the next finds the relay idle.
    static let idlePause = Duration.milliseconds(5)

    let environment: BenchmarkEnvironment
    let writers: [PostgresConnection]
    let arrivals: KafkaArrivals
    /// What the steady load writes; idle samples are always DDL.
    let steadyWrites: SteadyWrites
    /// How long a relay may take after the last statement before what has not arrived counts
    /// as left behind; bounds the run of a relay that cannot keep up.
    let grace: Duration

    private var tenantCount: Int { writers.count * Self.tenantsPerWriter }

    private static func schema(ofTenant tenant: Int) -> String { "\(schemaPrefix)\(tenant)" }
    private static func tenantKey(ofTenant tenant: Int) -> String { "\(tenantKeyPrefix)\(tenant)" }

    /// The `sequence`-th statement in a tenant (counting from 0).
    private static func statement(tenant: Int, sequence: Int) -> String {
        let table = "\(schema(ofTenant: tenant)).t\(sequence / 4)"
        return sequence % 4 == 0
            ? "CREATE TABLE \(table) (id bigint PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now())"
            : "ALTER TABLE \(table) ADD COLUMN c\(sequence % 4) text"
    }

    /// The steady load's statement: DDL, or one domain event of the tenant.
    private func steadyStatement(tenant: Int, sequence: Int) -> String {
        switch steadyWrites {
        case .ddl: Self.statement(tenant: tenant, sequence: sequence)
        case .emit: "SELECT platform.emit('\(Self.tenantKey(ofTenant: tenant))', 'benchmark', '{\"sequence\": \(sequence)}')"
        }
    }

    /// Runs `load` against `contestant` started afresh on empty tenant schemas and an empty
    /// outbox, and measures it.
    func measure(_ contestant: Contestant, under load: DDLLoad) async throws -> DDLResult {
        try await resetSchemas()
        let relay = try contestant.start()
        defer { relay.stop() }
        try await waitUntilRelaying(relay)
        let cpuBefore = relay.cpuSeconds
        let counters = StableCounters(pids: relay.pids)
        let recordsBefore = arrivals.recordCount
        let startedAt = wallClockSeconds()
        let written: WrittenStatements
        switch load {
        case .idle(let samples):
            written = try await writeOneAtATime(samples: samples, waitForMark: contestant.marksAfterAck)
        case .steady(let perSecond, let seconds):
            written = try await writeOnSchedule(perSecond: perSecond, seconds: seconds)
        }
        _ = await arrivals.waitForRecords(atLeast: recordsBefore + written.count, timeout: grace)
        let observedUntil = wallClockSeconds()
        let cpuSeconds = relay.cpuSeconds - cpuBefore
        let counts = counters.stop()
        let peak = relay.peakResidentKiB
        relay.stop()

        let events = try await eventsInCommitOrder(of: written)
        let committed = events.map(\.committedAt)
        let toKafka = LatencyDistribution(
            committed: committed, arrived: events.map { arrivals.firstArrival(of: $0.eventID) }, observedUntil: observedUntil)
        let toMarked = contestant.marksAfterAck
            ? LatencyDistribution(committed: committed, arrived: events.map(\.markedAt), observedUntil: observedUntil)
            : nil
        let lastCommit = committed.max() ?? startedAt
        let achievedRate: Double? = if case .steady = load { Double(events.count) / (lastCommit - startedAt) } else { nil }
        return DDLResult(
            load: load, statements: events.count, achievedRate: achievedRate, worstWriterLag: written.worstLag,
            toKafka: toKafka, toMarked: toMarked, cpuSeconds: cpuSeconds, peakRSSKiB: peak,
            counts: counts)
    }

    /// Fresh tenant schemas and an empty outbox, with no relay running. Schemas are dropped one
    /// at a time: a steady run leaves thousands of tables, more than one transaction may lock.
    private func resetSchemas() async throws {
        let connection = environment.connection
        let old = try await connection.query(
            "SELECT nspname::text AS name FROM pg_namespace WHERE starts_with(nspname, $1) OR nspname = $2",
            [Self.schemaPrefix, Self.warmUpSchema])
        for row in old {
            let name = try row.require(String.self, column: "name")
            try await connection.query("DROP SCHEMA \(try await connection.quoteIdentifier(name)) CASCADE")
        }
        for tenant in 0..<tenantCount {
            try await connection.query("CREATE SCHEMA \(Self.schema(ofTenant: tenant))")
        }
        try await connection.query("CREATE SCHEMA \(Self.warmUpSchema)")
        try await connection.query("TRUNCATE platform.schema_changes")
    }

    /// Returns once the relay has published one DDL event, so start-up is not measured.
    private func waitUntilRelaying(_ relay: MeasuredProcess) async throws {
        let before = arrivals.recordCount
        try await environment.connection.query("CREATE TABLE \(Self.warmUpSchema).ready (id bigint)")
        guard await arrivals.waitForRecords(atLeast: before + 1, timeout: .seconds(60)), relay.isRunning else {
            throw BenchmarkFailure("the relay published nothing within 60 s of starting")
        }
        while try await environment.anyPending() { try await Task.sleep(for: .milliseconds(1)) }
    }

    /// Commit times per tenant key in commit order, and what the writers noticed on the way.
    private struct WrittenStatements {
        var commitsByTenant: [String: [Double]] = [:]
        var worstLag: Duration = .zero
        var count: Int { commitsByTenant.values.reduce(0) { $0 + $1.count } }

        mutating func merge(_ other: WrittenStatements) {
            commitsByTenant.merge(other.commitsByTenant) { $0 + $1 }
            worstLag = max(worstLag, other.worstLag)
        }
    }

    /// Workload (b): one statement, then wait until its record is readable (and, for a relay
    /// that marks after the ack, until its row is marked), then a short pause.
    private func writeOneAtATime(samples: Int, waitForMark: Bool) async throws -> WrittenStatements {
        var written = WrittenStatements()
        var sequenceOfTenant = Array(repeating: 0, count: tenantCount)
        for sample in 0..<samples {
            let tenant = sample % tenantCount
            let before = arrivals.recordCount
            try await writers[0].query(Self.statement(tenant: tenant, sequence: sequenceOfTenant[tenant]))
            written.commitsByTenant[Self.tenantKey(ofTenant: tenant), default: []].append(wallClockSeconds())
            sequenceOfTenant[tenant] += 1
            _ = await arrivals.waitForRecords(atLeast: before + 1, timeout: grace)
            while waitForMark, try await environment.anyPending() { try await Task.sleep(for: .milliseconds(1)) }
            try await Task.sleep(for: Self.idlePause)
        }
        return written
    }

    /// Workload (c): statement i is due at start + i / rate, whatever happened to earlier ones,
    /// so a slow statement delays the ones after it on its connection but never lowers the
    /// rate asked for. Writer w sends statements w, w + W, w + 2W, … and owns the tenants with
    /// tenant % W == w, so a tenant's statements come from one connection.
    private func writeOnSchedule(perSecond: Int, seconds: Int) async throws -> WrittenStatements {
        let total = perSecond * seconds
        let start = ContinuousClock.now + .milliseconds(20)
        let writerCount = writers.count
        let tenants = tenantCount
        return try await withThrowingTaskGroup(of: WrittenStatements.self) { group in
            for (writerIndex, writer) in writers.enumerated() {
                group.addTask {
                    var written = WrittenStatements()
                    var sequenceOfTenant: [Int: Int] = [:]
                    for index in stride(from: writerIndex, to: total, by: writerCount) {
                        let due = start + .nanoseconds(Int64(index) * 1_000_000_000 / Int64(perSecond))
                        try await Task.sleep(until: due, clock: .continuous)
                        written.worstLag = max(written.worstLag, due.duration(to: .now))
                        let tenant = index % tenants
                        let sequence = sequenceOfTenant[tenant, default: 0]
                        try await writer.query(steadyStatement(tenant: tenant, sequence: sequence))
                        written.commitsByTenant[Self.tenantKey(ofTenant: tenant), default: []].append(wallClockSeconds())
                        sequenceOfTenant[tenant] = sequence + 1
                    }
                    return written
                }
            }
            var all = WrittenStatements()
            for try await written in group { all.merge(written) }
            return all
        }
    }

    private struct CommittedEvent {
        let eventID: String
        let committedAt: Double
        let markedAt: Double?
    }

    /// Joins commit times to the outbox rows: the n-th row of a tenant is its n-th commit.
    private func eventsInCommitOrder(of written: WrittenStatements) async throws -> [CommittedEvent] {
        let rows = try await environment.connection.query(
            """
            SELECT tenant_key, event_data->>'event_id' AS event_id, extract(epoch FROM processed_at)::float8 AS marked_at
            FROM platform.schema_changes WHERE starts_with(tenant_key, $1) ORDER BY id
            """, [Self.tenantKeyPrefix])
        var nextOfTenant: [String: Int] = [:]
        var events: [CommittedEvent] = []
        for row in rows {
            let tenant = try row.require(String.self, column: "tenant_key")
            let index = nextOfTenant[tenant, default: 0]
            nextOfTenant[tenant] = index + 1
            guard let commits = written.commitsByTenant[tenant], index < commits.count else {
                throw BenchmarkFailure("tenant \(tenant) has more outbox rows than statements were committed for it")
            }
            events.append(CommittedEvent(
                eventID: try row.require(String.self, column: "event_id"), committedAt: commits[index],
                markedAt: try row.decode(Double.self, column: "marked_at")))
        }
        guard events.count == written.count else {
            throw BenchmarkFailure("\(written.count) statements committed but \(events.count) events captured")
        }
        return events
    }
}
