import Foundation
import Kafka
import Logging
import Outbox
import Postgres

/// Measures the relay against its practical limits and against other relays, side by side in one
/// run on the same PostgreSQL and the same broker, each contestant on a fresh committed backlog:
///
/// - drain (workload a): a committed backlog of events from many tenants, relayed by
///   `outbox-bridge run` (release build, its own process); by two Python peers in
///   `scripts/peers/` (a competent batch relay, and the article's one-event-at-a-time relay,
///   which is slow and so runs for a time budget); next to the practical limits: PostgreSQL
///   alone claiming and marking the same rows in the same batches (no Kafka), and librdkafka
///   alone producing the same records (no PostgreSQL);
/// - scale-out (workload d): two `outbox-bridge run` processes sharing one backlog;
/// - latency: single DDL statements at idle, from commit to the row being marked processed
///   (which happens only after the broker's ack, so it bounds commit-to-ack from above);
/// - memory: the relay's peak RSS draining a small and a large backlog.
///
/// Usage: relay-benchmark BRIDGE_BINARY [--events 200000] [--tenants 1000] [--samples 1000]
///        [--batch-size 1000] [--article-seconds 30] [--peers DIR] [--python /usr/bin/python3]
@main
struct RelayBenchmark {
    static func main() async throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty else {
            print("usage: relay-benchmark BRIDGE_BINARY [--events N] [--tenants N] [--samples N] [--batch-size N]"
                + " [--article-seconds N] [--peers DIR] [--python PATH]")
            exit(2)
        }
        let bridge = arguments.removeFirst()
        func string(_ name: String) -> String? {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return nil }
            return arguments[index + 1]
        }
        func option(_ name: String, _ defaultValue: Int) -> Int {
            string(name).flatMap { Int($0) } ?? defaultValue
        }
        let events = option("--events", 200_000)
        let tenants = option("--tenants", 1000)
        let samples = option("--samples", 1000)
        let batchSize = option("--batch-size", 1000)
        let articleSeconds = option("--article-seconds", 30)
        let peers = string("--peers") ?? URL(fileURLWithPath: bridge).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("../../../scripts/peers").standardized.path
        let python = string("--python") ?? "/usr/bin/python3"
        guard let clusterURL = ProcessInfo.processInfo.environment["OUTBOX_BRIDGE_TEST_DATABASE_URL"] else {
            print("OUTBOX_BRIDGE_TEST_DATABASE_URL is not set; run scripts/bench-relay.sh")
            exit(2)
        }

        let bench = try await BenchmarkEnvironment.create(clusterURL: clusterURL, bridge: bridge, batchSize: batchSize)
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB")
        print("backlog: \(events) events from \(tenants) tenants, batches of \(batchSize)\n")
        func report(_ name: String, _ result: DrainResult) {
            print(String(format: "%@: %8.0f events/s  (%d events in %.1f s, %.2f CPU s, peak RSS %.1f MiB)",
                         name, result.rate, result.processed, result.seconds, result.cpuSeconds,
                         Double(result.peakRSSKiB) / 1024))
        }

        try await bench.fillBacklog(events: events, tenants: tenants)
        let limit = try await bench.postgresOnlyDrain(batchSize: batchSize)
        print(String(format: "PostgreSQL only (claim + mark, no Kafka): %8.0f events/s", limit))

        try await bench.fillBacklog(events: events, tenants: tenants)
        let kafkaLimit = try await bench.kafkaOnlyProduce()
        print(String(format: "librdkafka only (same records, no PostgreSQL): %8.0f events/s", kafkaLimit))

        try await bench.fillBacklog(events: events, tenants: tenants)
        let relay = try await bench.drain(expected: events, commands: [bench.bridgeCommand])
        report("outbox-bridge run (claim, publish, ack, mark)", relay)

        try await bench.fillBacklog(events: events, tenants: tenants)
        let batch = try await bench.drain(expected: events, commands: [[python, peers + "/batch_relay.py"] + bench.peerArguments])
        report("batch_relay.py (1,000 rows SKIP LOCKED, flush, one UPDATE)", batch)

        try await bench.fillBacklog(events: events, tenants: tenants)
        let article = try await bench.drain(
            expected: events, budget: .seconds(articleSeconds),
            commands: [[python, peers + "/article_relay.py"] + bench.peerArguments])
        report("article_relay.py (one event per UPDATE and per ack, \(articleSeconds) s budget)", article)

        try await bench.fillBacklog(events: events, tenants: tenants)
        let pair = try await bench.drain(expected: events, commands: [bench.bridgeCommand, bench.bridgeCommand])
        report("two outbox-bridge run instances sharing the backlog", pair)

        let smallBacklog = max(events / 10, batchSize)
        try await bench.fillBacklog(events: smallBacklog, tenants: tenants)
        let small = try await bench.drain(expected: smallBacklog, commands: [bench.bridgeCommand])
        print(String(format: "outbox-bridge run, %d-event backlog: peak RSS %.1f MiB", smallBacklog, Double(small.peakRSSKiB) / 1024))

        var latency: Percentiles?
        if samples > 0 {
            let measured = try await bench.idleLatency(samples: samples)
            print(String(format: "idle DDL commit -> marked processed (after ack), %d samples: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms",
                         samples, measured.p50, measured.p99, measured.p999))
            latency = measured
        }

        print("\n| relay (drain of \(events) events, \(tenants) tenants) | events/s | CPU s | CPU µs/event | peak RSS |")
        print("| --- | ---: | ---: | ---: | ---: |")
        func row(_ name: String, _ result: DrainResult) {
            print(String(format: "| %@ | %.0f | %.2f | %.1f | %.1f MiB |", name, result.rate, result.cpuSeconds,
                         result.cpuSeconds * 1e6 / Double(max(result.processed, 1)), Double(result.peakRSSKiB) / 1024))
        }
        row("OutboxBridge (`outbox-bridge run`)", relay)
        row("OutboxBridge, two instances", pair)
        row("batch relay (Python, `batch_relay.py`)", batch)
        row("article relay (Python, `article_relay.py`, \(articleSeconds) s budget)", article)
        print(String(format: "| PostgreSQL only (claim + mark, no Kafka) | %.0f | — | — | — |", limit))
        print(String(format: "| librdkafka only (produce + ack, no PostgreSQL) | %.0f | — | — | — |", kafkaLimit))

        print("\n| ratio | value | goal |")
        print("| --- | ---: | --- |")
        print(String(format: "| OutboxBridge / PostgreSQL-only limit | %.2f | >= 0.75 |", relay.rate / limit))
        print(String(format: "| OutboxBridge / batch relay | %.1f | >= 3 |", relay.rate / batch.rate))
        print(String(format: "| OutboxBridge / article relay | %.0f | |", relay.rate / article.rate))
        print(String(format: "| OutboxBridge / librdkafka-only limit | %.2f | |", relay.rate / kafkaLimit))
        print(String(format: "| two OutboxBridge instances / one | %.2f | |", pair.rate / relay.rate))
        if let latency {
            print(String(format: "| idle commit-to-ack p99 (upper bound) | %.2f ms | < 5 ms |", latency.p99))
        }
        print(String(format: "| peak RSS, %d vs %d backlog | %.1f vs %.1f MiB | bounded by batch size |",
                     events, smallBacklog, Double(relay.peakRSSKiB) / 1024, Double(small.peakRSSKiB) / 1024))
        try await bench.drop()
    }
}

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
}

