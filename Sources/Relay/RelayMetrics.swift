import CoreMetrics
import Metrics
import Outbox
import Synchronization

/// The relay's metrics, through swift-metrics so the backend is the application's choice (the
/// command line exports them in Prometheus format).
struct RelayMetrics: Sendable {
    /// From handing a record to the producer to its acknowledgement.
    let publishToAck = Timer(label: "outbox_publish_to_ack_seconds", preferredDisplayUnit: .seconds)
    /// From the row's insert (inside the DDL's transaction) to the acknowledgement, by the
    /// database's clock and this host's: comparable only when the two agree.
    let commitToAck = Timer(label: "outbox_commit_to_ack_seconds", preferredDisplayUnit: .seconds)
    let retries = Counter(label: "outbox_retries_total")
    let deadLetters = Counter(label: "outbox_dead_letters_total")
    let notifications = Counter(label: "outbox_wakeups_total", dimensions: [("source", "notify")])
    let polls = Counter(label: "outbox_wakeups_total", dimensions: [("source", "poll")])
    let listenReconnects = Counter(label: "outbox_listen_reconnects_total")

    /// Round trips by statement (claims, outcome writes), and the rows they carried: their
    /// ratio is how many events a round trip carries, which `relay.turnIntervalSeconds` raises
    /// under load.
    let claims = Counter(label: "outbox_relay_round_trips_total", dimensions: [("statement", "claim")])
    let claimedRows = Counter(label: "outbox_relay_round_trip_rows_total", dimensions: [("statement", "claim")])
    let writes = Counter(label: "outbox_relay_round_trips_total", dimensions: [("statement", "write")])
    let writtenRows = Counter(label: "outbox_relay_round_trip_rows_total", dimensions: [("statement", "write")])

    func claimed(rows: Int) {
        claims.increment()
        claimedRows.increment(by: rows)
    }

    func wrote(rows: Int) {
        writes.increment()
        writtenRows.increment(by: rows)
    }

    func notified() { notifications.increment() }
    func polled() { polls.increment() }
    func listenReconnected() { listenReconnects.increment() }

    /// Records what one group of acknowledgements came to. Published counts are labelled by
    /// the topic template, never by the topic it resolved to: a `{tenant}` template would give
    /// every tenant a series of its own, and the registry never forgets one.
    func record(_ resolution: Resolution, topicTemplate: String, deadLetterTopic: String) {
        published(resolution.delivered.count, topic: topicTemplate, outcome: "delivered")
        published(resolution.retries.count, topic: topicTemplate, outcome: "retry")
        published(resolution.deadLetters.count, topic: deadLetterTopic, outcome: "dead_letter")
        retries.increment(by: resolution.retries.count)
        deadLetters.increment(by: resolution.deadLetters.count)
        for latency in resolution.latencies {
            publishToAck.recordSeconds(latency.publishToAck)
            commitToAck.recordSeconds(max(0, latency.commitToAck))
        }
    }

    /// Counts published events by topic (template or dead-letter topic) and outcome
    /// (`delivered`, `retry`, `dead_letter`).
    private func published(_ count: Int, topic: String, outcome: String) {
        guard count > 0 else { return }
        Counter(label: "outbox_events_published_total", dimensions: [("topic", topic), ("outcome", outcome)])
            .increment(by: count)
    }
}

/// Whether the relay is making real progress, for `/health/ready`. Only work that completed
/// counts: a claim query that returned (rows or none: none proves nothing claimable waits), a
/// delivery report written back. A loop turn that touched nothing, such as one that found the
/// in-flight ledger full, proves nothing and records nothing.
public final class RelayHealth: Sendable {
    /// When readiness fails.
    public struct Bounds: Sendable {
        /// Longest a delivery report may wait to be written back to the outbox. Default: 10 s.
        public var markDelay: Duration = .seconds(10)
        /// Longest the relay may go without completing a claim: beyond it a pending row may
        /// wait unclaimed (the claim connection hangs, or the ledger never frees room). An idle
        /// relay claims at least every `min(pollInterval, leaseDuration / 5)`, so this must be
        /// longer than that. Default: 10 s.
        public var claimStall: Duration = .seconds(10)
        /// How long PostgreSQL calls, or Kafka deliveries, may keep failing before the relay
        /// counts as not ready. Default: 30 s.
        public var failingFor: Duration = .seconds(30)

