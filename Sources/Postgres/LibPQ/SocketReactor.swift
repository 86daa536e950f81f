internal import CLibPQ
import Foundation
import Synchronization

/// One thread for the whole process that waits, in `epoll_wait`, on the socket of every
/// connection with a statement in flight, and calls that statement's handler the moment its
/// socket is ready or its deadline passes.
///
/// Why: with a blocking wait per statement, a reply cost three thread wake-ups (a queue hop to
/// send, the `poll()` returning, the caller resuming). Here the caller sends without blocking
/// and the reply wakes only this thread, which reads it without blocking and resumes the
/// caller. Deadlines live on one `timerfd`, armed from whichever thread registers an earlier
/// one, so registering never has to wake this thread.
///
/// A registration fires at most once: either its handler runs (ready or timed out) or
/// `remove` takes it back first, never both, so exactly one side owns the connection next.
final class SocketReactor: Sendable {
    enum Readiness: Sendable {
        case ready, timedOut
    }

    typealias Handler = @Sendable (Readiness) -> Void

    struct Registration: Hashable, Sendable {
        fileprivate let id: UInt64
    }

    private struct Waiter {
        let socket: Int32
        let deadline: ContinuousClock.Instant
        let handler: Handler
    }

    private struct State {
        /// 0 is the timer's epoll tag.
        var nextID: UInt64 = 1
        var waiters: [UInt64: Waiter] = [:]
        /// When the timer fires next; while any waiter is registered it is no later than the
        /// earliest deadline (it may be earlier: a stale expiry only costs a spurious wake-up).
        var timerExpiry: ContinuousClock.Instant?
    }

    private static let timerTag: UInt64 = 0

    /// The process's reactor, its thread started on first use; creating one fails only when the
    /// process is out of file descriptors.
    static let shared: Result<SocketReactor, PostgresError> = Result { () throws(PostgresError) in try SocketReactor() }

    private let epoll: Int32
    private let timer: Int32
    private let state = Mutex(State())

    private init() throws(PostgresError) {
        epoll = epoll_create1(Int32(EPOLL_CLOEXEC))
        guard epoll >= 0 else {
            throw PostgresError(kind: .connectionFailed, message: "cannot create an epoll instance: errno \(errno)")
        }
        timer = timerfd_create(CLOCK_MONOTONIC, Int32(TFD_NONBLOCK | TFD_CLOEXEC))
        guard timer >= 0 else {
            let error = errno
            Foundation.close(epoll)
            throw PostgresError(kind: .connectionFailed, message: "cannot create a timerfd: errno \(error)")
        }
        var event = epoll_event()
        event.events = EPOLLIN.rawValue
        event.data.u64 = Self.timerTag
        epoll_ctl(epoll, Int32(EPOLL_CTL_ADD), timer, &event)
        // Named from inside: Foundation on Linux applies a name only to the current thread, and
        // at most 15 characters of it.
        let thread = Thread { [self] in
            Thread.current.name = "pg-reactor"
            run()
        }
        thread.start()
    }

