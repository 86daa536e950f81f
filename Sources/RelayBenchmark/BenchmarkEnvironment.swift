import Foundation
import Kafka
import Logging
import Outbox
import Postgres

/// A relay in the comparison: the processes that make it up, and whether it marks a row only
/// after the broker's ack (then commit → marked bounds commit-to-ack from above).
struct Contestant {
    let name: String
    let commands: [[String]]
    let marksAfterAck: Bool

    func start() throws -> MeasuredProcess {
        MeasuredProcess.group(try commands.map { try MeasuredProcess(executable: $0[0], arguments: Array($0.dropFirst())) })
    }
}

/// What a contestant achieved draining a committed backlog.
struct DrainResult {
    /// Rows processed per second of wall time, from the contestant's start to the last row (or
    /// to the end of its time budget).
    let rate: Double
    let processed: Int
    let seconds: Double
    /// User + system CPU of the contestant's processes (summed over instances).
    let cpuSeconds: Double
    /// Peak resident memory (VmHWM, summed over instances).
    let peakRSSKiB: Int
    /// The largest anonymous part of RSS seen, sampled every 50 ms (so it may miss a spike).
    let sampledPeakAnonymousKiB: Int
    /// Context switches and instructions of the contestant's processes over the drain.
    let counts: StableCounters.Counts
}

struct BenchmarkFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// One database with the outbox installed and one embedded broker, shared by every measurement.
struct BenchmarkEnvironment {
    static let topic = "schema-changes"

    let admin: PostgresConnection
    let connection: PostgresConnection
    let databaseName: String
    let databaseURL: String
    let broker: KafkaDevelopmentBroker
    let batchSize: Int

    static func create(clusterURL: String, sql: URL, batchSize: Int) async throws -> BenchmarkEnvironment {
        let admin = try await PostgresConnection.connect(clusterURL)
        let name = "bench_relay_\(UInt32.random(in: 0...UInt32.max))"
        try await admin.query("CREATE DATABASE \(try await admin.quoteIdentifier(name))")
        var components = URLComponents(string: clusterURL)!
        components.path = "/" + name
        let url = components.string!
        // Filling a backlog of 1,000,000 rows on a busy machine takes longer than the default
        // 45-second deadline of a call.
        var bulk = PostgresConnection.Options()
        bulk.queryTimeout = .seconds(900)
        let connection = try await PostgresConnection.connect(url, options: bulk)
        // The benchmark's own notices (DROP SCHEMA … CASCADE names every table) would bury its
        // results in the log.
        try await connection.query("SET client_min_messages TO warning")
        try await OutboxInstaller(connection: connection, schema: "platform", logger: Logger(label: "bench"))
            .install(try OutboxMigration.load(from: sql))
        let quiet = Logger(label: "bench.broker", factory: { _ in SwiftLogNoOpLogHandler() })
        let broker = try KafkaDevelopmentBroker(brokers: 1, logger: quiet)
        try broker.createTopic(topic, partitions: 6)
        try broker.createTopic(topic + ".dead-letter", partitions: 1)
        return BenchmarkEnvironment(
            admin: admin, connection: connection, databaseName: name, databaseURL: url, broker: broker,
            batchSize: batchSize)
    }

    /// "PostgreSQL 15.x (fsync off)": the server's version and whether it writes durably.
    func postgresDescription() async throws -> String {
        let version = try await connection.query("SHOW server_version")[0].require(String.self, column: "server_version")
        let fsync = try await connection.query("SHOW fsync")[0].require(String.self, column: "fsync")
        return "PostgreSQL \(version.split(separator: " ")[0]) (fsync \(fsync))"
    }

    /// More connections to the benchmark's database (for the DDL writers).
    func connect(count: Int) async throws -> [PostgresConnection] {
        var connections: [PostgresConnection] = []
        for _ in 0..<count { connections.append(try await PostgresConnection.connect(databaseURL)) }
        return connections
    }

    /// Rows written through `emit()` for a backlog; a larger backlog is filled up with copies
    /// of them.
    static let emittedRows = 20_000

    /// A fresh committed backlog: every earlier row removed, statistics current. The first
    /// ``emittedRows`` rows come from `emit()`; beyond that, rows are copies of those (same
    /// tenants and sizes, the envelope's numbers repeated, which the relay never reads), because
    /// a million `emit()` calls take over 15 minutes on a busy 2-core machine.
    func fillBacklog(events: Int, tenants: Int) async throws {
        try await connection.query("TRUNCATE platform.schema_changes")
        try await connection.query(
            """
            SELECT platform.emit('tenant' || (n % $2::int), 'bench.event', jsonb_build_object('n', n, 'padding', repeat('x', 200)))
            FROM generate_series(1, $1::int) AS n
            """, [min(events, Self.emittedRows), tenants])
        if events > Self.emittedRows {
            try await connection.query(
                """
                INSERT INTO platform.schema_changes (event_data, tenant_key)
                SELECT e.event_data, e.tenant_key
                FROM generate_series(1, $1::int) AS n
                JOIN (SELECT row_number() OVER (ORDER BY id) AS k, event_data, tenant_key FROM platform.schema_changes) AS e
                  ON e.k = 1 + (n - 1) % $2::int
                ORDER BY n
                """, [events - Self.emittedRows, Self.emittedRows])
        }
        try await connection.query("VACUUM ANALYZE platform.schema_changes")
    }

