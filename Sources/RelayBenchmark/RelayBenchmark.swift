import Foundation
import Kafka
import Logging
import Outbox
import Postgres

/// Measures the relay against its practical limit, side by side in one run on the same
/// PostgreSQL and the same broker:
///
/// - drain: a committed backlog of events from many tenants, relayed by `outbox-bridge run`
///   (release build, its own process), next to PostgreSQL alone claiming and marking the same
///   rows in the same batches with no Kafka at all;
/// - latency: single DDL statements at idle, from commit to the row being marked processed
///   (which happens only after the broker's ack, so it bounds commit-to-ack from above);
/// - memory: the relay's peak RSS draining a small and a large backlog.
///
/// Usage: relay-benchmark BRIDGE_BINARY [--events 200000] [--tenants 100] [--samples 1000]
@main
struct RelayBenchmark {
    static func main() async throws {
        var arguments = Array(CommandLine.arguments.dropFirst())
        guard !arguments.isEmpty else {
            print("usage: relay-benchmark BRIDGE_BINARY [--events N] [--tenants N] [--samples N] [--batch-size N]")
            exit(2)
        }
        let bridge = arguments.removeFirst()
        func option(_ name: String, _ defaultValue: Int) -> Int {
            guard let index = arguments.firstIndex(of: name), index + 1 < arguments.count else { return defaultValue }
            return Int(arguments[index + 1]) ?? defaultValue
        }
        let events = option("--events", 200_000)
        let tenants = option("--tenants", 100)
        let samples = option("--samples", 1000)
        let batchSize = option("--batch-size", 1000)
        guard let clusterURL = ProcessInfo.processInfo.environment["OUTBOX_BRIDGE_TEST_DATABASE_URL"] else {
            print("OUTBOX_BRIDGE_TEST_DATABASE_URL is not set; run scripts/bench-relay.sh")
            exit(2)
        }

        let bench = try await BenchmarkEnvironment.create(clusterURL: clusterURL, bridge: bridge, batchSize: batchSize)
        print("machine: \(ProcessInfo.processInfo.activeProcessorCount) cores, \(ProcessInfo.processInfo.physicalMemory >> 30) GiB")
        print("backlog: \(events) events from \(tenants) tenants, batches of \(batchSize)\n")

        try await bench.fillBacklog(events: events, tenants: tenants)
        let limit = try await bench.postgresOnlyDrain(batchSize: batchSize)
        print(String(format: "PostgreSQL only (claim + mark, no Kafka): %8.0f events/s", limit))

        try await bench.fillBacklog(events: events, tenants: tenants)
        let relay = try await bench.relayDrain(expected: events)
        print(String(format: "outbox-bridge run (claim, publish, ack, mark): %8.0f events/s  (%.2f CPU s, peak RSS %.1f MiB)",
                     relay.rate, relay.cpuSeconds, Double(relay.peakRSSKiB) / 1024))

        let smallBacklog = max(events / 10, batchSize)
        try await bench.fillBacklog(events: smallBacklog, tenants: tenants)
        let small = try await bench.relayDrain(expected: smallBacklog)
        print(String(format: "outbox-bridge run, %d-event backlog: peak RSS %.1f MiB", smallBacklog, Double(small.peakRSSKiB) / 1024))

        let latency = try await bench.idleLatency(samples: samples)
        print(String(format: "idle DDL commit -> marked processed (after ack), %d samples: p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms",
                     samples, latency.p50, latency.p99, latency.p999))

        print("\n| measure | value | goal |")
        print("| --- | --- | --- |")
        print(String(format: "| relay drain / PostgreSQL-only limit | %.2f (%.0f vs %.0f events/s) | >= 0.75 |", relay.rate / limit, relay.rate, limit))
        print(String(format: "| idle commit-to-ack p99 (upper bound) | %.2f ms | < 5 ms |", latency.p99))
        print(String(format: "| peak RSS, %d vs %d backlog | %.1f vs %.1f MiB | bounded by batch size |",
                     events, smallBacklog, Double(relay.peakRSSKiB) / 1024, Double(small.peakRSSKiB) / 1024))
        try await bench.drop()
    }
}

struct DrainResult {
    let rate: Double
    let cpuSeconds: Double
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

    /// Starts the relay on the committed backlog and times it until every row is processed.
    func relayDrain(expected: Int) async throws -> DrainResult {
        let relay = try RelayProcess(bridge: bridge, databaseURL: databaseURL, brokers: broker.bootstrapServers, batchSize: batchSize)
        defer { relay.stop() }
        let clock = ContinuousClock()
        let started = clock.now
        var peakRSS = 0
        while try await anyPending() {
            peakRSS = max(peakRSS, relay.residentKiB)
            try await Task.sleep(for: .milliseconds(50))
        }
        let elapsed = started.duration(to: clock.now)
        peakRSS = max(peakRSS, relay.peakResidentKiB)
        return DrainResult(rate: Double(expected) / elapsed.seconds, cpuSeconds: relay.cpuSeconds, peakRSSKiB: peakRSS)
    }

    /// Single DDL statements with the relay idle between them: commit to marked processed.
    func idleLatency(samples: Int) async throws -> Percentiles {
        try await connection.query("TRUNCATE platform.schema_changes")
        try await connection.query("DROP SCHEMA IF EXISTS tenant_latency CASCADE")
        try await connection.query("CREATE SCHEMA tenant_latency")
        let relay = try RelayProcess(bridge: bridge, databaseURL: databaseURL, brokers: broker.bootstrapServers, batchSize: batchSize)
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

/// `outbox-bridge run` in its own process, with its CPU time and memory read from /proc.
final class RelayProcess {
    private let process = Process()

    init(bridge: String, databaseURL: String, brokers: String, batchSize: Int) throws {
        process.executableURL = URL(fileURLWithPath: bridge)
        process.arguments = ["run", "--database-url", databaseURL, "--brokers", brokers, "--batch-size", String(batchSize),
                             "--log-level", "warning"]
        process.standardOutput = FileHandle.nullDevice
        try process.run()
    }

    private func status(_ field: String) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8),
              let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") })
        else { return 0 }
        return Int(line.split(whereSeparator: \.isWhitespace)[1]) ?? 0
    }

    var residentKiB: Int { status("VmRSS") }
    var peakResidentKiB: Int { status("VmHWM") }

    var cpuSeconds: Double {
        guard let text = try? String(contentsOfFile: "/proc/\(process.processIdentifier)/stat", encoding: .utf8) else { return 0 }
        let fields = text[text.lastIndex(of: ")")!...].split(separator: " ")
        return Double((Int(fields[12]) ?? 0) + (Int(fields[13]) ?? 0)) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

extension Duration {
    var seconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
