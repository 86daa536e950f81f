import Foundation

/// Seconds since the epoch on CLOCK_REALTIME: the one clock every latency here is read on. The
/// DDL writers and the Kafka consumer live in the benchmark's process and PostgreSQL's
/// `processed_at` comes from the same machine's kernel clock, so commit, arrival and marking
/// times can be subtracted from each other.
func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

/// Latencies of a set of events, some of which may not have arrived when observation ended.
///
/// An event that never arrived is not dropped (that would flatter a relay that falls behind):
/// its latency counts as at least the time from its commit to the end of observation, and a
/// percentile that lands on such an event is printed as "≥ N".
struct LatencyDistribution {
    /// One event's latency in milliseconds; `arrived == false` makes it a lower bound.
    struct Sample {
        let milliseconds: Double
        let arrived: Bool
    }

    private let sorted: [Sample]

    init(_ samples: [Sample]) {
        sorted = samples.sorted { $0.milliseconds < $1.milliseconds }
    }

    /// Builds the distribution from commit and arrival times (seconds on ``wallClockSeconds()``);
    /// an arrival missing or later than `observedUntil` is counted as not arrived.
    init(committed: [Double], arrived: [Double?], observedUntil: Double) {
        self.init(zip(committed, arrived).map { committedAt, arrivedAt in
            if let arrivedAt, arrivedAt <= observedUntil {
                Sample(milliseconds: (arrivedAt - committedAt) * 1000, arrived: true)
            } else {
                Sample(milliseconds: (observedUntil - committedAt) * 1000, arrived: false)
            }
        })
    }

    var count: Int { sorted.count }
    var notArrived: Int { sorted.count(where: { !$0.arrived }) }

    /// The sample at `fraction` (0.5, 0.99, 0.999) by the nearest-rank rule on the lower side,
    /// as the benchmark always reported it: with 1,000 samples p99.9 is the largest.
    func percentile(_ fraction: Double) -> Sample? {
        guard !sorted.isEmpty else { return nil }
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }

    /// One percentile in milliseconds, "≥ N" when it falls on an event that never arrived.
    func percentileText(_ fraction: Double) -> String {
        guard let sample = percentile(fraction) else { return "—" }
        return (sample.arrived ? "" : "≥ ") + Self.format(milliseconds: sample.milliseconds)
    }

    /// "p50 / p99 / p99.9" in milliseconds, e.g. `0.71 / 2.40 / 9.80` or `3.10 / ≥ 41,200 / ≥ 58,900`.
    var summary: String {
        [0.5, 0.99, 0.999].map(percentileText).joined(separator: " / ")
    }

    /// Two decimals below 100 ms, whole milliseconds with thousands separators above.
    static func format(milliseconds: Double) -> String {
        milliseconds < 100 ? String(format: "%.2f", milliseconds) : Int(milliseconds.rounded()).grouped
    }
}
