import Foundation
import Kafka
import Postgres

/// Measures OutboxBridge against its practical limits and against other relays, side by side in
/// one run on the same PostgreSQL and the same broker (issue #7). The contestants are
/// `outbox-bridge run` (release build, its own process) and two Python peers in `scripts/peers/`:
/// a competent batch relay, and the article's one-event-at-a-time relay, which marks a row before
/// publishing it.
///
/// - (a) drain: a committed backlog of events from many tenants, a fresh one per contestant;
///   the article relay is slow, so it runs for a time budget. The practical limits are
///   PostgreSQL alone claiming and marking the same rows in the same batches (no Kafka), and
///   librdkafka alone producing the same records (no PostgreSQL).
/// - (b) idle latency: single DDL statements, each written once the previous one is delivered.
/// - (c) latency under load: DDL at a steady rate for a fixed time, paced by a schedule (several
///   writer connections), with a grace period after it; what has not reached Kafka by then
///   counts as left behind, which bounds the run of a relay that cannot keep up.
/// - (d) scale-out: two `outbox-bridge run` processes sharing one backlog.
/// - memory: the bridge's peak RSS draining a large backlog, with its shipped defaults.
///
/// Latency is measured the same way for every relay, because "commit → marked" is not
/// commit-to-ack for a relay that marks first: from the commit (CLOCK_REALTIME on the
/// benchmark's side right after the autocommit DDL statement returns, i.e. after PostgreSQL has
/// committed it) to the record being read by an independent consumer in the benchmark's process
/// (same clock; see ``KafkaArrivals``). For the relays that mark only after the ack, commit →
/// `processed_at` is reported too. CPU seconds and peak RSS are the relay processes' own.
///
/// Usage: see ``BenchmarkOptions/usage``.
@main
struct RelayBenchmark {
    static func main() async throws {
        let options: BenchmarkOptions
        do {
            options = try BenchmarkOptions.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            print("\(error)\n\(BenchmarkOptions.usage)")
            exit(2)
        }
        guard let clusterURL = ProcessInfo.processInfo.environment["OUTBOX_BRIDGE_TEST_DATABASE_URL"] else {
            print("OUTBOX_BRIDGE_TEST_DATABASE_URL is not set; run scripts/bench-relay.sh")
            exit(2)
        }
        let clock = ContinuousClock()
        let started = clock.now
        let checkout = URL(fileURLWithPath: options.bridge).resolvingSymlinksInPath()
            .deletingLastPathComponent().appendingPathComponent("../../..").standardized
        let bench = try await BenchmarkEnvironment.create(
            clusterURL: clusterURL, sql: checkout.appendingPathComponent("sql"), batchSize: options.batchSize)
        let peers = options.peers ?? checkout.appendingPathComponent("scripts/peers").path
        let bridge = Contestant(name: "OutboxBridge (`outbox-bridge run`)",
                                commands: [bench.bridgeCommand(options.bridge)], marksAfterAck: true)
        let bridgePair = Contestant(name: "OutboxBridge, two instances (CPU and RSS summed)",
                                    commands: [bench.bridgeCommand(options.bridge), bench.bridgeCommand(options.bridge)],
                                    marksAfterAck: true)
        let batchRelay = Contestant(name: "batch relay (Python, `batch_relay.py`)",
                                    commands: [[options.python, peers + "/batch_relay.py"] + bench.peerArguments],
                                    marksAfterAck: true)
        let articleRelay = Contestant(name: "article relay (Python, `article_relay.py`)",
                                      commands: [[options.python, peers + "/article_relay.py"] + bench.peerArguments],
                                      marksAfterAck: false)

        let machine = "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpuModel())), "
            + "\(ProcessInfo.processInfo.physicalMemory >> 30) GiB; \(try await bench.postgresDescription()); "
            + "librdkafka's mock cluster in the benchmark's process"
        print("machine: \(machine)\n")

        // (a) and (d): drain of a committed backlog.
        print("drain: \(options.events) events from \(options.tenants) tenants, batches of \(options.batchSize)")
        func fillBacklog() async throws { try await bench.fillBacklog(events: options.events, tenants: options.tenants) }
        try await fillBacklog()
        let postgresLimit = try await bench.postgresOnlyDrain()
        print(String(format: "  PostgreSQL only (claim + mark, no Kafka): %8.0f events/s", postgresLimit))
        try await fillBacklog()
        let kafkaLimit = try await bench.kafkaOnlyProduce()
        print(String(format: "  librdkafka only (same records, no PostgreSQL): %8.0f events/s", kafkaLimit))
        var drains: [(label: String, result: DrainResult)] = []
        for (contestant, budget) in [(bridge, nil), (batchRelay, nil), (articleRelay, Duration.seconds(options.articleSeconds)),
                                     (bridgePair, nil)] {
            try await fillBacklog()
            let result = try await bench.drain(contestant, expected: options.events, budget: budget)
            let label = contestant.name + (budget == nil ? "" : ", \(options.articleSeconds) s budget")
            print(String(format: "  %@: %8.0f events/s  (%d events in %.1f s, %.2f CPU s, peak RSS %.1f MiB; %@)",
                         label, result.rate, result.processed, result.seconds, result.cpuSeconds, result.peakRSSKiB.mebibytes,
                         result.counts.perEvent(result.processed)))
            drains.append((label, result))
        }
        let bridgeDrain = drains[0].result, batchDrain = drains[1].result
        let articleDrain = drains[2].result, pairDrain = drains[3].result

        // (b) and (c): latency, with one consumer reading everything the relays publish.
        print("\nlatency: commit (benchmark's clock after the autocommit DDL returns) → record read by an independent"
            + " consumer in the benchmark (fetch.wait.max.ms=1); also → processed_at for relays that mark after the ack."
            + " DDL in \(options.writers * DDLWorkload.tenantsPerWriter) tenant schemas; steady load from"
            + " \(options.writers) writer connections on a fixed schedule, \(options.graceSeconds) s grace after it")
        var loads: [DDLLoad] = []
        if options.samples > 0 { loads.append(.idle(samples: options.samples)) }
        if options.steadySeconds > 0 { loads += options.rates.map { .steady(perSecond: $0, seconds: options.steadySeconds) } }
        var latencyRows: [(relay: String, result: DDLResult)] = []
        var floor: LatencyDistribution?
        if !loads.isEmpty {
            let arrivals = try await KafkaArrivals.start(bootstrapServers: bench.broker.bootstrapServers, topic: BenchmarkEnvironment.topic)
            if options.samples > 0 {
                floor = try await arrivals.measureFloor(samples: options.samples, idlePause: DDLWorkload.idlePause)
                print("  librdkafka only (produce → read, one record at a time): \(floor!.summary) ms")
            }
            let workload = DDLWorkload(
                environment: bench, writers: try await bench.connect(count: options.writers), arrivals: arrivals,
                grace: .seconds(options.graceSeconds))
            for load in loads {
                for contestant in [bridge, batchRelay, articleRelay] {
                    let result = try await workload.measure(contestant, under: load)
                    print("  \(contestant.name), \(load.label): " + result.line)
                    latencyRows.append((contestant.name, result))
                }
            }
            await arrivals.stop()
        }

        // Memory: the bridge alone draining a large backlog, shipped defaults.
        var memory: DrainResult?
        if options.memoryBacklog > 0 {
            try await bench.fillBacklog(events: options.memoryBacklog, tenants: options.tenants)
            let result = try await bench.drain(bridge, expected: options.memoryBacklog)
            print(String(format: "\nmemory: outbox-bridge run draining %d events: peak RSS %.1f MiB, of which at most %.1f MiB"
                         + " anonymous (heap, malloc arenas, stacks; sampled), the rest mapped code (%.0f events/s, %.2f CPU s)",
                         options.memoryBacklog, result.peakRSSKiB.mebibytes, result.sampledPeakAnonymousKiB.mebibytes,
                         result.rate, result.cpuSeconds))
            memory = result
        }
        try await bench.drop()

        // The tables, ready to paste into the README.
        print("\nmachine: \(machine)")
        print("\n| relay (drain of \(options.events.grouped) events, \(options.tenants.grouped) tenants) | events/s | CPU s | CPU µs/event | peak RSS"
            + " | context switches, instructions per event |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for (label, result) in drains {
            print(String(format: "| %@ | %.0f | %.2f | %.1f | %.1f MiB | %@ |", label, result.rate, result.cpuSeconds,
                         result.cpuSeconds * 1e6 / Double(max(result.processed, 1)), result.peakRSSKiB.mebibytes,
                         result.counts.perEvent(result.processed)))
        }
        print(String(format: "| PostgreSQL only (claim + mark, no Kafka) | %.0f | — | — | — | — |", postgresLimit))
        print(String(format: "| librdkafka only (produce + ack, no PostgreSQL) | %.0f | — | — | — | — |", kafkaLimit))

        if !latencyRows.isEmpty {
            print("\n| relay | DDL | achieved rate | commit → in Kafka, ms p50 / p99 / p99.9 | commit → marked, ms p50 / p99 / p99.9"
                + " | not in Kafka \(options.graceSeconds) s after | CPU s | peak RSS | context switches, instructions per event |")
            print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            if let floor {
                print("| librdkafka only (produce → read) | idle, \(floor.count) records | — | \(floor.summary) | — | — | — | — | — |")
            }
            for (relay, result) in latencyRows {
                print("| \(relay) | \(result.load.label) | \(result.achievedRate.map { String(format: "%.0f/s", $0) } ?? "—") | "
                    + "\(result.toKafka.summary) | \(result.toMarked?.summary ?? "— (marks before publishing)") | "
                    + "\(result.toKafka.notArrived.grouped) | \(String(format: "%.2f", result.cpuSeconds)) | "
                    + "\(String(format: "%.1f MiB", result.peakRSSKiB.mebibytes)) | \(result.counts.perEvent(result.statements)) |")
            }
        }

        print("\n| ratio | value | goal |")
        print("| --- | ---: | --- |")
        print(String(format: "| OutboxBridge / PostgreSQL-only limit (drain) | %.2f | >= 0.75 |", bridgeDrain.rate / postgresLimit))
        print(String(format: "| OutboxBridge / batch relay (drain) | %.1f | >= 3 |", bridgeDrain.rate / batchDrain.rate))
        print(String(format: "| OutboxBridge / article relay (drain) | %.0f | |", bridgeDrain.rate / articleDrain.rate))
        print(String(format: "| OutboxBridge / librdkafka-only limit (drain) | %.2f | |", bridgeDrain.rate / kafkaLimit))
        print(String(format: "| two OutboxBridge instances / one (drain) | %.2f | |", pairDrain.rate / bridgeDrain.rate))
        func latencyResult(_ relay: Contestant, _ load: DDLLoad) -> DDLResult? {
            latencyRows.first { $0.relay == relay.name && $0.result.load == load }?.result
        }
        let idle = DDLLoad.idle(samples: options.samples)
        if let bridgeIdle = latencyResult(bridge, idle), let bridgeP99 = bridgeIdle.toKafka.percentile(0.99) {
            print("| OutboxBridge idle commit → in Kafka p99 | \(bridgeIdle.toKafka.percentileText(0.99)) ms | < 5 ms |")
            if let marked = bridgeIdle.toMarked {
                print("| OutboxBridge idle commit → marked p99 (after the ack) | \(marked.percentileText(0.99)) ms | |")
            }
            for peer in [batchRelay, articleRelay] {
                guard let peerP99 = latencyResult(peer, idle)?.toKafka.percentile(0.99) else { continue }
                print(String(format: "| %@ / OutboxBridge, idle p99 in Kafka | %@%.1f | |", peer.name, peerP99.arrived ? "" : "≥ ",
                             peerP99.milliseconds / bridgeP99.milliseconds))
            }
        }
        for rate in options.steadySeconds > 0 ? options.rates : [] {
            guard let result = latencyResult(bridge, .steady(perSecond: rate, seconds: options.steadySeconds)) else { continue }
            print("| OutboxBridge at \(rate.grouped)/s (achieved \(String(format: "%.0f/s", result.achievedRate ?? 0))): "
                + "commit → in Kafka p99 | \(result.toKafka.percentileText(0.99)) ms | |")
        }
        if let memory {
            print(String(format: "| OutboxBridge peak RSS draining a %@-event backlog (shipped defaults) | %.1f MiB | < 64 MiB |",
                         options.memoryBacklog.grouped, memory.peakRSSKiB.mebibytes))
            print(String(format: "| OutboxBridge peak RSS, %@ vs %@ backlog | %.1f vs %.1f MiB | bounded by batch size |",
                         options.memoryBacklog.grouped, options.events.grouped, memory.peakRSSKiB.mebibytes,
                         bridgeDrain.peakRSSKiB.mebibytes))
        }
        print(String(format: "\nbenchmark took %.0f s", started.duration(to: clock.now).seconds))
    }

