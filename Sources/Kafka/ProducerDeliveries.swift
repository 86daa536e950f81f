import Synchronization

/// One `send` call's records: collects their outcomes in input order and hands them to the
/// caller once every record has one.
final class DeliveryBatch: Sendable {
    typealias Outcome = Result<KafkaDeliveryReport, KafkaError>

    private struct State {
        var outcomes: [Outcome?]
        var remaining: Int
        var waiter: CheckedContinuation<[Outcome], Never>?
    }

    private let state: Mutex<State>
    /// Told of each outcome as it arrives, for callers that act per record.
    private let observer: (@Sendable (Int, Outcome) -> Void)?

    init(count: Int, observer: (@Sendable (Int, Outcome) -> Void)? = nil) {
        state = Mutex(State(outcomes: Array(repeating: nil, count: count), remaining: count))
        self.observer = observer
    }

    func resolve(_ index: Int, _ outcome: Outcome) {
        let finished: (CheckedContinuation<[Outcome], Never>, [Outcome])?? = state.withLock { state in
            guard state.outcomes[index] == nil else { return .none }
            state.outcomes[index] = outcome
            state.remaining -= 1
            guard state.remaining == 0, let waiter = state.waiter else { return .some(nil) }
            state.waiter = nil
            return (waiter, state.outcomes.map { $0! })
        }
        // `.none`: a repeated report, ignored; `.some(nil)`: recorded, nobody to wake yet.
        guard let finished else { return }
        observer?(index, outcome)
        if let (waiter, outcomes) = finished {
            waiter.resume(returning: outcomes)
        }
    }

    /// Waits until every record has an outcome; only one caller may wait.
    func outcomes() async -> [Outcome] {
        await withCheckedContinuation { continuation in
            let outcomes: [Outcome]? = state.withLock { state in
                guard state.remaining == 0 else {
                    state.waiter = continuation
                    return nil
                }
                return state.outcomes.map { $0! }
            }
            if let outcomes {
                continuation.resume(returning: outcomes)
            }
        }
    }
}

/// Records handed to librdkafka and not yet reported on. librdkafka's per-message opaque carries
/// a token instead of a pointer, so a report that arrives after shutdown finds nothing rather
/// than freed memory, and shutdown can fail every waiter still listed here.
final class DeliveryTracker: Sendable {
    private struct Pending {
        let batch: DeliveryBatch
        let index: Int
    }

    private struct State {
        var nextToken: UInt64 = 1
        var pending: [UInt64: Pending] = [:]
        var isClosed = false
        /// How many reports were served so far: a sender that met a full queue waits for this
        /// to pass the count it saw before producing, so a report served in between still
        /// counts.
        var reportsServed: UInt64 = 0
        var roomWaiters: [(after: UInt64, waiter: CheckedContinuation<Void, Never>)] = []

        mutating func takeRoomWaiters() -> [CheckedContinuation<Void, Never>] {
            guard !roomWaiters.isEmpty else { return [] }
            let due = roomWaiters.filter { isClosed || $0.after < reportsServed }.map(\.waiter)
            roomWaiters.removeAll { isClosed || $0.after < reportsServed }
            return due
        }
    }

    private let state = Mutex(State())

    /// - Returns: the token to pass as the message opaque, or `nil` once shut down.
    func register(_ batch: DeliveryBatch, index: Int) -> UInt64? {
        state.withLock { state in
            guard !state.isClosed else { return nil }
            let token = state.nextToken
            state.nextToken += 1
            state.pending[token] = Pending(batch: batch, index: index)
            return token
        }
    }

    /// Hands the record's outcome to its batch. `beforeResolving` runs first, and only if the
    /// record was still waiting for its report, so what it records is in place by the time
    /// the sender hears the outcome.
    func complete(_ delivery: RDKafkaDelivery, beforeResolving: () -> Void = {}) {
        let (pending, roomWaiters) = state.withLock { state in
            state.reportsServed += 1
            return (state.pending.removeValue(forKey: delivery.token), state.takeRoomWaiters())
        }
        roomWaiters.forEach { $0.resume() }
        guard let pending else { return }
        beforeResolving()
        pending.batch.resolve(pending.index, delivery.result)
    }

    /// Reports served so far, to pass to ``nextReport(after:)``.
    var reportsServed: UInt64 {
        state.withLock { $0.reportsServed }
    }

    func isPending(_ token: UInt64) -> Bool {
        state.withLock { $0.pending[token] != nil }
    }

    /// Returns once a report beyond the first `served` has been served, or once the tracker is
    /// closed: a full librdkafka queue has room again only after a report. Bounded by
    /// librdkafka's `message.timeout.ms`, after which every outstanding record is reported.
    func nextReport(after served: UInt64) async {
        await withCheckedContinuation { continuation in
            let resumeNow = state.withLock { state in
                guard !state.isClosed, state.reportsServed <= served else { return true }
                state.roomWaiters.append((served, continuation))
                return false
            }
            if resumeNow { continuation.resume() }
        }
    }

    /// Refuses further registrations; records already registered still get their reports.
    /// Senders waiting for room stop waiting.
    func close() {
        state.withLock { state in
            state.isClosed = true
            return state.takeRoomWaiters()
        }.forEach { $0.resume() }
    }

    func failAll(with error: KafkaError) {
        let abandoned = state.withLock { state in
            defer { state.pending = [:] }
            return state.pending.values
        }
        for pending in abandoned {
            pending.batch.resolve(pending.index, .failure(error))
        }
    }
}