        public init() {}
    }

    private struct State {
        var lastClaim: ContinuousClock.Instant?
        /// Delivery reports not yet known to be written back, by outbox id.
        var reportedAt: [Int64: ContinuousClock.Instant] = [:]
        var postgresFailingSince: ContinuousClock.Instant?
        var kafkaFailingSince: ContinuousClock.Instant?
        /// The rows still in flight; a report whose row left it was written back.
        var inFlight: (@Sendable () -> [Int64])?
    }

    private let state = Mutex(State())
    private let bounds: Bounds

    public init(bounds: Bounds = Bounds()) {
        self.bounds = bounds
    }

    func watch(inFlight: @escaping @Sendable () -> [Int64]) {
        state.withLock { $0.inFlight = inFlight }
    }

    /// A claim query returned.
    func claimCompleted() {
        state.withLock { $0.lastClaim = .now }
    }

    /// A call to PostgreSQL on the relay's path succeeded or failed.
    func postgresAnswered(_ succeeded: Bool) {
        state.withLock { state in
            if succeeded {
                state.postgresFailingSince = nil
            } else if state.postgresFailingSince == nil {
                state.postgresFailingSince = .now
            }
        }
    }

    /// A delivery report arrived (on librdkafka's thread): its row now waits to be written
    /// back. A failed delivery extends Kafka's failing streak; a success ends it.
    func delivered(id: Int64, succeeded: Bool) {
        let now = ContinuousClock.now
        state.withLock { state in
            state.reportedAt[id] = state.reportedAt[id] ?? now
            if succeeded {
                state.kafkaFailingSince = nil
            } else if state.kafkaFailingSince == nil {
                state.kafkaFailingSince = now
            }
        }
    }

    /// The rows' outcomes are in the outbox: their reports no longer wait. Told by the engine
    /// with each resolution it writes, so the reports kept stay bounded by the rows in flight.
    func writtenBack(_ ids: [Int64]) {
        state.withLock { state in
            guard !state.reportedAt.isEmpty else { return }
            for id in ids { state.reportedAt[id] = nil }
        }
    }

    /// Forgets, before a verdict, the reports whose rows are no longer in flight. The engine
    /// tells `writtenBack` of every row it resolves; this keeps a report whose row left the
    /// ledger any other way from failing readiness for ever.
    func forgetWrittenBack() {
        guard let inFlight = state.withLock({ $0.reportedAt.isEmpty ? nil : $0.inFlight }) else { return }
        let stillInFlight = Set(inFlight())
        state.withLock { state in
            state.reportedAt = state.reportedAt.filter { stillInFlight.contains($0.key) }
        }
    }

    /// How many events this relay has handed to Kafka and not yet marked, for the status page.
    public var inFlightCount: Int {
        guard let inFlight = state.withLock({ $0.inFlight }) else { return 0 }
        return inFlight().count
    }

    /// Why the relay is not ready, or `nil` when it is.
    public func problem() -> String? {
        forgetWrittenBack()
        let now = ContinuousClock.now
        return state.withLock { state -> String? in
            if let oldest = state.reportedAt.values.min(), now - oldest > bounds.markDelay {
                return "\(state.reportedAt.count) acknowledged records waited longer than \(bounds.markDelay) to be marked"
            }
            if let since = state.postgresFailingSince, now - since > bounds.failingFor {
                return "PostgreSQL calls have kept failing for \(now - since)"
            }
            if let since = state.kafkaFailingSince, now - since > bounds.failingFor {
                return "Kafka deliveries have kept failing for \(now - since)"
            }
            guard let lastClaim = state.lastClaim, now - lastClaim <= bounds.claimStall else {
                return "the relay made no progress: no claim completed in the last \(bounds.claimStall) (PostgreSQL unreachable or the loop stuck)"
            }
            return nil
        }
    }
}
