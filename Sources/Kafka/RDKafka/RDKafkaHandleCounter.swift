import Synchronization

/// Counts live librdkafka handles (`rd_kafka_t` and mock clusters) so a test can prove each one
/// is destroyed exactly once: a leak leaves the count above its baseline, a double destroy
/// drives it below. Some handles are destroyed on a client's own queue after its owner is gone,
/// so a test can wait for the count instead of guessing when that happened.
enum RDKafkaHandleCounter {
    private struct State {
        var live = 0
        var waiters: [(target: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private static let state = Mutex(State())

    static var live: Int {
        state.withLock { $0.live }
    }

    static func created() {
        state.withLock { $0.live += 1 }
    }

    static func destroyed() {
        let reached = state.withLock { state in
            state.live -= 1
            let live = state.live
            defer { state.waiters.removeAll { $0.target == live } }
            return state.waiters.filter { $0.target == live }.map(\.continuation)
        }
        for continuation in reached {
            continuation.resume()
        }
    }

    /// Returns once the live count has dropped to `target`.
    static func waitUntilLive(is target: Int) async {
        await withCheckedContinuation { continuation in
            let reached = state.withLock { state in
                if state.live <= target { return true }
                state.waiters.append((target, continuation))
                return false
            }
            if reached {
                continuation.resume()
            }
        }
    }
}
