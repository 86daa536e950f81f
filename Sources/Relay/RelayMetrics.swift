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

/// Whether the relay is keeping up, for `/health/ready`: the loop records each turn that went
/// through (PostgreSQL answered); a loop that is stuck or failing stops recording.
public final class RelayHealth: Sendable {
    private let lastTurn = Mutex<ContinuousClock.Instant?>(nil)

    public init() {}

    func recordTurn() {
        lastTurn.withLock { $0 = .now }
    }

    /// Whether a turn succeeded within `window`.
    public func madeProgress(within window: Duration) -> Bool {
        lastTurn.withLock { $0.map { ContinuousClock.now - $0 < window } ?? false }
    }
}