struct Percentiles {
    let p50: Double
    let p99: Double
    let p999: Double
}

/// One database with the outbox installed and one embedded broker, shared by every measurement.
struct BenchmarkEnvironment {
    let admin: PostgresConnection
    let connection: PostgresConnection
    let databaseName: String
    let databaseURL: String
    let broker: KafkaDevelopmentBroker
    let bridge: String
    let batchSize: Int

    static func create(clusterURL: String, bridge: String, batchSize: Int) async throws -> BenchmarkEnvironment {
        let admin = try await PostgresConnection.connect(clusterURL)
        let name = "bench_relay_\(UInt32.random(in: 0...UInt32.max))"
        try await admin.query("CREATE DATABASE \(try await admin.quoteIdentifier(name))")
        var components = URLComponents(string: clusterURL)!
        components.path = "/" + name
        let url = components.string!
        let connection = try await PostgresConnection.connect(url)
        let sql = URL(fileURLWithPath: bridge).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("../../../sql").standardized
        try await OutboxInstaller(connection: connection, schema: "platform", logger: Logger(label: "bench"))
            .install(try OutboxMigration.load(from: sql))
        let quiet = Logger(label: "bench.broker", factory: { _ in SwiftLogNoOpLogHandler() })
        let broker = try KafkaDevelopmentBroker(brokers: 1, logger: quiet)
        try broker.createTopic("schema-changes", partitions: 6)
        try broker.createTopic("schema-changes.dead-letter", partitions: 1)
        return BenchmarkEnvironment(
            admin: admin, connection: connection, databaseName: name, databaseURL: url, broker: broker,
            bridge: bridge, batchSize: batchSize)
    }

