@testable import Relay
import Testing

@Suite("The relay loop's wake signal, without services")
struct WakeSignalTests {
    /// A wait nobody signals ends unsignalled, and not before its timeout.
    private func expectTimesOut(_ wake: WakeSignal, after timeout: Duration) async {
        let clock = ContinuousClock()
        let started = clock.now
        #expect(await !wake.wait(timeout: timeout))
        #expect(started.duration(to: clock.now) >= timeout)
    }

    @Test("a signal sent while nobody waits is kept, and any number of them make one wake-up")
    func pendingSignalsFold() async {
        let wake = WakeSignal()
        wake.signal()
        wake.signal()
        #expect(await wake.wait(timeout: .seconds(60)))
        #expect(await !wake.wait(timeout: .milliseconds(50)))
    }

    @Test("a waiter wakes on a signal long before its timeout, and on its timeout without one")
    func signalOrTimeout() async {
        let wake = WakeSignal()
        async let signalled = wake.wait(timeout: .seconds(600))
        // The signal may come before the wait starts: it is kept then, so either order wakes it.
        wake.signal()
        #expect(await signalled)
        await expectTimesOut(wake, after: .milliseconds(100))
    }

    @Test("a timer armed by an earlier, signalled wait does not end a later wait early")
    func staleTimerIgnored() async {
        let wake = WakeSignal()
        // This wait arms the shared timer for 300 ms, and is signalled at once.
        async let first = wake.wait(timeout: .milliseconds(300))
        wake.signal()
        #expect(await first)
        // This wait moves the shared timer to its own deadline: nothing fires at 300 ms.
        await expectTimesOut(wake, after: .seconds(1))
    }

    @Test("cancelling the waiting task ends the wait, unsignalled")
    func cancellationEndsTheWait() async {
        let wake = WakeSignal()
        let waiter = Task { await wake.wait(timeout: .seconds(600)) }
        waiter.cancel()
        #expect(await !waiter.value)
    }
}
