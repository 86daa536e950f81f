import Dispatch
import Foundation
import Kafka
import Logging
import Outbox
import Postgres
import Synchronization

/// Claims, publishes and records outcomes, driven by what arrives: a notification, the poll
/// tick, a claim's rows, a delivery report, a write's reply. Each arrival is handled at once on
/// the thread that brought it (the `SocketReactor`'s for replies, librdkafka's delivery thread
/// for reports), never by waking a task on Swift's cooperative pool: with tasks, every event
/// cost four pool wake-ups besides the threads that read the sockets, and they were most of the
/// relay's CPU. Nothing here blocks: statements are sent without waiting and records produced
/// inline, and the rare slow steps (connecting, the lease rebalance's transaction) run in tasks
/// that report back like any other arrival.
///
/// One thread at a time handles arrivals: a thread that brings one while another thread is
/// handling leaves it in the mailbox, and the handling thread takes it next, together with any
/// others waiting. So delivery reports that arrive during a write are recorded together by the
/// next, and the state needs no care beyond its lock.
///
/// The claim side keeps up to `maxInFlightBatches` batches awaiting acks and claims again when
/// a full batch suggests more rows wait, when notified, and on each poll tick. Outcomes are
/// written on a connection of their own, so writing one group overlaps the next claim. A write
/// that fails is retried on a new connection with the same outcomes; the rows stay in flight
/// meanwhile, so nothing claims them twice.
final class RelayEngine: Sendable {
    enum Event: Sendable {
        /// A notification arrived, or the `LISTEN` connection was (re)established.
        case wake
        /// The poll interval passed.
        case tick
        /// A round trip held back by `turnInterval` may start: the turn timer with this serial
        /// number went off.
        case turnDue(Int)
        /// The leases are due for their next rebalance.
        case rebalanceDue
        /// A graceful shutdown began: claim nothing more, return once the rows in flight are
        /// resolved.
        case stop
        case cancel
        case claimStoreConnected(Result<OutboxStore, any Error>)
        /// The rebalance finished, on the connection it went through.
        case rebalanced(Result<PostgresConnection, any Error>)
        case claimed(Result<[OutboxEvent], PostgresError>, limit: Int)
        case claimBackoffOver
        case delivered(InFlightLedger.Arrival)
        case deadLetterDelivered(InFlightLedger.Arrival)
        case markStoreConnected(Result<OutboxStore, any Error>)
        case recorded(PostgresError?)
        case markBackoffOver
    }

    private enum ClaimPhase {
        case ready, connecting, rebalancing, claiming, backingOff
    }

    private enum MarkPhase {
        case ready, connecting, writing, backingOff
    }

    private struct State {
        /// `nil` after the connection was lost, until reconnected.
        var claimStore: OutboxStore?
        var claim = ClaimPhase.ready
        /// Rows may be waiting: claim when the claim side is ready and there is room.
        var claimWanted = true
        var nextRebalance = ContinuousClock.now
        /// The lease rebalance's connection, kept between rebalances: the stores' sessions are
        /// set up for their own statements alone (see `OutboxStore`). `nil` until the first
        /// rebalance connects it, and again after one failed.
        var leaseConnection: PostgresConnection?
        /// `turnInterval` after the last claim started.
        var claimNotBefore = ContinuousClock.now
        /// When the last outcome write started (see `nextWriteStart`); `nil` before the first.
        var lastWriteStart: ContinuousClock.Instant?
        /// The timer set for the earliest round trip held back, with its serial number (an
        /// event from a timer taken back too late is told apart by it); `nil` when none is.
        var turnTimer: (due: ContinuousClock.Instant, serial: Int, timer: ReplyThreadTimer)?
        var turnTimerSerial = 0
        /// The earliest instant at which a round trip held back in the current pass may start.
        var nextTurn: ContinuousClock.Instant?
        /// `nil` after the connection was lost, until reconnected.
        var markStore: OutboxStore?
        var mark = MarkPhase.ready
        var arrivals: [InFlightLedger.Arrival] = []
        var deadLetterArrivals: [InFlightLedger.Arrival] = []
        /// Planned from arrivals and not yet in the outbox: written again, unchanged, after a
        /// failed write.
        var unwritten: Resolution?
        var stopping = false
        var finished = false
        var runner: CheckedContinuation<Void, Never>?
    }