    /// A fresh committed backlog: every earlier row removed, statistics current.
    func fillBacklog(events: Int, tenants: Int) async throws {
        try await connection.query("TRUNCATE platform.schema_changes")
        try await connection.query(
            """
            SELECT platform.emit('tenant' || (n % $2::int), 'bench.event', jsonb_build_object('n', n, 'padding', repeat('x', 200)))
            FROM generate_series(1, $1::int) AS n
            """, [events, tenants])
        try await connection.query("VACUUM ANALYZE platform.schema_changes")
    }

    /// The practical limit: the relay's own claim and mark statements, with made-up offsets.
    func postgresOnlyDrain(batchSize: Int) async throws -> Double {
        let store = try await OutboxStore(connection: connection, schema: "platform")
        let shards = Array(0..<16)
        let clock = ContinuousClock()
        var drained = 0
        let elapsed = try await clock.measure {
            while true {
                let claimed = try await store.claimPending(limit: batchSize, shards: shards, shardCount: 16)
                if claimed.isEmpty { break }
                try await store.markDelivered(claimed.enumerated().map { index, event in
                    OutboxDelivery(eventID: event.id, topic: "schema-changes", partition: 0, offset: Int64(drained + index))
                })
                drained += claimed.count
            }
        }
        return Double(drained) / elapsed.seconds
    }

    /// `outbox-bridge run` on the benchmark's database and broker.
    var bridgeCommand: [String] {
        [bridge, "run", "--database-url", databaseURL, "--brokers", broker.bootstrapServers, "--batch-size", String(batchSize),
         "--log-level", "warning", "--http-port", "0"]
    }

    /// What the Python peers in scripts/peers/ take.
    var peerArguments: [String] { ["--database-url", databaseURL, "--brokers", broker.bootstrapServers] }