    /// The CPU's model name from /proc/cpuinfo, for the machine line.
    private static func cpuModel() -> String {
        let info = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        let line = info.split(separator: "\n").first { $0.hasPrefix("model name") }
        return line.flatMap { $0.split(separator: ":", maxSplits: 1).last }.map { $0.trimmingCharacters(in: .whitespaces) }
            ?? "unknown CPU"
    }
}

/// The command line. Every option has a default, so the bare command is the full run.
struct BenchmarkOptions {
    static let usage = """
        usage: relay-benchmark BRIDGE_BINARY [--events 200000] [--tenants 1000] [--batch-size 1000] [--article-seconds 30]
                               [--samples 1000] [--steady-seconds 60] [--rates 100,1000] [--writers 4] [--grace-seconds 5]
                               [--memory-backlog 1000000] [--peers DIR] [--python /usr/bin/python3]
          --samples 0, --steady-seconds 0 and --memory-backlog 0 skip those workloads.
        """

    var bridge = ""
    /// Workload (a): the committed backlog each contestant drains.
    var events = 200_000
    var tenants = 1000
    /// The bridge's claim batch (its shipped default is 1,000).
    var batchSize = 1000
    /// The article relay drains for this long at most.
    var articleSeconds = 30
    /// Workload (b): single DDL statements at idle, per relay.
    var samples = 1000
    /// Workload (c): how long each steady rate runs, per relay.
    var steadySeconds = 60
    var rates = [100, 1000]
    /// DDL connections for the steady load; one cannot reach 1,000 statements/s on 2 cores.
    var writers = 4
    /// After the last statement of a DDL workload, how long a relay may take to publish it.
    var graceSeconds = 5
    /// Events in the backlog whose drain measures the bridge's peak memory.
    var memoryBacklog = 1_000_000
    var peers: String?
    var python = "/usr/bin/python3"

