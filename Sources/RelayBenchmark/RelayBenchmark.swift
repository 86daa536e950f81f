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
        let sql = checkout.appendingPathComponent("sql")
        guard FileManager.default.fileExists(atPath: sql.path) else {
            // The migrations come from the checkout the bridge was built in, three folders up.
            print("no sql/ folder at \(sql.path): pass a bridge built in a checkout (.build/<triple>/release/outbox-bridge)")
            exit(2)
        }
        let bench = try await BenchmarkEnvironment.create(clusterURL: clusterURL, sql: sql, batchSize: options.batchSize)
        let peers = options.peers ?? checkout.appendingPathComponent("scripts/peers").path
        let bridge = Contestant(name: "OutboxBridge (`outbox-bridge run`)",
                                commands: [bench.bridgeCommand(options.bridge, options.bridgeOptions)], marksAfterAck: true)
        // The same run's other build of the bridge (--baseline-bridge), for before/after ratios.
        let baseline = options.baselineBridge.map {
            Contestant(name: "OutboxBridge baseline (`\($0)`)", commands: [bench.bridgeCommand($0, options.bridgeOptions)], marksAfterAck: true)
        }
        let bridgePair = Contestant(name: "OutboxBridge, two instances (CPU and RSS summed)",
                                    commands: [bench.bridgeCommand(options.bridge, options.bridgeOptions), bench.bridgeCommand(options.bridge, options.bridgeOptions)],
                                    marksAfterAck: true)
        let batchRelay = Contestant(name: "batch relay (Python, `batch_relay.py`)",
                                    commands: [[options.python, peers + "/batch_relay.py"] + bench.peerArguments],
                                    marksAfterAck: true)
        let articleRelay = Contestant(name: "article relay (Python, `article_relay.py`)",
                                      commands: [[options.python, peers + "/article_relay.py"] + bench.peerArguments],
                                      marksAfterAck: false)
        let bridges = [bridge] + (baseline.map { [$0] } ?? [])

        let machine = "\(ProcessInfo.processInfo.activeProcessorCount) cores (\(cpuModel())), "
            + "\(ProcessInfo.processInfo.physicalMemory >> 30) GiB; \(try await bench.postgresDescription()); "
            + "librdkafka's mock cluster in the benchmark's process"
        print("machine: \(machine)")
        let wakeUps = [
            (apart: 1, cost: await WakeUpCost.measure(sleeping: .milliseconds(1), count: 1000)),
            (apart: 5, cost: await WakeUpCost.measure(sleeping: .milliseconds(5), count: 300)),
        ]
        let wakeUpLine = "CPU per thread wake-up (nanosleep, one thread): "
            + wakeUps.map { String(format: "%.1f µs %d ms apart", $0.cost.seconds * 1e6, $0.apart) }.joined(separator: ", ")
        print("\(wakeUpLine)\n")
        var run = RunResults(options: options, batchRelay: batchRelay)

        // (a) and (d): drain of a committed backlog.
        print("drain: \(options.events) events from \(options.tenants) tenants, batches of \(options.batchSize)")
        func fillBacklog() async throws { try await bench.fillBacklog(events: options.events, tenants: options.tenants) }
        try await fillBacklog()
        run.postgresLimit = try await bench.postgresOnlyDrain()
        print(String(format: "  PostgreSQL only (claim + mark, no Kafka): %8.0f events/s", run.postgresLimit))
        try await fillBacklog()
        let kafkaLimit = try await bench.kafkaOnlyProduce()
        print(String(format: "  librdkafka only (same records, no PostgreSQL): %8.0f events/s", kafkaLimit))
        var drains: [(contestant: String, label: String, result: DrainResult)] = []
        let drainContestants = bridges.map { ($0, Duration?.none) }
            + [(batchRelay, nil), (articleRelay, Duration.seconds(options.articleSeconds)), (bridgePair, nil)]
        for (contestant, budget) in drainContestants {
            try await fillBacklog()
            let result = try await bench.drain(contestant, expected: options.events, budget: budget)
            let label = contestant.name + (budget == nil ? "" : ", \(options.articleSeconds) s budget")
            print(String(format: "  %@: %8.0f events/s  (%d events in %.1f s, %.2f CPU s, peak RSS %.1f MiB; %@)",
                         label, result.rate, result.processed, result.seconds, result.cpuSeconds, result.peakRSSKiB.mebibytes,
                         result.counts.perEvent(result.processed)))
            drains.append((contestant.name, label, result))
            run.drains[contestant.name] = result
        }
        let bridgeDrain = run.drains[bridge.name]!, batchDrain = run.drains[batchRelay.name]!
        let articleDrain = run.drains[articleRelay.name]!, pairDrain = run.drains[bridgePair.name]!

        // (b) and (c): latency, with one consumer reading everything the relays publish.
        let writes = options.steadyWrites == .emit ? " writing domain events through emit() instead of DDL" : ""
        let tenantSchemas = options.writers * DDLWorkload.tenantsPerWriter
        print("\nlatency: commit (benchmark's clock after the autocommit DDL returns) → record read by an independent"
            + " consumer in the benchmark (fetch.wait.max.ms=1); also → processed_at for relays that mark after the ack."
            + " DDL in \(tenantSchemas) tenant schemas; steady load from \(options.writers) writer connections on a"
            + " fixed schedule\(writes), \(options.graceSeconds) s grace after it")
        var loads: [DDLLoad] = []
        if options.samples > 0 { loads.append(.idle(samples: options.samples)) }
        if options.steadySeconds > 0 { loads += options.rates.map { .steady(perSecond: $0, seconds: options.steadySeconds) } }
        var floor: LatencyDistribution?
        if !loads.isEmpty {
            let arrivals = try await KafkaArrivals.start(bootstrapServers: bench.broker.bootstrapServers, topic: BenchmarkEnvironment.topic)
            if options.samples > 0 {
                floor = try await arrivals.measureFloor(samples: options.samples, idlePause: DDLWorkload.idlePause)
                print("  librdkafka only (produce → read, one record at a time): \(floor!.summary) ms")
            }
            let workload = DDLWorkload(
                environment: bench, writers: try await bench.connect(count: options.writers), arrivals: arrivals,
                steadyWrites: options.steadyWrites, grace: .seconds(options.graceSeconds))
            for load in loads {
                for contestant in bridges + [batchRelay, articleRelay] {
                    let result = try await workload.measure(contestant, under: load)
                    print("  \(contestant.name), \(load.label): " + result.line)
                    run.latencyRows.append((contestant.name, result))
                }
            }
            await arrivals.stop()
        }

        // Instructions per event under callgrind, where perf has no instruction counter.
        if options.callgrindSamples > 0, !CallgrindWorkload.perfCountsInstructions() {
            if CallgrindWorkload.isAvailable {
                print("\ninstructions (callgrind; perf has no instruction counter here): \(CallgrindWorkload.idleSeconds) s idle,"
                    + " \(options.callgrindSamples) single events, a drain of \(options.callgrindBacklog); per event net of the idle rate")
                let workload = CallgrindWorkload(environment: bench, singleEvents: options.callgrindSamples,
                                                 drainEvents: options.callgrindBacklog)
                for contestant in bridges + [batchRelay] {
                    // A relay that cannot run under valgrind loses its figures, not the run.
                    do {
                        let result = try await workload.measure(contestant)
                        print(String(format: "  %@: %.0f instructions/s idle, %.0f per single event, %.0f per drained event",
                                     contestant.name, result.idlePerSecond, result.singleEvent, result.drainEvent))
                        run.callgrind[contestant.name] = result
                    } catch {
                        print("  \(contestant.name): no instruction counts (\(error))")
                    }
                }
            } else {
                print("\ninstructions: perf has no instruction counter here and valgrind, callgrind_control, cc or objcopy is missing")
            }
        }

        // Memory: each build of the bridge alone draining a large backlog, shipped defaults.
        if options.memoryBacklog > 0 {
            print("")
            for contestant in bridges {
                try await bench.fillBacklog(events: options.memoryBacklog, tenants: options.tenants)
                let result = try await bench.drain(contestant, expected: options.memoryBacklog)
                print(String(format: "memory: %@ draining %d events: peak RSS %.1f MiB, of which at most %.1f MiB"
                             + " anonymous (heap, malloc arenas, stacks; sampled), the rest mapped code (%.0f events/s, %.2f CPU s)",
                             contestant.name, options.memoryBacklog, result.peakRSSKiB.mebibytes,
                             result.sampledPeakAnonymousKiB.mebibytes, result.rate, result.cpuSeconds))
                run.memory[contestant.name] = result
            }
        }
        try await bench.drop()

        // The tables, ready to paste into the README.
        print("\nmachine: \(machine)\n\(wakeUpLine)")
        print("\n| relay (drain of \(options.events.grouped) events, \(options.tenants.grouped) tenants) | events/s | CPU s | CPU µs/event | peak RSS"
            + " | context switches, instructions per event |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for (contestant, label, result) in drains {
            let callgrind = run.callgrind[contestant]?.drainEvent
            print(String(format: "| %@ | %.0f | %.2f | %.1f | %.1f MiB | %@ |", label, result.rate, result.cpuSeconds,
                         result.cpuSeconds * 1e6 / Double(max(result.processed, 1)), result.peakRSSKiB.mebibytes,
                         result.counts.perEvent(result.processed, callgrind: callgrind)))
        }
        print(String(format: "| PostgreSQL only (claim + mark, no Kafka) | %.0f | — | — | — | — |", run.postgresLimit))
        print(String(format: "| librdkafka only (produce + ack, no PostgreSQL) | %.0f | — | — | — | — |", kafkaLimit))

        if !run.latencyRows.isEmpty {
            print("\n| relay | DDL | achieved rate | commit → in Kafka, ms p50 / p99 / p99.9 | commit → marked, ms p50 / p99 / p99.9"
                + " | not in Kafka \(options.graceSeconds) s after | CPU s | peak RSS | context switches, instructions per event |")
            print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
            if let floor {
                print("| librdkafka only (produce → read) | idle, \(floor.count) records | — | \(floor.summary) | — | — | — | — | — |")
            }
            for (relay, result) in run.latencyRows {
                let callgrind: Double? = if case .idle = result.load { run.callgrind[relay]?.singleEvent } else { nil }
                print("| \(relay) | \(result.load.label) | \(result.achievedRate.map { String(format: "%.0f/s", $0) } ?? "—") | "
                    + "\(result.toKafka.summary) | \(result.toMarked?.summary ?? "— (marks before publishing)") | "
                    + "\(result.toKafka.notArrived.grouped) | \(String(format: "%.2f", result.cpuSeconds)) | "
                    + "\(String(format: "%.1f MiB", result.peakRSSKiB.mebibytes)) | \(result.counts.perEvent(result.statements, callgrind: callgrind)) |")
            }
        }
        run.printCallgrindTable()

        print("\n| ratio | value | goal |")
        print("| --- | ---: | --- |")
        print(String(format: "| OutboxBridge / PostgreSQL-only limit (drain) | %.2f | >= 0.75 |", bridgeDrain.rate / run.postgresLimit))
        print(String(format: "| OutboxBridge / batch relay (drain) | %.1f | >= 3 |", bridgeDrain.rate / batchDrain.rate))
        print(String(format: "| OutboxBridge / article relay (drain) | %.0f | |", bridgeDrain.rate / articleDrain.rate))
        print(String(format: "| OutboxBridge / librdkafka-only limit (drain) | %.2f | |", bridgeDrain.rate / kafkaLimit))
        print(String(format: "| two OutboxBridge instances / one (drain) | %.2f | |", pairDrain.rate / bridgeDrain.rate))
        let idle = DDLLoad.idle(samples: options.samples)
        if let bridgeIdle = run.latency(bridge.name, idle), let bridgeP99 = bridgeIdle.toKafka.percentile(0.99) {
            print("| OutboxBridge idle commit → in Kafka p99 | \(bridgeIdle.toKafka.percentileText(0.99)) ms | < 5 ms |")
            if let marked = bridgeIdle.toMarked {
                print("| OutboxBridge idle commit → marked p99 (after the ack) | \(marked.percentileText(0.99)) ms | |")
            }
            for peer in [batchRelay, articleRelay] {
                guard let peerP99 = run.latency(peer.name, idle)?.toKafka.percentile(0.99) else { continue }
                print(String(format: "| %@ / OutboxBridge, idle p99 in Kafka | %@%.1f | |", peer.name, peerP99.arrived ? "" : "≥ ",
                             peerP99.milliseconds / bridgeP99.milliseconds))
            }
        }
        for rate in options.steadySeconds > 0 ? options.rates : [] {
            guard let result = run.latency(bridge.name, .steady(perSecond: rate, seconds: options.steadySeconds)) else { continue }
            print("| OutboxBridge at \(rate.grouped)/s (achieved \(String(format: "%.0f/s", result.achievedRate ?? 0))): "
                + "commit → in Kafka p99 | \(result.toKafka.percentileText(0.99)) ms | |")
        }
        if let memory = run.memory[bridge.name] {
            print(String(format: "| OutboxBridge peak RSS draining a %@-event backlog (shipped defaults) | %.1f MiB | < 64 MiB |",
                         options.memoryBacklog.grouped, memory.peakRSSKiB.mebibytes))
            print(String(format: "| OutboxBridge peak RSS, %@ vs %@ backlog | %.1f vs %.1f MiB | bounded by batch size |",
                         options.memoryBacklog.grouped, options.events.grouped, memory.peakRSSKiB.mebibytes,
                         bridgeDrain.peakRSSKiB.mebibytes))
        }
        run.printIssue13Goals(bridges: bridges)
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
                               [--memory-backlog 1000000] [--callgrind-samples 50] [--callgrind-backlog 2000]
                               [--baseline-bridge BINARY] [--bridge-option ARG]... [--peers DIR] [--python /usr/bin/python3]
                               [--steady-writes ddl|emit]
          --samples 0, --steady-seconds 0, --memory-backlog 0 and --callgrind-samples 0 skip those workloads.
          --baseline-bridge runs a second build of outbox-bridge as one more contestant in every bridge
          workload and ends with a before/after table of issue 13's goals from the same run.
          The callgrind workload runs only where perf has no instruction counter.
          --bridge-option adds one argument to every bridge command line (both builds), for experiments:
          --bridge-option --kafka-property=queue.buffering.max.kbytes=16384
          --steady-writes emit: the steady rates write domain events through emit() instead of DDL,
          which a small machine cannot write at 1,000/s beside a relay (the idle samples stay DDL).
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
    /// What the steady rates write (`--steady-writes`): DDL, or domain events through `emit()`.
    var steadyWrites = SteadyWrites.ddl
    /// DDL connections for the steady load; one cannot reach 1,000 statements/s on 2 cores.
    var writers = 4
    /// After the last statement of a DDL workload, how long a relay may take to publish it.
    var graceSeconds = 5
    /// Events in the backlog whose drain measures the bridge's peak memory.
    var memoryBacklog = 1_000_000
    /// Where perf counts no instructions: single events and the drained backlog of the
    /// callgrind workload, per relay.
    var callgrindSamples = 50
    var callgrindBacklog = 2000
    /// A second outbox-bridge binary (another revision) measured in the same run.
    var baselineBridge: String?
    /// More arguments for every `outbox-bridge run` (--bridge-option, repeatable).
    var bridgeOptions: [String] = []
    var peers: String?
    var python = "/usr/bin/python3"

    private static var integerOptions: [String: WritableKeyPath<BenchmarkOptions, Int>] { [
        "--events": \.events, "--tenants": \.tenants, "--batch-size": \.batchSize, "--article-seconds": \.articleSeconds,
        "--samples": \.samples, "--steady-seconds": \.steadySeconds, "--writers": \.writers,
        "--grace-seconds": \.graceSeconds, "--memory-backlog": \.memoryBacklog,
        "--callgrind-samples": \.callgrindSamples, "--callgrind-backlog": \.callgrindBacklog,
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
            } else if name == "--bridge-option" {
                options.bridgeOptions.append(value)
            } else if name == "--baseline-bridge" {
                options.baselineBridge = value
            } else if name == "--steady-writes" {
                guard let writes = SteadyWrites(rawValue: value) else {
                    throw BenchmarkFailure("--steady-writes takes ddl or emit, not \(value)")
                }
                options.steadyWrites = writes
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
