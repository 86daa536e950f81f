import Dispatch
import Synchronization

/// Wakes the relay loop when a notification arrives, folding any number of signals sent while
/// it was busy into one wake-up: the loop drains the whole backlog each time it wakes, so one
/// pending signal is all it needs.
///
/// A wait is one continuation, nothing more: no task group, no sleeping task per wait. Timed
/// waits share one dispatch timer that each wait moves to its own deadline, so a wait that is
/// signalled leaves at most one stale firing behind, and an idle relay wakes once per timeout.
final class WakeSignal: Sendable {
    private struct State {
        var pending = false
        var waiter: CheckedContinuation<Bool, Never>?
        /// When the current waiter times out; a timer firing earlier (armed by a previous
        /// wait) leaves it waiting.
        var deadline = DispatchTime.distantFuture

        mutating func takeWaiter() -> CheckedContinuation<Bool, Never>? {
            defer {
                waiter = nil
                deadline = .distantFuture
            }
            return waiter
        }
    }

    private let state = Mutex(State())
    /// Dispatch objects are thread-safe (scheduling a source from any thread is documented
    /// use); the overlay just does not mark the protocol `Sendable`.
    nonisolated(unsafe) private let timer: any DispatchSourceTimer

    init() {
        timer = DispatchSource.makeTimerSource(queue: DispatchQueue(label: "outbox-bridge.relay.wake-timeout"))
        timer.setEventHandler { [weak self] in self?.timeOut() }
        timer.activate()
    }

    private func timeOut() {
        Self.resume(state.withLock { state in
            guard state.waiter != nil, DispatchTime.now() >= state.deadline else { return nil }
            return state.takeWaiter()
        }, signalled: false)
    }

    deinit {
        timer.cancel()
    }

    func signal() {
        Self.resume(state.withLock { state in
            guard state.waiter != nil else {
                state.pending = true
                return nil
            }
            return state.takeWaiter()
        }, signalled: true)
    }

    /// Returns when signalled (at once if a signal is pending), after `timeout` if one is given,
    /// or when the task is cancelled; `true` when it was signalled.
    @discardableResult
    func wait(timeout: Duration? = nil) async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let signalled: Bool? = state.withLock { state in
                    if state.pending || Task.isCancelled {
                        defer { state.pending = false }
                        return state.pending
                    }
                    state.waiter = continuation
                    if let timeout {
                        state.deadline = .now() + .nanoseconds(Int(timeout.nanoseconds))
                        timer.schedule(deadline: state.deadline, leeway: .milliseconds(1))
                    }
                    return nil
                }
                if let signalled { continuation.resume(returning: signalled) }
            }
        } onCancel: {
            Self.resume(state.withLock { $0.takeWaiter() }, signalled: false)
        }
    }

    private static func resume(_ waiter: CheckedContinuation<Bool, Never>?, signalled: Bool) {
        waiter?.resume(returning: signalled)
    }
}

extension Duration {
    /// Whole nanoseconds, clamped to `Int64`.
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds.multipliedReportingOverflow(by: 1_000_000_000).overflow
            ? .max : seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
