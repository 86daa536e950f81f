import Logging
import Synchronization

/// One info line per interval while the relay settles deliveries, so an operator reading the log
/// sees that it works without scraping `/metrics`: events delivered, retried and dead-lettered,
/// how many tenants they belong to, and the longest commit-to-ack lag among them. An idle relay
/// writes nothing; the line comes with the first outcome after the interval has passed.
final class RelayProgressLog: Sendable {
    private struct Totals {
        var delivered = 0
        var retries = 0
        var deadLetters = 0
        var tenants: Set<String?> = []
        var maxLagSeconds = 0.0
        var since = ContinuousClock.now
    }

    private let logger: Logger
    private let interval: Duration
    private let totals = Mutex(Totals())

    /// - Parameter interval: the shortest time between two lines. Default: 10 s.
    init(logger: Logger, interval: Duration = .seconds(10)) {
        self.logger = logger
        self.interval = interval
    }

    func record(_ resolution: Resolution) {
        let now = ContinuousClock.now
        let due: Totals? = totals.withLock { totals in
            totals.delivered += resolution.delivered.count
            totals.retries += resolution.retries.count
            totals.deadLetters += resolution.deadLetters.count
            totals.tenants.formUnion(resolution.deliveredTenants)
            totals.maxLagSeconds = resolution.latencies.reduce(totals.maxLagSeconds) { max($0, $1.commitToAck) }
            guard now - totals.since >= interval else { return nil }
            defer { totals = Totals(since: now) }
            return totals
        }
        guard let due, due.delivered + due.retries + due.deadLetters > 0 else { return }
        logger.info("relayed", metadata: [
            "events": "\(due.delivered)", "retries": "\(due.retries)", "dead-letters": "\(due.deadLetters)",
            "tenants": "\(due.tenants.count)", "max-lag-seconds": "\((due.maxLagSeconds * 1000).rounded() / 1000)",
            "interval-seconds": "\(Int((now - due.since).components.seconds))",
        ])
    }
}