    /// Starts a contestant (one process per command, all sharing the backlog) on the committed
    /// backlog and times it until every row is processed, or until the budget runs out (then the
    /// rate counts the rows it did process).
    func drain(expected: Int, budget: Duration? = nil, commands: [[String]]) async throws -> DrainResult {
        let clock = ContinuousClock()
        let started = clock.now
        let relay = try MeasuredProcess.group(commands.map {
            try MeasuredProcess(executable: $0[0], arguments: Array($0.dropFirst()))
        })
        defer { relay.stop() }
        var drained = false
        while !drained {
            drained = try await !anyPending()
            if drained { break }
            if let budget, started.duration(to: clock.now) >= budget { break }
            guard relay.isRunning else {
                print("contestant exited before draining the backlog")
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        let elapsed = started.duration(to: clock.now).seconds
        let cpu = relay.cpuSeconds
        let peak = relay.peakResidentKiB
        let processed = drained ? expected : try await processedCount()
        return DrainResult(rate: Double(processed) / elapsed, processed: processed, seconds: elapsed,
                           cpuSeconds: cpu, peakRSSKiB: peak)
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
            KafkaRecord(topic: "schema-changes", key: try row.decode(String.self, column: "tenant_key"),
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

    /// Single DDL statements with the relay idle between them: commit to marked processed.
    func idleLatency(samples: Int) async throws -> Percentiles {
        try await connection.query("TRUNCATE platform.schema_changes")
        try await connection.query("DROP SCHEMA IF EXISTS tenant_latency CASCADE")
        try await connection.query("CREATE SCHEMA tenant_latency")
        let relay = try MeasuredProcess(executable: bridge, arguments: Array(bridgeCommand.dropFirst()))
        defer { relay.stop() }
        while try await anyPending() { try await Task.sleep(for: .milliseconds(20)) }
        var latencies: [Double] = []
        for sample in 0..<samples {
            try await connection.query("CREATE TABLE tenant_latency.t\(sample) (id bigint PRIMARY KEY, reading float8)")
            let committed = try await connection.query("SELECT extract(epoch FROM clock_timestamp()) AS at")[0]
                .require(Double.self, column: "at")
            var marked: Double?
            while marked == nil {
                let rows = try await connection.query(
                    """
                    SELECT extract(epoch FROM processed_at) AS at FROM platform.schema_changes
                    WHERE event_data->>'object_identity' = $1 AND processed
                    """, ["tenant_latency.t\(sample)"])
                marked = try rows.first?.decode(Double.self, column: "at")
            }
            latencies.append((marked! - committed) * 1000)
            try await Task.sleep(for: .milliseconds(5))
        }
        latencies.sort()
        func at(_ fraction: Double) -> Double { latencies[min(latencies.count - 1, Int(Double(latencies.count) * fraction))] }
        return Percentiles(p50: at(0.5), p99: at(0.99), p999: at(0.999))
    }

    /// Whether any row is pending; cheap (it stops at the first), so watching does not slow
    /// down what is watched.
    private func anyPending() async throws -> Bool {
        try await connection.query(
            "SELECT EXISTS (SELECT 1 FROM platform.schema_changes WHERE NOT processed AND NOT dead) AS pending"
        )[0].require(Bool.self, column: "pending")
    }

    func drop() async throws {
        try await admin.query("DROP DATABASE IF EXISTS \(try await admin.quoteIdentifier(databaseName)) WITH (FORCE)")
    }
}

/// A contestant: one or more processes (a relay and its instances), with their CPU time and
/// memory read from /proc and summed.
final class MeasuredProcess {
    private let processes: [Process]

    init(executable: String, arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = FileHandle.nullDevice
        try process.run()
        processes = [process]
    }

    private init(processes: [Process]) {
        self.processes = processes
    }

    /// Several contestants measured as one (their processes keep running until `stop`).
    static func group(_ members: [MeasuredProcess]) -> MeasuredProcess {
        MeasuredProcess(processes: members.flatMap(\.processes))
    }

    private static func status(_ pid: Int32, _ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return 0 }
        return Int(line.split(whereSeparator: \.isWhitespace)[1]) ?? 0
    }

    var peakResidentKiB: Int { processes.reduce(0) { $0 + Self.status($1.processIdentifier, "VmHWM") } }

    var cpuSeconds: Double {
        processes.reduce(0) { total, process in
            guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8)
            else { return total }
            let fields = text[text.lastIndex(of: ")")!...].split(separator: " ")
            return total + Double((Int(fields[12]) ?? 0) + (Int(fields[13]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
        }
    }

    var isRunning: Bool { processes.allSatisfy(\.isRunning) }

    /// SIGTERM, then SIGKILL for any process still running after 10 seconds.
    func stop() {
        for process in processes where process.isRunning { kill(process.processIdentifier, SIGTERM) }
        let deadline = ContinuousClock.now + .seconds(10)
        while processes.contains(where: \.isRunning), ContinuousClock.now < deadline { usleep(10_000) }
        for process in processes where process.isRunning {
            print("pid \(process.processIdentifier) ignored SIGTERM; killing it")
            kill(process.processIdentifier, SIGKILL)
        }
        while processes.contains(where: \.isRunning) { usleep(10_000) }
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
