import Synchronization

/// A handler whose state records the last `tenant_seq` it applied per tenant, durably and with
/// the effect itself, so a restarted consumer still tells a repeated event from a missed one.
/// A handler that conforms must record the sequence number of every event of the tenant it is
/// handed, including those it otherwise ignores (domain events), or the next one looks like a
/// gap after a restart.
public protocol TenantSequenceRecording: EventHandler {
    /// The last `tenant_seq` applied for `tenant` of `database`, or `nil` when nothing is
    /// recorded (a consumer that starts on the tenant then accepts whatever comes first).
    func lastAppliedSequence(tenant: String, database: String?) async throws(EventHandlerError) -> Int64?
}

/// Decides, before a handler sees an event, whether it is one to apply: it belongs to the
/// source databases the consumer follows, and its `tenant_seq` comes right after the last one
/// applied for its tenant.
///
/// - Source database: with ``ConsumerRuntimeConfiguration/sourceDatabases`` set, other
///   databases' events are skipped. Without it, the consumer follows the first database it sees
///   and skips the others, so one topic shared by several databases never mixes their schemas
///   in one consumer's state. Events without `database` (captured before it existed) pass.
/// - Sequence: a number at or below the last applied one is a duplicate (skipped); one more
///   than it is applied; anything higher is a gap, which the runtime does not apply past.
///   Without a recorded number the first event of a tenant sets the start. Handlers that are
///   not ``TenantSequenceRecording`` are tracked in memory, from the first event after start.
final class EventAdmission: Sendable {
    enum Verdict: Equatable {
        case apply
        case otherDatabase(followed: Set<String>)
        case duplicate(lastApplied: Int64)
        case gap(expected: Int64)
    }

    private struct State {
        var followedDatabases: Set<String>
        var lastApplied: [TenantKey: Int64] = [:]
        var counts = ConsumerSkipCounts()
    }

    private struct TenantKey: Hashable {
        var database: String?
        var tenant: String
    }

    private let state: Mutex<State>
    private let pinsFirstDatabase: Bool

    init(sourceDatabases: [String]) {
        state = Mutex(State(followedDatabases: Set(sourceDatabases)))
        pinsFirstDatabase = sourceDatabases.isEmpty
    }

    var counts: ConsumerSkipCounts {
        state.withLock { $0.counts }
    }

    /// The verdict on `event`; looks up `handler`'s recorded sequence the first time a tenant
    /// comes by, or every time while `refresh` (a gap being waited out).
    func verdict(
        on event: SchemaChangeEvent, handler: any EventHandler, refresh: Bool = false
    ) async throws(EventHandlerError) -> Verdict {
        if let database = event.database {
            let followed = state.withLock { state -> Set<String>? in
                if state.followedDatabases.isEmpty, pinsFirstDatabase { state.followedDatabases = [database] }
                guard state.followedDatabases.contains(database) else {
                    state.counts.otherDatabase += 1
                    return state.followedDatabases
                }
                return nil
            }
            if let followed { return .otherDatabase(followed: followed) }
        }
        guard let tenant = event.tenantID, let sequence = event.tenantSeq else { return .apply }
        let key = TenantKey(database: event.database, tenant: tenant)
        var last = state.withLock { $0.lastApplied[key] }
        if last == nil || refresh, let recording = handler as? any TenantSequenceRecording {
            if let recorded = try await recording.lastAppliedSequence(tenant: tenant, database: event.database) {
                last = max(last ?? recorded, recorded)
            }
        }
        guard let last else { return .apply }
        if sequence <= last {
            state.withLock { $0.counts.duplicates += 1 }
            return .duplicate(lastApplied: last)
        }
        return sequence == last + 1 ? .apply : .gap(expected: last + 1)
    }

    /// Records that `event` was applied (or dead-lettered after it was judged applicable).
    func applied(_ event: SchemaChangeEvent) {
        guard let tenant = event.tenantID, let sequence = event.tenantSeq else { return }
        let key = TenantKey(database: event.database, tenant: tenant)
        state.withLock { state in
            state.lastApplied[key] = max(state.lastApplied[key] ?? sequence, sequence)
        }
    }

    func countGap() {
        state.withLock { $0.counts.gaps += 1 }
    }
}

/// Events a consumer did not apply, by reason, since it started.
public struct ConsumerSkipCounts: Sendable, Equatable {
    /// Events from a source database the consumer does not follow (committed past).
    public var otherDatabase = 0
    /// Events whose `tenant_seq` was already applied (committed past).
    public var duplicates = 0
    /// Events that came after a missing `tenant_seq` (held back, then dead-lettered).
    public var gaps = 0

    public init() {}
}