    private static var integerOptions: [String: WritableKeyPath<BenchmarkOptions, Int>] { [
        "--events": \.events, "--tenants": \.tenants, "--batch-size": \.batchSize, "--article-seconds": \.articleSeconds,
        "--samples": \.samples, "--steady-seconds": \.steadySeconds, "--writers": \.writers,
        "--grace-seconds": \.graceSeconds, "--memory-backlog": \.memoryBacklog,
    ] }

    static func parse(_ arguments: [String]) throws -> BenchmarkOptions {
        guard let bridge = arguments.first, !bridge.hasPrefix("--") else { throw BenchmarkFailure("no BRIDGE_BINARY given") }
        var options = BenchmarkOptions()
        options.bridge = bridge
        var rest = arguments.dropFirst()
        while let name = rest.popFirst() {
            guard let value = rest.popFirst() else { throw BenchmarkFailure("\(name) needs a value") }
            if let field = integerOptions[name] {
                guard let number = Int(value), number >= 0 else { throw BenchmarkFailure("\(name) takes a whole number, not \(value)") }
                options[keyPath: field] = number
            } else if name == "--rates" {
                options.rates = try value.split(separator: ",").map { rate in
                    guard let number = Int(rate), number > 0 else { throw BenchmarkFailure("--rates takes positive numbers, not \(rate)") }
                    return number
                }
            } else if name == "--peers" {
                options.peers = value
            } else if name == "--python" {
                options.python = value
            } else {
                throw BenchmarkFailure("unknown option \(name)")
            }
        }
        guard options.writers > 0, options.batchSize > 0, options.tenants > 0 else {
            throw BenchmarkFailure("--writers, --batch-size and --tenants must be at least 1")
        }
        return options
    }
}

