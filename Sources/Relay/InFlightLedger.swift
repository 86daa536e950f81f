import Dispatch
import Foundation
import Kafka
import Outbox
import Postgres
import Synchronization

/// The rows published and not yet written back, kept by the engine that claims them and records
/// their outcomes, and read by the health checks. A row leaves the ledger only after its outcome
/// is in the database, so the claim query (which skips ledger rows) never picks it up twice.
final class InFlightLedger: Sendable {
    private struct State {
        var events: [Int64: OutboxEvent] = [:]
        /// When each row was handed to the producer (uptime nanoseconds).
        var publishedAt: [Int64: UInt64] = [:]
        var perTenant: [String?: Int] = [:]
        /// Tenants whose record `id` failed and will be retried: their later records that were
        /// acknowledged meanwhile stay pending, to be published again after it. The engine claims
        /// nothing more of such a tenant until all of its rows in flight are resolved; then the
        /// tenant's pending rows are claimed again from its oldest, in order.
        var retryingTenants: [String?: Int64] = [:]
        /// Rows whose dead letter is published and not yet reported on, with the reason.
        var deadLettering: [Int64: String] = [:]
        /// Makes the tenant's later rows wait behind `event`, which is to be published again.
        mutating func holdBack(after event: OutboxEvent) {
            retryingTenants[event.tenantKey] = min(retryingTenants[event.tenantKey] ?? .max, event.id)
        }

        /// Keeps `event` in flight until its dead letter is reported on. Its tenant waits too:
        /// should the dead letter fail, the event is retried before the tenant's later ones.
        mutating func startDeadLetter(_ event: OutboxEvent, reason: String) {
            holdBack(after: event)
            deadLettering[event.id] = reason
        }
    }

    private let state = Mutex(State())

    /// One delivery report for a row in flight: the row, its outcome, and when it arrived (uptime
    /// nanoseconds, and wall-clock seconds for the commit-to-ack lag).
    typealias Arrival = (
        id: Int64, outcome: Result<KafkaDeliveryReport, KafkaError>, uptime: UInt64, wallClock: Double
    )

    func add(_ events: [OutboxEvent]) {
        let now = DispatchTime.now().uptimeNanoseconds
        state.withLock { state in
            for event in events {
                state.events[event.id] = event
                state.publishedAt[event.id] = now
                state.perTenant[event.tenantKey, default: 0] += 1
            }
        }
    }

    var count: Int { state.withLock { $0.events.count } }
    var ids: [Int64] { state.withLock { Array($0.events.keys) } }
    var busyShards: Set<Int> { state.withLock { Set($0.events.values.map(\.shard)) } }
    /// Tenants the engine must not claim for until their rows in flight are resolved. Claiming
    /// one meanwhile would publish rows that the retry barrier then holds back again, and a
    /// tenant that always has rows in flight would never get past its failed row.
    var retryingTenants: [String?] { state.withLock { Array($0.retryingTenants.keys) } }

