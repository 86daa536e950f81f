import Synchronization

/// Counts live librdkafka handles (`rd_kafka_t` and mock clusters) so a test can prove each one
/// is destroyed exactly once: a leak leaves the count above zero, a double destroy drives it
/// below. Handles count towards the `scope` current when they were created, so a test that
/// runs beside others watches only its own. Some handles are destroyed on a client's own queue
/// after its owner is gone, so a test can wait for the count instead of guessing when.
enum RDKafkaHandleCounter {
    /// The scope new handles count towards; tests set their own.
    @TaskLocal static var scope = "default"

    private struct State {
        var live: [String: Int] = [:]
        var waiters: [(scope: String, target: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private static let state = Mutex(State())

    static func live(in scope: String) -> Int {
        state.withLock { $0.live[scope, default: 0] }
    }

    /// Counts a new handle; returns the scope to name when it is destroyed.
    static func created() -> String {
        let scope = scope
        state.withLock { $0.live[scope, default: 0] += 1 }
        return scope
    }

    static func destroyed(in scope: String) {
        let reached = state.withLock { state in
            state.live[scope, default: 0] -= 1
            let live = state.live[scope, default: 0]
            let matches = { (waiter: (scope: String, target: Int, continuation: CheckedContinuation<Void, Never>)) in
                waiter.scope == scope && waiter.target >= live
            }
            defer { state.waiters.removeAll(where: matches) }
            return state.waiters.filter(matches).map(\.continuation)
        }
        for continuation in reached {
            continuation.resume()
        }
    }

    /// Returns once the live count of `scope` has dropped to `target`.
    static func waitUntilLive(is target: Int, in scope: String) async {
        await withCheckedContinuation { continuation in
            let reached = state.withLock { state in
                if state.live[scope, default: 0] <= target { return true }
                state.waiters.append((scope, target, continuation))
                return false
            }
            if reached {
                continuation.resume()
            }
        }
    }
}
