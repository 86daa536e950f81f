import Foundation

/// Everything one run measured, by contestant name, and the tables drawn from more than one
/// workload: instructions per event (callgrind) and issue 13's goals, before/after.
struct RunResults {
    let options: BenchmarkOptions
    let batchRelay: Contestant
    var postgresLimit = 0.0
    var drains: [String: DrainResult] = [:]
    var latencyRows: [(relay: String, result: DDLResult)] = []
    var memory: [String: DrainResult] = [:]
    var callgrind: [String: CallgrindWorkload.Result] = [:]

    func latency(_ relay: String, _ load: DDLLoad) -> DDLResult? {
        latencyRows.first { $0.relay == relay && $0.result.load == load }?.result
    }

    /// Instructions per event from the callgrind workload, beside the same relays' context
    /// switches per event from perf in the idle and drain workloads.
    func printCallgrindTable() {
        guard !callgrind.isEmpty else { return }
        print("\n| relay (callgrind: \(CallgrindWorkload.idleSeconds) s idle, \(options.callgrindSamples) single events,"
            + " drain of \(options.callgrindBacklog.grouped)) | instructions/s idle | instructions per single event"
            + " | instructions per drained event | context switches per event, idle / drain (perf) |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for (relay, result) in callgrind.sorted(by: { $0.key < $1.key }) {
            let idleSwitches = latency(relay, .idle(samples: options.samples)).flatMap { result in
                result.counts.contextSwitches.map { Double($0) / Double(max(result.statements, 1)) }
            }
            let drainSwitches = drains[relay].flatMap { result in
                result.counts.contextSwitches.map { Double($0) / Double(max(result.processed, 1)) }
            }
            let switches = [idleSwitches, drainSwitches].map { $0.map { String(format: "%.1f", $0) } ?? "n/a" }
            print(String(format: "| %@ | %@ | %@ | %@ | %@ |", relay, Int(result.idlePerSecond.rounded()).grouped,
                         Int(result.singleEvent.rounded()).grouped, Int(result.drainEvent.rounded()).grouped,
                         switches.joined(separator: " / ")))
        }
    }

    /// One figure a goal names, for one build of the bridge; `exact == false` makes it a lower
    /// bound (a latency percentile that fell on an event that never arrived).
    private struct Figure {
        let value: Double
        var exact = true
    }

    private struct Goal {
        let name: String
        let target: String
        let isMet: ((Double) -> Bool)?
        let format: String
        let figure: (String) -> Figure?
    }

