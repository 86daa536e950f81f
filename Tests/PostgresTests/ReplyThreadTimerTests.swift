import Postgres
import Synchronization
import Testing

/// A caller driven by replies spaces its statements with timers on the thread that reads them,
/// and takes back the ones it no longer needs: a timer taken back never runs, and the timers
/// set beside it still do.
@Suite("Timers on the reply thread")
struct ReplyThreadTimerTests {
    private final class Flag: Sendable {
        private let raised = Atomic(false)
        func raise() { raised.store(true, ordering: .sequentiallyConsistent) }
        var isRaised: Bool { raised.load(ordering: .sequentiallyConsistent) }
    }

    /// Runs on the reply thread once `deadline` passes, resuming the caller.
    private static func waitForTimer(at deadline: ContinuousClock.Instant) async throws {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            do {
                try PostgresConnection.onReplyThread(at: deadline) { continuation.resume() }
            } catch {
                continuation.resume(throwing: error)
            }
        }
    }

    @Test("a timer taken back before its deadline never runs; a later one set beside it runs")
    func cancelledTimerNeverRuns() async throws {
        let cancelledRan = Flag()
        let start = ContinuousClock.now
        let cancelled = try PostgresConnection.onReplyThread(at: start + .milliseconds(200)) {
            cancelledRan.raise()
        }
        #expect(cancelled.cancel())
        try await Self.waitForTimer(at: start + .milliseconds(400))
        // Handlers due together run in one pass: one set for now runs in the pass after it.
        try await Self.waitForTimer(at: .now)
        #expect(!cancelledRan.isRaised)
    }

    @Test("taking back a timer that has run says so")
    func cancellingAfterRunningReportsFalse() async throws {
        let ran = Flag()
        let timer = try PostgresConnection.onReplyThread(at: .now) { ran.raise() }
        try await Self.waitForTimer(at: .now + .milliseconds(50))
        #expect(ran.isRaised)
        #expect(!timer.cancel())
    }
}