extension DDLResult {
    /// The progress line printed as each measurement finishes.
    var line: String {
        var parts = ["\(statements) statements"]
        if let achievedRate { parts.append(String(format: "achieved %.0f/s (writers up to %.0f ms behind schedule)",
                                                  achievedRate, worstWriterLag.seconds * 1000)) }
        parts.append("commit → in Kafka \(toKafka.summary) ms")
        if let toMarked { parts.append("→ marked \(toMarked.summary) ms") }
        if toKafka.notArrived > 0 { parts.append("\(toKafka.notArrived) not in Kafka at the end") }
        parts.append(String(format: "%.2f CPU s, peak RSS %.1f MiB", cpuSeconds, peakRSSKiB.mebibytes))
        parts.append(counts.perEvent(statements))
        return parts.joined(separator: ", ")
    }
}

/// Prints a line and flushes it, so a long run's results show as they are measured also when the
/// output goes to a file (stdout is then fully buffered, and a run stopped midway would show
/// nothing). Shadows `Swift.print` in this module; Swift 6 does not let us `setvbuf(stdout)`.
func print(_ line: String) {
    Swift.print(line)
    fflush(nil)
}

extension Int {
    var mebibytes: Double { Double(self) / 1024 }
    /// With thousands separators: 1,000,000.
    var grouped: String { formatted(.number.locale(Locale(identifier: "en_US"))) }
}