    /// Calls `handler` once `socket` is readable (or writable, with `writable`) or `deadline`
    /// passes, on the reactor's thread. The handler must not block.
    func watch(
        _ socket: Int32, writable: Bool, until deadline: ContinuousClock.Instant, handler: @escaping Handler
    ) -> Registration {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.waiters[id] = Waiter(socket: socket, deadline: deadline, handler: handler)
            var event = epoll_event()
            event.events = (writable ? EPOLLOUT.rawValue : EPOLLIN.rawValue) | EPOLLONESHOT.rawValue
            event.data.u64 = id
            if epoll_ctl(epoll, Int32(EPOLL_CTL_ADD), socket, &event) != 0 {
                // The socket cannot be watched (closed under us): report it ready, so the
                // handler's next libpq call finds the broken connection and says so.
                state.timerExpiry = nil
                arm(&state, expiry: .now)
                state.waiters[id] = Waiter(socket: -1, deadline: .now, handler: handler)
            } else if state.timerExpiry.map({ deadline < $0 }) ?? true {
                arm(&state, expiry: deadline)
            }
            return Registration(id: id)
        }
    }

    /// Calls `handler` on the reactor's thread once `deadline` passes: for a caller driven by
    /// replies, whose timers then wake the thread that handles its replies instead of another.
    /// Arming costs one `timerfd_settime` when `deadline` is the earliest, and no wake-up.
    func schedule(at deadline: ContinuousClock.Instant, handler: @escaping @Sendable () -> Void) -> Registration {
        state.withLock { state in
            let id = state.nextID
            state.nextID += 1
            state.waiters[id] = Waiter(socket: -1, deadline: deadline, handler: { _ in handler() })
            if state.timerExpiry.map({ deadline < $0 }) ?? true {
                arm(&state, expiry: deadline)
            }
            return Registration(id: id)
        }
    }

    /// Takes a registration back before it fires; `false` when its handler runs or has run.
    /// A timer set for it alone is moved to the next deadline (or stopped): a timer taken back
    /// costs no wake-up.
    func remove(_ registration: Registration) -> Bool {
        state.withLock { state in
            guard let waiter = state.waiters.removeValue(forKey: registration.id) else { return false }
            unregister(waiter)
            if waiter.deadline == state.timerExpiry {
                rearm(&state)
            }
            return true
        }
    }

    private func unregister(_ waiter: Waiter) {
        if waiter.socket >= 0 {
            epoll_ctl(epoll, Int32(EPOLL_CTL_DEL), waiter.socket, nil)
        }
    }

    /// Sets the timer to go off at `expiry` (at once if it has passed).
    private func arm(_ state: inout State, expiry: ContinuousClock.Instant) {
        state.timerExpiry = expiry
        let remaining = max(ContinuousClock.now.duration(to: expiry), .microseconds(1))
        let (seconds, attoseconds) = remaining.components
        var setting = itimerspec()
        setting.it_value.tv_sec = Int(seconds)
        setting.it_value.tv_nsec = Int(attoseconds / 1_000_000_000)
        timerfd_settime(timer, 0, &setting, nil)
    }

    /// Sets the timer to the earliest deadline left, or stops it when none is left.
    private func rearm(_ state: inout State) {
        if let earliest = state.waiters.values.map(\.deadline).min() {
            arm(&state, expiry: earliest)
        } else if state.timerExpiry != nil {
            state.timerExpiry = nil
            var stopped = itimerspec()
            timerfd_settime(timer, 0, &stopped, nil)
        }
    }

    private func run() {
        var events = [epoll_event](repeating: epoll_event(), count: 64)
        while true {
            let count = epoll_wait(epoll, &events, Int32(events.count), -1)
            guard count > 0 else { continue }  // EINTR
            var timerFired = false
            let due: [(Handler, Readiness)] = state.withLock { state in
                var due: [(Handler, Readiness)] = []
                for event in events[0..<Int(count)] {
                    let id = event.data.u64
                    if id == Self.timerTag {
                        timerFired = true
                    } else if let waiter = state.waiters.removeValue(forKey: id) {
                        unregister(waiter)
                        due.append((waiter.handler, .ready))
                    }
                }
                guard timerFired else { return due }
                var expirations: UInt64 = 0
                _ = read(timer, &expirations, MemoryLayout<UInt64>.size)
                state.timerExpiry = nil
                let now = ContinuousClock.now
                for (id, waiter) in state.waiters where waiter.deadline <= now {
                    state.waiters[id] = nil
                    unregister(waiter)
                    due.append((waiter.handler, waiter.socket >= 0 ? .timedOut : .ready))
                }
                rearm(&state)
                return due
            }
            for (handler, readiness) in due {
                handler(readiness)
            }
        }
    }
}