    /// Issue 13's goals, one row each, for the bridge and (with --baseline-bridge) the baseline
    /// build measured in the same run, with after/before; every ratio is against the same run's
    /// batch relay or PostgreSQL-only limit.
    func printIssue13Goals(bridges: [Contestant]) {
        var goals: [Goal] = []
        func cpuPerEvent(_ result: DDLResult) -> Double { result.cpuSeconds / Double(max(result.statements, 1)) }
        func switchesPerEvent(_ counts: StableCounters.Counts, _ events: Int) -> Figure? {
            counts.contextSwitches.map { Figure(value: Double($0) / Double(max(events, 1))) }
        }
        let idle = DDLLoad.idle(samples: options.samples)
        let steady = options.steadySeconds > 0 ? options.rates.map { DDLLoad.steady(perSecond: $0, seconds: options.steadySeconds) } : []
        for load in steady {
            guard case .steady(let rate, _) = load, let batch = latency(batchRelay.name, load) else { continue }
            goals.append(Goal(name: "CPU per event / batch relay's, \(rate.grouped)/s", target: "≤ 0.5", isMet: { $0 <= 0.5 },
                              format: "%.2f", figure: { latency($0, load).map { Figure(value: cpuPerEvent($0) / cpuPerEvent(batch)) } }))
        }
        if let batch = drains[batchRelay.name] {
            let batchPerEvent = batch.cpuSeconds / Double(max(batch.processed, 1))
            goals.append(Goal(name: "CPU per event / batch relay's, drain of \(options.events.grouped)", target: "≤ 0.5",
                              isMet: { $0 <= 0.5 }, format: "%.2f", figure: { relay in
                                  drains[relay].map { Figure(value: $0.cpuSeconds / Double(max($0.processed, 1)) / batchPerEvent) }
                              }))
        }
        for load in steady {
            guard case .steady(let rate, _) = load else { continue }
            let isGoal = rate == 1000
            goals.append(Goal(name: "commit → in Kafka p99 at \(rate.grouped)/s, ms", target: isGoal ? "≤ 10" : "",
                              isMet: isGoal ? { $0 <= 10 } : nil, format: "%.2f", figure: { relay in
                                  latency(relay, load)?.toKafka.percentile(0.99).map { Figure(value: $0.milliseconds, exact: $0.arrived) }
                              }))
        }
        if let batchP99 = latency(batchRelay.name, idle)?.toKafka.percentile(0.99) {
            goals.append(Goal(name: "idle p99 / batch relay's idle p99 (\(LatencyDistribution.format(milliseconds: batchP99.milliseconds)) ms)",
                              target: "< 1", isMet: { $0 < 1 }, format: "%.2f", figure: { relay in
                                  latency(relay, idle)?.toKafka.percentile(0.99).map {
                                      Figure(value: $0.milliseconds / batchP99.milliseconds, exact: $0.arrived)
                                  }
                              }))
        }
        goals.append(Goal(name: "drain / PostgreSQL-only limit (\(Int(postgresLimit.rounded()).grouped) events/s)", target: "≥ 0.9",
                          isMet: { $0 >= 0.9 }, format: "%.2f", figure: { drains[$0].map { Figure(value: $0.rate / postgresLimit) } }))
        if options.memoryBacklog > 0 {
            goals.append(Goal(name: "peak RSS draining \(options.memoryBacklog.grouped) events, MiB", target: "< 48",
                              isMet: { $0 < 48 }, format: "%.1f", figure: { memory[$0].map { Figure(value: $0.peakRSSKiB.mebibytes) } }))
        }
        for load in [idle] + steady {
            goals.append(Goal(name: "context switches per event, \(load.label)", target: "", isMet: nil, format: "%.1f", figure: { relay in
                latency(relay, load).flatMap { switchesPerEvent($0.counts, $0.statements) }
            }))
        }
        goals.append(Goal(name: "context switches per event, drain", target: "", isMet: nil, format: "%.2f", figure: { relay in
            drains[relay].flatMap { switchesPerEvent($0.counts, $0.processed) }
        }))
        goals.append(Goal(name: "instructions per event, single events", target: "", isMet: nil, format: "%.0f", figure: { relay in
            latency(relay, idle).flatMap { result in result.counts.instructions.map { Figure(value: Double($0) / Double(max(result.statements, 1))) } }
                ?? callgrind[relay].map { Figure(value: $0.singleEvent) }
        }))
        goals.append(Goal(name: "instructions per event, drain", target: "", isMet: nil, format: "%.0f", figure: { relay in
            drains[relay].flatMap { result in result.counts.instructions.map { Figure(value: Double($0) / Double(max(result.processed, 1))) } }
                ?? callgrind[relay].map { Figure(value: $0.drainEvent) }
        }))

        let columns = bridges.count > 1 ? ["before (baseline)", "after", "after / before"] : ["OutboxBridge"]
        print("\n| issue 13 goal (same run) | target | " + columns.joined(separator: " | ") + " |")
        print("| --- | --- |" + String(repeating: " ---: |", count: columns.count))
        let ordered = bridges.count > 1 ? [bridges[1], bridges[0]] : bridges
        for goal in goals {
            let figures = ordered.map { goal.figure($0.name) }
            var cells = figures.map { figure -> String in
                guard let figure else { return "—" }
                let met = goal.isMet.map { $0(figure.value) && figure.exact ? " ✓" : " ✗" } ?? ""
                return (figure.exact ? "" : "≥ ") + String(format: goal.format, figure.value) + met
            }
            if figures.count == 2 {
                // A figure that rounds to zero gives no ratio worth printing (a drain's
                // switches per event are 0.00-0.10).
                let before = figures[0].flatMap { String(format: goal.format, $0.value) == String(format: goal.format, 0.0) ? nil : $0 }
                cells.append(before.flatMap { before in
                    figures[1].map { String(format: "%.2f", $0.value / before.value) }
                } ?? "—")
            }
            print("| \(goal.name) | \(goal.target) | " + cells.joined(separator: " | ") + " |")
        }
    }
}
