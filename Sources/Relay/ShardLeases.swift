import Foundation
import Outbox
import Postgres
import Synchronization

/// Splits tenants between relay instances so that several can run against one database
/// without publishing an event twice or reordering a tenant.
///
/// Tenants hash to a fixed set of shards (the rows of `relay_leases`). An instance relays only
/// the shards it holds a lease on; it renews its leases in the background and rebalances
/// between batches, so it never gives a shard away while that shard's events are in flight.
/// Each instance aims for an equal share of the shards among the instances that have recently
/// sent a heartbeat. When an instance dies its leases run out after `leaseDuration` and the
/// others take them over. Leases are rows, not advisory locks, so they work through a
/// connection pooler in transaction mode.
final class ShardLeases: Sendable {
    private let statements: OutboxLeases
    private let leaseDuration: Duration
    private let clock = ContinuousClock()

    private struct State {
        var owned: [Int] = []
        /// Surplus shards still holding events in flight: no new claims, released once idle.
        var draining: Set<Int> = []
        var shardCount = 0
        /// Local time after which the leases may have run out on the server: leases count from
        /// when the renewing statement was sent, less a fifth kept in reserve for clock drift.
        var validUntil: ContinuousClock.Instant
        /// Rebalances applied so far: a renewal sent before the latest one applied answered for
        /// an older set of shards.
        var rebalances = 0
    }

    private let state: Mutex<State>

    init(quotedSchema: String, leaseDuration: Duration, instanceID: UUID = UUID()) {
        self.statements = OutboxLeases(quotedSchema: quotedSchema, instanceID: instanceID, leaseDuration: leaseDuration)
        self.leaseDuration = leaseDuration
        self.state = Mutex(State(validUntil: clock.now))
    }

    var instanceID: UUID { statements.instanceID }

    /// The shards this instance may relay now, with the total shard count. Empty when the
    /// leases may have lapsed: then another instance could own them already.
    var usableShards: (shards: [Int], shardCount: Int) {
        let now = clock.now
        return state.withLock { state in
            (now < state.validUntil ? state.owned.filter { !state.draining.contains($0) } : [], state.shardCount)
        }
    }

    /// Takes this instance's fair share: registers a heartbeat and renews its leases, counts live instances, gives
    /// back shards above the share and takes free or expired ones up to it. A surplus shard
    /// with events in flight (`busyShards`) is not given back yet, only drained: the next
    /// rebalance releases it once its events are resolved, so two instances never hold one
    /// tenant's events in flight at once.
    func rebalance(on connection: PostgresConnection, busyShards: Set<Int>) async throws {
        let started = clock.now
        let (owned, draining) = try await connection.transaction { connection in
            var owned = try await self.statements.heartbeatAndRenew(on: connection)
            let census = try await self.statements.census(on: connection)
            try await self.statements.forgetLongDeadInstances(on: connection)
            let live = max(1, census.liveInstances)
            let shardCount = census.shards
            let fairShare = (shardCount + live - 1) / live
            var draining: Set<Int> = []
            if owned.count > fairShare {
                // Idle shards go first, so busy ones are drained only when there is no choice.
                let idleFirst = owned.filter { !busyShards.contains($0) }.sorted() + owned.filter(busyShards.contains).sorted()
                let surplus = idleFirst.prefix(owned.count - fairShare)
                let releasable = surplus.filter { !busyShards.contains($0) }
                draining = Set(surplus.filter { busyShards.contains($0) })
                try await self.statements.release(Array(releasable), on: connection)
                owned.removeAll { releasable.contains($0) }
            } else if owned.count < fairShare {
                owned += try await self.statements.take(upTo: fairShare - owned.count, on: connection)
            }
            self.state.withLock { $0.shardCount = shardCount }
            return (owned.sorted(), draining)
        }
        state.withLock { state in
            state.owned = owned
            state.draining = draining
            state.validUntil = started.advanced(by: leaseDuration * 0.8)
            state.rebalances += 1
        }
    }

    /// Extends the leases this instance holds. It only ever drops shards from the set (those
    /// lost to another instance), never adds: a renewal that raced a rebalance must not hand
    /// back a shard the rebalance just gave away. Nor does it drop any when a rebalance was
    /// applied while it ran: its statement may have read the leases before that rebalance
    /// committed, so the shards the rebalance took would be missing from its answer, and
    /// their tenants would wait for the next rebalance.
    func renewInBackground(on connection: PostgresConnection) async throws {
        let started = clock.now
        let rebalancesBefore = state.withLock { $0.rebalances }
        let renewed = Set(try await statements.heartbeatAndRenew(on: connection))
        state.withLock { state in
            if state.rebalances == rebalancesBefore {
                state.owned.removeAll { !renewed.contains($0) }
            }
            state.validUntil = max(state.validUntil, started.advanced(by: leaseDuration * 0.8))
        }
    }

    /// Gives every lease back at shutdown so another instance takes over at once instead of
    /// after the leases expire.
    func releaseAll(on connection: PostgresConnection) async throws {
        state.withLock { $0.owned = [] }
        try await statements.releaseAll(on: connection)
    }
}
