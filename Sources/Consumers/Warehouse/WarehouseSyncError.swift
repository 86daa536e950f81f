public import Postgres

/// Why the warehouse sync could not apply an event or could not start.
public enum WarehouseSyncError: Error, Sendable, CustomStringConvertible {
    /// A change the warehouse cannot apply without losing or failing on data (a narrowing
    /// retype). The event's transaction is rolled back; the event is dead-lettered.
    case unsafeChange(String)
    /// The event is malformed or names something the sync refuses to touch.
    case invalidEvent(String)
    /// Applying DDL here would be captured as new events (see
    /// ``WarehouseSyncConfiguration/automationRole``). Fixed by configuration, so retried.
    case captureLoop(String)
    /// The warehouse failed or could not be reached.
    case postgres(PostgresError)

    public var description: String {
        switch self {
        case .unsafeChange(let reason): "unsafe change: \(reason)"
        case .invalidEvent(let reason): "invalid event: \(reason)"
        case .captureLoop(let reason): "refusing to apply DDL: \(reason)"
        case .postgres(let error): "warehouse: \(error)"
        }
    }

    /// Whether retrying later can succeed. Connection failures, lock and statement timeouts,
    /// serialization failures and deadlocks, resource exhaustion, operator intervention and
    /// missing privileges (an operator can grant them) are retriable; every other server error
    /// (a dependent view blocking a type change, a primary key the warehouse's data violates)
    /// is permanent: the same statement would fail again.
    public var isRetriable: Bool {
        switch self {
        case .unsafeChange, .invalidEvent: return false
        case .captureLoop: return true
        case .postgres(let error):
            switch error.kind {
            case .connectionFailed, .connectionLost, .timedOut, .closed: return true
            case .decoding: return false
            case .server:
                guard let state = error.sqlState else { return false }
                if state == PostgresError.SQLState.insufficientPrivilege { return true }
                if state == PostgresError.SQLState.lockNotAvailable { return true }
                // 08 connection, 40 rollback (serialization, deadlock), 53 resources,
                // 57 operator intervention and query cancel (statement_timeout), 58 system.
                return ["08", "40", "53", "57", "58"].contains(String(state.prefix(2)))
            }
        }
    }

    /// Whether the connection must be replaced before the next attempt.
    var breaksConnection: Bool {
        guard case .postgres(let error) = self else { return false }
        return error.kind != .server && error.kind != .decoding
    }
}