    /// Decides, in id order, what each arrival means: acked rows are marked; a tenant's first
    /// failure is retried later (or dead-lettered when it can never succeed), and that tenant's
    /// later rows stay pending so they are published again after it, with the same event ids.
    ///
    /// A row being dead-lettered stays in flight until its dead letter's own delivery report
    /// arrives among `deadLetterArrivals`: then it is marked dead with where the dead letter
    /// landed, or, when the dead letter failed, left pending with the error for a retry. Its
    /// tenant waits meanwhile, as for any failure; other tenants' outcomes never wait for it.
    func plan(
        _ arrivals: [Arrival], deadLetterArrivals: [Arrival] = [],
        configuration: RelayConfiguration
    ) -> Resolution {
        state.withLock { state in
            var resolution = Resolution()
            for arrival in arrivals.sorted(by: { $0.id < $1.id }) {
                guard let event = state.events[arrival.id], state.deadLettering[event.id] == nil else { continue }
                if let failedID = state.retryingTenants[event.tenantKey], failedID < event.id {
                    resolution.resolvedIDs.append(event.id)
                    resolution.heldBack += 1
                    continue
                }
                switch arrival.outcome {
                case .success(let report) where report.offset < 0:
                    // librdkafka acknowledges a batch without an offset when it concludes the
                    // broker wrote it without saying where: a retry answered as a duplicate, or
                    // a failed request behind which a later one was accepted. With a broker that
                    // skips sequence checks (librdkafka's mock) the event may be in no partition
                    // at all. Either way a row must record where its event is: publish it again
                    // and record that copy's position.
                    state.holdBack(after: event)
                    resolution.resolvedIDs.append(event.id)
                    resolution.retries.append(OutboxFailure(
                        eventID: event.id, previousAttempts: event.attempts,
                        error: "acknowledged without an offset (offset \(report.offset)); publishing again to record where it lands",
                        retryAfterSeconds: 0))
                case .success(let report):
                    resolution.resolvedIDs.append(event.id)
                    resolution.delivered.append(OutboxDelivery(
                        eventID: event.id, topic: report.topic, partition: report.partition, offset: report.offset))
                    resolution.deliveredTenants.insert(event.tenantKey)
                    let published = state.publishedAt[event.id] ?? arrival.uptime
                    resolution.latencies.append((
                        publishToAck: Double(arrival.uptime &- published) / 1e9,
                        commitToAck: arrival.wallClock - event.createdAt))
                case .failure(let error) where error.isFatal:
                    // The producer instance died and is being replaced; its outcomes prove
                    // nothing. The row stays pending as it was and is published again, in order,
                    // by the new instance.
                    state.holdBack(after: event)
                    resolution.resolvedIDs.append(event.id)
                    resolution.unacknowledged += 1
                case .failure(let error) where !error.isRetriable:
                    state.startDeadLetter(event, reason: "permanent: \(error)")
                    resolution.deadLettersToPublish.append(.init(event: event, reason: "permanent: \(error)", error: error))
                case .failure(let error) where event.attempts + 1 >= configuration.maxAttempts:
                    let reason = "gave up after \(event.attempts + 1) attempts: \(error)"
                    state.startDeadLetter(event, reason: reason)
                    resolution.deadLettersToPublish.append(.init(event: event, reason: reason, error: error))
                case .failure(let error):
                    state.holdBack(after: event)
                    resolution.resolvedIDs.append(event.id)
                    resolution.retries.append(OutboxFailure(
                        eventID: event.id, previousAttempts: event.attempts, error: "\(error)",
                        retryAfterSeconds: configuration.retryDelay(afterAttempts: event.attempts + 1).seconds))
                }
            }
            for arrival in deadLetterArrivals {
                guard let event = state.events[arrival.id], let reason = state.deadLettering.removeValue(forKey: event.id)
                else { continue }
                resolution.resolvedIDs.append(event.id)
                switch arrival.outcome {
                case .success(let report):
                    resolution.deadLetters.append(OutboxDeadLetter(
                        previousAttempts: event.attempts, reason: reason,
                        deadLetter: OutboxDelivery(
                            eventID: event.id, topic: report.topic, partition: report.partition, offset: report.offset)))
                case .failure(let error) where error.isFatal:
                    resolution.unacknowledged += 1
                case .failure(let error):
                    resolution.retries.append(OutboxFailure(
                        eventID: event.id, previousAttempts: event.attempts,
                        error: "dead-letter publish failed: \(error); original failure: \(reason)",
                        retryAfterSeconds: configuration.retryDelay(afterAttempts: event.attempts + 1).seconds))
                }
            }
            return resolution
        }
    }

    /// Forgets rows whose outcome is written, and a tenant's retry once none of its rows is
    /// left in flight. Returns whether a tenant's retry was lifted: its rows are pending again
    /// and nobody will notify about them, so the engine claims at once. Any other removal
    /// leads to a claim only if one was waiting for room: an idle relay's every ack would
    /// otherwise cost an empty claim.
    @discardableResult
    func remove(_ ids: [Int64]) -> Bool {
        state.withLock { state in
            var retryLifted = false
            // Each tenant is hashed once per row, and the rarely filled tables not at all when
            // empty: this runs for every event.
            for id in ids {
                state.publishedAt[id] = nil
                if !state.deadLettering.isEmpty {
                    state.deadLettering[id] = nil
                }
                guard let event = state.events.removeValue(forKey: id),
                      let tenant = state.perTenant.index(forKey: event.tenantKey)
                else { continue }
                if state.perTenant.values[tenant] > 1 {
                    state.perTenant.values[tenant] -= 1
                } else {
                    state.perTenant.remove(at: tenant)
                    if !state.retryingTenants.isEmpty {
                        retryLifted = state.retryingTenants.removeValue(forKey: event.tenantKey) != nil || retryLifted
                    }
                }
            }
            return retryLifted
        }
    }
}

/// What one group of delivery reports comes to.
struct Resolution: Sendable {
    /// An event to send to the dead-letter topic; its row stays in flight until that send is
    /// reported on.
    struct DeadLetter: Sendable {
        let event: OutboxEvent
        let reason: String
        let error: KafkaError
    }

    var delivered: [OutboxDelivery] = []
    /// The tenants of the delivered rows, for the relay's progress line.
    var deliveredTenants: Set<String?> = []
    var retries: [OutboxFailure] = []
    /// Rows whose dead letter landed: they are marked dead.
    var deadLetters: [OutboxDeadLetter] = []
    var deadLettersToPublish: [DeadLetter] = []
    /// Every row this resolution settles, including the held-back ones left pending.
    var resolvedIDs: [Int64] = []
    var heldBack = 0
    /// Rows left pending untouched because the producer instance that sent them failed fatally.
    var unacknowledged = 0
    /// Seconds from publish to ack and from the row's insert to ack, per delivered row.
    var latencies: [(publishToAck: Double, commitToAck: Double)] = []

    var outcomes: OutboxOutcomes {
        OutboxOutcomes(delivered: delivered, failures: retries, deadLetters: deadLetters)
    }
}
