import Foundation

/// The CPU time a thread spends being put to sleep and woken up again on this machine. A relay
/// pays it at every wake-up (a reply from PostgreSQL or the broker, a notification, a timer),
/// and on a virtual machine it can outweigh the work it wakes up for: it is the floor under the
/// CPU per event of a relay that has to react within a few milliseconds.
enum WakeUpCost {
    /// Mean CPU time per wake-up of `count` sleeps of `interval` (`nanosleep`, on a thread of
    /// its own: it blocks).
    static func measure(sleeping interval: Duration, count: Int) async -> Duration {
        await withCheckedContinuation { continuation in
            Thread {
                let (seconds, attoseconds) = interval.components
                var request = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
                let start = threadCPUTime()
                for _ in 0..<count {
                    var remaining = timespec()
                    while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
                }
                continuation.resume(returning: (threadCPUTime() - start) / count)
            }.start()
        }
    }

    private static func threadCPUTime() -> Duration {
        var now = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now)
        return .seconds(now.tv_sec) + .nanoseconds(now.tv_nsec)
    }
}