    /// The practical limit: the relay's own claim and mark statements, prepared on a direct
    /// connection as the bridge prepares them, with made-up offsets.
    func postgresOnlyDrain() async throws -> Double {
        let store = try await OutboxStore(
            connection: try await PostgresConnection.connect(databaseURL), schema: "platform", preparesStatements: true)
        let shards = Array(0..<16)
        let clock = ContinuousClock()
        var drained = 0
        let elapsed = try await clock.measure {
            while true {
                let claimed = try await store.claimPending(limit: batchSize, shards: shards, shardCount: 16)
                if claimed.isEmpty { break }
                try await store.markDelivered(claimed.enumerated().map { index, event in
                    OutboxDelivery(eventID: event.id, topic: Self.topic, partition: 0, offset: Int64(drained + index))
                })
                drained += claimed.count
            }
        }
        return Double(drained) / elapsed.seconds
    }

    /// `outbox-bridge run` on the benchmark's database and broker, with its shipped defaults
    /// (the batch size given is the default unless `--batch-size` says otherwise) and `options`
    /// (the benchmark's `--bridge-option`s) after them.
    func bridgeCommand(_ bridge: String, _ options: [String]) -> [String] {
        [bridge, "run", "--database-url", databaseURL, "--brokers", broker.bootstrapServers, "--batch-size", String(batchSize),
         "--log-level", "warning", "--http-port", "0"] + options
    }

    /// What the Python peers in scripts/peers/ take.
    var peerArguments: [String] { ["--database-url", databaseURL, "--brokers", broker.bootstrapServers] }

    /// Starts a contestant on the committed backlog and times it until every row is processed,
    /// or until the budget runs out (then the rate counts the rows it did process).
    func drain(_ contestant: Contestant, expected: Int, budget: Duration? = nil) async throws -> DrainResult {
        let clock = ContinuousClock()
        let started = clock.now
        let relay = try contestant.start()
        defer { relay.stop() }
        let counters = StableCounters(pids: relay.pids)
        var drained = false
        var peakAnonymous = 0
        while !drained {
            peakAnonymous = max(peakAnonymous, relay.residentAnonymousKiB)
            drained = try await !anyPending()
            if drained { break }
            if let budget, started.duration(to: clock.now) >= budget { break }
            guard relay.isRunning else {
                print("\(contestant.name) exited before draining the backlog")
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let elapsed = started.duration(to: clock.now).seconds
        let cpu = relay.cpuSeconds
        let counts = counters.stop()
        let peak = relay.peakResidentKiB
        let processed = drained ? expected : try await processedCount()
        return DrainResult(rate: Double(processed) / elapsed, processed: processed, seconds: elapsed,
                           cpuSeconds: cpu, peakRSSKiB: peak, sampledPeakAnonymousKiB: peakAnonymous, counts: counts)
    }

    private static func failures(_ outcomes: [Result<KafkaDeliveryReport, KafkaError>]) -> Int {
        outcomes.filter { if case .failure = $0 { true } else { false } }.count
    }

    private func processedCount() async throws -> Int {
        try await connection.query("SELECT count(*)::int8 AS n FROM platform.schema_changes WHERE processed")[0]
            .require(Int.self, column: "n")
    }

    /// The other practical limit: librdkafka alone (the project's producer, same settings as the
    /// relay's) producing the backlog's records, same keys and values, and waiting for every
    /// ack, in the relay's batch size with as many batches in flight as it keeps by default.
    /// The records are read from PostgreSQL before the clock starts.
    func kafkaOnlyProduce() async throws -> Double {
        let rows = try await connection.query(
            "SELECT tenant_key, event_data::text AS value FROM platform.schema_changes ORDER BY id")
        let records = try rows.map { row in
            KafkaRecord(topic: Self.topic, key: try row.decode(String.self, column: "tenant_key"),
                        value: try row.require(String.self, column: "value"))
        }
        let quiet = Logger(label: "bench.producer", factory: { _ in SwiftLogNoOpLogHandler() })
        let producer = try KafkaProducer(
            configuration: KafkaProducerConfiguration(bootstrapServers: broker.bootstrapServers), logger: quiet)
        _ = try await producer.send(records[0]) // connect and learn the metadata outside the clock
        let batches = stride(from: 0, to: records.count, by: batchSize).map {
            Array(records[$0..<min($0 + batchSize, records.count)])
        }
        let inFlight = 4
        let clock = ContinuousClock()
        var failures = 0
        let elapsed = await clock.measure {
            await withTaskGroup(of: Int.self) { group in
                var next = 0
                while next < min(inFlight, batches.count) {
                    let batch = batches[next]
                    group.addTask { Self.failures(await producer.send(batch)) }
                    next += 1
                }
                while let failed = await group.next() {
                    failures += failed
                    if next < batches.count {
                        let batch = batches[next]
                        group.addTask { Self.failures(await producer.send(batch)) }
                        next += 1
                    }
                }
            }
        }
        await producer.shutdown()
        if failures > 0 { print("librdkafka only: \(failures) deliveries failed") }
        return Double(records.count) / elapsed.seconds
    }

    /// Whether any row is pending; cheap (it stops at the first), so watching does not slow
    /// down what is watched.
    func anyPending() async throws -> Bool {
        try await connection.query(
            "SELECT EXISTS (SELECT 1 FROM platform.schema_changes WHERE NOT processed AND NOT dead) AS pending"
        )[0].require(Bool.self, column: "pending")
    }

    func drop() async throws {
        try await admin.query("DROP DATABASE IF EXISTS \(try await admin.quoteIdentifier(databaseName)) WITH (FORCE)")
    }
}