    private struct Mailbox {
        var events: [Event] = []
        /// A thread is handling events; others only leave theirs here.
        var handling = false
    }

    private let configuration: RelayConfiguration
    private let producer: KafkaProducer
    private let router: EventRouter
    private let leases: ShardLeases
    private let ledger: InFlightLedger
    private let health: RelayHealth
    private let logger: Logger
    private let metrics = RelayMetrics()
    private let progress: RelayProgressLog
    private let state: Mutex<State>
    private let mailbox = Mutex(Mailbox())
    /// Dispatch objects are thread-safe (scheduling and cancelling a source from any thread is
    /// documented use); the overlay just does not mark the protocol `Sendable`.
    nonisolated(unsafe) private let pollTimer: any DispatchSourceTimer

    init(
        configuration: RelayConfiguration, producer: KafkaProducer, router: EventRouter, claimStore: OutboxStore,
        markStore: OutboxStore, leases: ShardLeases, ledger: InFlightLedger, health: RelayHealth, logger: Logger
    ) {
        self.configuration = configuration
        self.producer = producer
        self.router = router
        self.leases = leases
        self.ledger = ledger
        self.health = health
        self.logger = logger
        self.progress = RelayProgressLog(logger: logger)
        self.state = Mutex(State(claimStore: claimStore, markStore: markStore))
        pollTimer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "outbox-bridge.relay.poll"))
    }

    private var maxInFlight: Int { configuration.batchSize * configuration.maxInFlightBatches }
    private var rebalanceInterval: Duration { configuration.leaseDuration / 5 }

    /// The connection the leases were last rebalanced on, for giving them back after `run`
    /// returns.
    var leaseConnection: PostgresConnection? { state.withLock { $0.leaseConnection } }

    /// Runs until `cancel`, or after `stop` once nothing is in flight. Looks for pending rows
    /// at once, then whenever woken and at least every `min(pollInterval, leaseDuration / 5)`
    /// (which also paces the lease rebalance).
    func run() async {
        let interval = min(configuration.pollInterval, rebalanceInterval).dispatchInterval
        pollTimer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(10))
        pollTimer.setEventHandler { [weak self] in self?.post(.tick) }
        pollTimer.activate()
        await withCheckedContinuation { continuation in
            let finished = state.withLock { state in
                state.runner = state.finished ? nil : continuation
                return state.finished
            }
            if finished { continuation.resume() }
            post(.wake)
        }
        pollTimer.cancel()
    }

    /// Hands `event` to the engine: handled now on this thread, unless another thread is
    /// handling events, which then takes this one too.
    func post(_ event: Event) {
        let handlesNow = mailbox.withLock { mailbox in
            mailbox.events.append(event)
            guard !mailbox.handling else { return false }
            mailbox.handling = true
            return true
        }
        guard handlesNow else { return }
        var batch: [Event] = []
        while true {
            mailbox.withLock { mailbox in
                swap(&batch, &mailbox.events)
                mailbox.handling = !batch.isEmpty
            }
            if batch.isEmpty { return }
            let runner = state.withLock { state in
                for event in batch { handle(event, &state) }
                advance(&state)
                return state.finished ? state.runner.take() : nil
            }
            runner?.resume()
            batch.removeAll(keepingCapacity: true)
        }
    }

    private func handle(_ event: Event, _ state: inout State) {
        guard !state.finished else { return }
        switch event {
        case .wake:
            state.claimWanted = true
        case .tick:
            if state.claim == .ready, !state.claimWanted { metrics.polled() }
            state.claimWanted = true
        case .turnDue(let serial):
            if state.turnTimer?.serial == serial { state.turnTimer = nil }
        case .rebalanceDue:
            state.claimWanted = true
        case .stop:
            state.stopping = true
        case .cancel:
            state.finished = true
        case .claimStoreConnected(.success(let store)):
            logger.info("reconnected to PostgreSQL")
            state.claimStore = store
            state.claim = .ready
        case .claimStoreConnected(.failure(let error)):
            claimFailed(error, &state)
        case .rebalanced(.failure(let error)):
            claimFailed(error, &state) { $0.leaseConnection = nil }
        case .rebalanced(.success(let connection)):
            state.leaseConnection = connection
            // The shards may have changed: claim at once, as for new rows. The next rebalance
            // gets a timer of its own: the poll tick is not in step with it, so an instance
            // without shards could wait two intervals for them (should the timer fail, the
            // tick still brings the rebalance).
            state.nextRebalance = ContinuousClock.now.advanced(by: rebalanceInterval)
            state.claim = .ready
            state.claimWanted = true
            _ = try? PostgresConnection.onReplyThread(at: state.nextRebalance) { [self] in post(.rebalanceDue) }
        case .claimed(.success(let events), let limit):
            state.claim = .ready
            health.claimCompleted()
            health.postgresAnswered(true)
            // When stopping, the rows stay pending for the next instance: nothing about them
            // changed yet.
            guard !state.stopping else { return }
            guard !events.isEmpty else {
                // Nothing was pending: spacing the next claim would gather nothing, and would
                // hold back the event of the next notification (after each poll tick and each
                // rebalance, about one idle event in a hundred waited out the turn interval).
                state.claimNotBefore = ContinuousClock.now
                return
            }
            metrics.claimed(rows: events.count)
            publish(events)
            // A full batch: more rows may be waiting.
            if events.count == limit { state.claimWanted = true }
        case .claimed(.failure(let error), _):
            claimFailed(error, &state)
        case .claimBackoffOver:
            state.claim = .ready
            state.claimWanted = true
        case .delivered(let arrival):
            state.arrivals.append(arrival)
        case .deadLetterDelivered(let arrival):
            state.deadLetterArrivals.append(arrival)
        case .markStoreConnected(.success(let store)):
            state.markStore = store
            state.mark = .ready
        case .markStoreConnected(.failure(let error)):
            markFailed(error, &state)
        case .recorded(nil):
            state.mark = .ready
            if let resolution = state.unwritten.take() {
                written(resolution, &state)
            }
        case .recorded(let error?):
            markFailed(error, &state)
        case .markBackoffOver:
            state.mark = .ready
        }
    }

    /// Starts whatever the state calls for next, and notices when the engine is done.
    private func advance(_ state: inout State) {
        guard !state.finished else { return }
        state.nextTurn = nil
        writeOutcomes(&state)
        claim(&state)
        setTurnTimer(&state)
        if state.stopping, ledger.count == 0, state.claim != .claiming, state.claim != .rebalancing {
            state.finished = true
        }
    }

    // MARK: Claiming and publishing

    private func claim(_ state: inout State) {
        let now = ContinuousClock.now
        let rebalanceDue = now >= state.nextRebalance
        guard state.claim == .ready, state.claimWanted || rebalanceDue, !state.stopping else { return }
        guard let store = state.claimStore else {
            state.claim = .connecting
            connectStore { [self] in post(.claimStoreConnected($0)) }
            return
        }
        let room = maxInFlight - ledger.count
        // A claim that may start now goes before a rebalance that is due, so an event never
        // waits for the rebalance's round trips (the leases are renewed in the background
        // meanwhile); the rebalance follows the claim's reply. One overdue by a whole interval
        // goes first, so a relay that always has a claim to make still rebalances.
        if rebalanceDue, !claimMayStart(state, room: room, at: now) || now >= state.nextRebalance.advanced(by: rebalanceInterval) {
            state.claim = .rebalancing
            let busyShards = ledger.busyShards
            let kept = state.leaseConnection
            Task { [self, leases, configuration, logger] in
                do {
                    let connection = if let kept { kept } else { try await configuration.connect(logger: logger) }
                    try await leases.rebalance(on: connection, busyShards: busyShards)
                    post(.rebalanced(.success(connection)))
                } catch {
                    post(.rebalanced(.failure(error)))
                }
            }
            return
        }
        // Out of room: written outcomes free some, and the write's reply comes back here.
        guard state.claimWanted, room > 0, roundTripMayStart(notBefore: state.claimNotBefore, &state) else { return }
        state.claimWanted = false
        let (shards, shardCount) = leases.usableShards
        guard !shards.isEmpty else { return }
        let limit = min(configuration.batchSize, room)
        state.claim = .claiming
        state.claimNotBefore = ContinuousClock.now.advanced(by: configuration.turnInterval)
        store.claimPending(
            limit: limit, shards: shards, shardCount: shardCount, excluding: ledger.ids,
            pausedTenants: ledger.retryingTenants
        ) { [self] rows in
            post(.claimed(rows, limit: limit))
        }
    }

    /// Whether a claim would start at once: one is wanted, there is room, the turn interval
    /// has passed, and there are shards to claim for (read last: it takes the leases' lock).
    private func claimMayStart(_ state: State, room: Int, at now: ContinuousClock.Instant) -> Bool {
        state.claimWanted && room > 0 && now >= state.claimNotBefore && !leases.usableShards.shards.isEmpty
    }

    /// Hands the rows to the producer without waiting for acks; each report comes back here.
    /// Each record is made as librdkafka takes it: a batch's records made up front held one
    /// more copy of every payload of the batch at once.
    private func publish(_ events: [OutboxEvent]) {
        ledger.add(events)
        let ids = events.map(\.id)
        producer.produce(events.lazy.map(router.record(for:))) { [self] index, outcome in
            health.delivered(id: ids[index], succeeded: (try? outcome.get()) != nil)
            post(.delivered(Self.arrival(ids[index], outcome)))
        }
    }

    /// Backs the claim side off for a second; `forget` drops the connection the failure came
    /// through when the failure broke it (the claims' own by default).
    private func claimFailed(
        _ error: any Error, _ state: inout State, forget: (inout State) -> Void = { $0.claimStore = nil }
    ) {
        if error is PostgresError {
            health.postgresAnswered(false)
        }
        if let error = error as? PostgresError, error.breaksConnection {
            logger.error("PostgreSQL unreachable; reconnecting", metadata: ["error": "\(error)"])
            forget(&state)
        } else {
            logger.error("relay cycle failed; retrying", metadata: ["error": "\(error)"])
        }
        state.claim = .backingOff
        after(.seconds(1), post: .claimBackoffOver)
    }

    // MARK: Recording outcomes

    /// Plans the arrivals into one resolution and writes it in one statement, unless a write is
    /// under way (then they wait for the next) or an earlier resolution still has to be written.
    private func writeOutcomes(_ state: inout State) {
        guard state.mark == .ready else { return }
        if state.unwritten == nil {
            guard !state.arrivals.isEmpty || !state.deadLetterArrivals.isEmpty,
                  roundTripMayStart(notBefore: nextWriteStart(state), &state)
            else { return }
            let resolution = ledger.plan(
                state.arrivals, deadLetterArrivals: state.deadLetterArrivals, configuration: configuration)
            state.arrivals.removeAll(keepingCapacity: true)
            state.deadLetterArrivals.removeAll(keepingCapacity: true)
            publishDeadLetters(resolution.deadLettersToPublish)
            state.unwritten = resolution
        }
        guard let store = state.markStore else {
            state.mark = .connecting
            connectStore { [self] in post(.markStoreConnected($0)) }
            return
        }
        state.mark = .writing
        state.lastWriteStart = ContinuousClock.now
        metrics.wrote(rows: state.unwritten!.resolvedIDs.count)
        // The whole resolution is one statement: writing it again after a failure, even one
        // that hid a commit, writes nothing twice.
        store.record(state.unwritten!.outcomes) { [self] outcome in
            post(.recorded(outcome.failure))
        }
    }

    /// When the next write may start: `writeInterval` after the last one while there is room
    /// for a whole batch more, else (or when stopping) `turnInterval` after it.
    private func nextWriteStart(_ state: State) -> ContinuousClock.Instant {
        guard let lastWriteStart = state.lastWriteStart else { return .now }
        let roomForABatch = maxInFlight - ledger.count >= configuration.batchSize
        let spacing = roomForABatch && !state.stopping
            ? max(configuration.writeInterval, configuration.turnInterval) : configuration.turnInterval
        return lastWriteStart.advanced(by: spacing)
    }

    private func written(_ resolution: Resolution, _ state: inout State) {
        for deadLetter in resolution.deadLetters {
            logger.error("event moved to the dead-letter topic", metadata: [
                "outbox-id": "\(deadLetter.deadLetter.eventID)", "reason": "\(deadLetter.reason)"])
        }
        if !resolution.retries.isEmpty || !resolution.deadLettersToPublish.isEmpty || resolution.unacknowledged > 0 {
            logger.warning("events failed to publish", metadata: [
                "retrying": "\(resolution.retries.count)", "dead-lettering": "\(resolution.deadLettersToPublish.count)",
                "held-back-behind-a-retry": "\(resolution.heldBack)",
                "unacknowledged-by-a-failed-producer": "\(resolution.unacknowledged)",
                "first-error": "\(resolution.retries.first?.error ?? resolution.deadLettersToPublish.first?.reason ?? "")"])
        }
        // A tenant's retry was lifted: its rows are pending again, and no notification says so.
        if ledger.remove(resolution.resolvedIDs) { state.claimWanted = true }
        health.writtenBack(resolution.resolvedIDs)
        metrics.record(resolution, topicTemplate: configuration.topicTemplate, deadLetterTopic: configuration.deadLetterTopic)
        progress.record(resolution)
    }

    private func markFailed(_ error: any Error, _ state: inout State) {
        logger.error("could not record delivery outcomes; retrying", metadata: ["error": "\(error)"])
        state.markStore = nil
        state.mark = .backingOff
        after(.seconds(1), post: .markBackoffOver)
    }

    /// Hands events that can never be delivered to the producer for the dead-letter topic, with
    /// the reason in headers, without waiting for the broker: each dead letter's delivery report
    /// comes back like any other, so other tenants' outcomes are written meanwhile. If the dead
    /// letter fails, its row stays pending with the error: nothing is dropped.
    private func publishDeadLetters(_ deadLetters: [Resolution.DeadLetter]) {
        guard !deadLetters.isEmpty else { return }
        let ids = deadLetters.map(\.event.id)
        let records = deadLetters.map { router.deadLetterRecord(for: $0, topic: configuration.deadLetterTopic) }
        producer.produce(records) { [self] index, outcome in
            post(.deadLetterDelivered(Self.arrival(ids[index], outcome)))
        }
    }

    // MARK: Helpers

    /// Whether a round trip held back until `notBefore` may start now; if not, the pass ends
    /// with a turn timer set for it (see `setTurnTimer`).
    private func roundTripMayStart(notBefore: ContinuousClock.Instant, _ state: inout State) -> Bool {
        guard ContinuousClock.now < notBefore else { return true }
        state.nextTurn = min(state.nextTurn ?? notBefore, notBefore)
        return false
    }

    /// Keeps one timer, set for the earliest round trip held back, on the thread that reads
    /// replies (a dispatch timer there cost more wake-ups of its own thread than the spacing
    /// saved). A timer no round trip waits for any more is taken back: one left to go off
    /// for a write or claim that another arrival had started already cost a wake-up each,
    /// about as many as the claims at 1,000 events/s.
    private func setTurnTimer(_ state: inout State) {
        guard state.turnTimer?.due != state.nextTurn else { return }
        state.turnTimer?.timer.cancel()
        state.turnTimer = nil
        guard let due = state.nextTurn else { return }
        state.turnTimerSerial += 1
        let serial = state.turnTimerSerial
        // Setting it fails only when the process could not make the reply thread, and then no
        // statement could be sent either; the poll tick would start the round trip.
        if let timer = try? PostgresConnection.onReplyThread(at: due, run: { [self] in post(.turnDue(serial)) }) {
            state.turnTimer = (due, serial, timer)
        }
    }

    private static func arrival(_ id: Int64, _ outcome: Result<KafkaDeliveryReport, KafkaError>) -> InFlightLedger.Arrival {
        (id, outcome, DispatchTime.now().uptimeNanoseconds, Date().timeIntervalSince1970)
    }

    /// Connects a store of the engine's own in a task (connecting blocks, on a queue of its own)
    /// and reports the outcome.
    private func connectStore(then report: @escaping @Sendable (Result<OutboxStore, any Error>) -> Void) {
        Task { [configuration, logger] in
            do {
                report(.success(try await configuration.connectOutboxStore(logger: logger)))
            } catch {
                report(.failure(error))
            }
        }
    }

    private func after(_ delay: Duration, post event: Event) {
        DispatchQueue.global().asyncAfter(deadline: .now() + delay.dispatchInterval) { [self] in post(event) }
    }
}

extension Duration {
    /// Whole nanoseconds, as dispatch takes them.
    fileprivate var dispatchInterval: DispatchTimeInterval {
        let (seconds, attoseconds) = components
        return .nanoseconds(Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
    }
}

extension Result {
    fileprivate var failure: Failure? {
        if case .failure(let error) = self { return error }
        return nil
    }
}

extension Optional {
    /// The value, leaving `nil` behind.
    fileprivate mutating func take() -> Wrapped? {
        defer { self = nil }
        return self
    }
}
