import Kafka
import Logging
import Outbox
import Postgres
import ServiceLifecycle

/// Claims and publishes. Each turn rebalances shard leases when due, then claims and hands to
/// the producer as many rows as fit under `maxInFlightBatches` batches awaiting their acks,
/// and otherwise sleeps until the marker frees room, a notification arrives or the poll
/// interval passes. Acks are written back by `RelayMarker` in parallel, so the next claim
/// overlaps the previous batch's acks and marking, and a tenant whose records are slow or
/// failing holds up only itself.
final class RelayLoop {
    private let configuration: RelayConfiguration
    private let producer: KafkaProducer
    private let router: EventRouter
    private let leases: ShardLeases
    private let ledger: InFlightLedger
    private let inbox: AcknowledgementInbox
    private let wake: WakeSignal
    private let logger: Logger
    private let health: RelayHealth
    private let metrics = RelayMetrics()
    private let clock = ContinuousClock()

    /// `nil` after the connection was lost, until the loop reconnects.
    private(set) var store: OutboxStore?
    private var nextRebalance: ContinuousClock.Instant

    init(
        configuration: RelayConfiguration, producer: KafkaProducer, router: EventRouter, store: OutboxStore,
        leases: ShardLeases, ledger: InFlightLedger, inbox: AcknowledgementInbox, wake: WakeSignal,
        health: RelayHealth, logger: Logger
    ) {
        self.configuration = configuration
        self.producer = producer
        self.router = router
        self.store = store
        self.leases = leases
        self.ledger = ledger
        self.inbox = inbox
        self.wake = wake
        self.logger = logger
        self.health = health
        self.nextRebalance = clock.now
    }

    private var maxInFlight: Int { configuration.batchSize * configuration.maxInFlightBatches }

    /// Runs until cancelled, or after a graceful shutdown once nothing is in flight. A graceful
    /// shutdown signals the wake signal, which ends any sleep, so the loop notices it at once.
    func run() async {
        while !Task.isCancelled {
            let stopping = Task.isShuttingDownGracefully
            if stopping, ledger.count == 0 { return }
            do {
                let store = try await connectedStore()
                if clock.now >= nextRebalance {
                    try await leases.rebalance(on: store.connection, busyShards: ledger.busyShards)
                    nextRebalance = clock.now.advanced(by: configuration.leaseDuration / 5)
                }
                let turn: Turn = stopping ? .outOfRoom : try await claimAndPublish(store: store)
                health.forgetWrittenBack()
                switch turn {
                case .moreWaiting:
                    continue
                case .idle:
                    await sleepUntilWoken()
                case .outOfRoom:
                    // Wait for the marker to resolve rows: some, to claim into the room; or,
                    // when stopping, all of them, to return.
                    if ledger.requestRoomSignal(below: stopping ? 1 : maxInFlight) {
                        await sleepUntilWoken()
                    }
                }
            } catch is CancellationError {
                return
            } catch {
                if error is PostgresError {
                    health.postgresAnswered(false)
                }
                if let error = error as? PostgresError, error.breaksConnection {
                    logger.error("PostgreSQL unreachable; reconnecting", metadata: ["error": "\(error)"])
                    store = nil
                } else {
                    logger.error("relay cycle failed; retrying", metadata: ["error": "\(error)"])
                }
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    private func connectedStore() async throws -> OutboxStore {
        if let store { return store }
        let connection = try await PostgresConnection.connect(
            configuration.databaseURL, options: configuration.database, logger: logger)
        let reconnected = try await OutboxStore(connection: connection, schema: configuration.schema)
        store = reconnected
        logger.info("reconnected to PostgreSQL")
        return reconnected
    }

    /// Sleeps until room is freed, a notification arrives, a graceful shutdown begins or the
    /// poll interval passes.
    private func sleepUntilWoken() async {
        let interval = min(configuration.pollInterval, configuration.leaseDuration / 5)
        if await !wake.wait(timeout: interval) { metrics.polled() }
    }

    private enum Turn {
        /// A full batch was claimed and there is room for more: claim again at once.
        case moreWaiting
        /// Nothing (more) to claim: sleep until a notification or the poll interval.
        case idle
        /// Rows may be waiting but the ledger is full: sleep until the marker frees room.
        case outOfRoom
    }

    /// Claims as many rows as there is room for and hands them to the producer without waiting
    /// for acks.
    private func claimAndPublish(store: OutboxStore) async throws -> Turn {
        let room = maxInFlight - ledger.count
        guard room > 0 else { return .outOfRoom }
        let (shards, shardCount) = leases.usableShards
        guard !shards.isEmpty else { return .idle }
        let limit = min(configuration.batchSize, room)
        let events = try await store.claimPending(
            limit: limit, shards: shards, shardCount: shardCount, excluding: ledger.ids,
            pausedTenants: ledger.retryingTenants)
        health.claimCompleted()
        health.postgresAnswered(true)
        guard !events.isEmpty else { return .idle }
        ledger.add(events)
        let ids = events.map(\.id)
        await producer.send(events.map(router.record(for:))) { [inbox, health] index, outcome in
            health.delivered(id: ids[index], succeeded: (try? outcome.get()) != nil)
            inbox.deliver(id: ids[index], outcome: outcome)
        }
        guard events.count == limit else { return .idle }
        return room > limit ? .moreWaiting : .outOfRoom
    }
}
