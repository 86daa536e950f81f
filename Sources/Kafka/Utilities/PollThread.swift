import Foundation
import Synchronization

/// A dedicated thread that keeps a client's events (delivery reports, logs, errors) flowing by
/// blocking in `rd_kafka_poll`.
///
/// `rd_kafka_poll` returns as soon as a delivery report arrives, so acknowledgements reach their
/// waiters without a sleep-imposed floor on latency; the 100 ms timeout only bounds how long a
/// stop request waits to be noticed. The thread holds the client weakly between polls so that
/// releasing the client's owner is what destroys the handle.
final class PollThread: Sendable {
    private struct State {
        var stopRequested = false
        var exited = false
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    private init() {}

    static func start(name: String, polling client: RDKafkaClient) -> PollThread {
        let loop = PollThread()
        let thread = Thread { [weak client] in
            while !loop.isStopRequested, let client {
                client.poll(timeoutMilliseconds: 100)
            }
            loop.markExited()
        }
        thread.name = name
        thread.start()
        return loop
    }

    private var isStopRequested: Bool {
        state.withLock { $0.stopRequested }
    }

    func requestStop() {
        state.withLock { $0.stopRequested = true }
    }

    /// Returns once the thread no longer touches the client.
    func stop() async {
        await withCheckedContinuation { continuation in
            let alreadyExited = state.withLock { state in
                state.stopRequested = true
                if !state.exited {
                    state.exitWaiters.append(continuation)
                }
                return state.exited
            }
            if alreadyExited {
                continuation.resume()
            }
        }
    }

    private func markExited() {
        let waiters = state.withLock { state in
            state.exited = true
            defer { state.exitWaiters = [] }
            return state.exitWaiters
        }
        for waiter in waiters {
            waiter.resume()
        }
    }
}

extension Duration {
    /// librdkafka takes timeouts as `int` milliseconds; longer ones are clamped.
    var rdKafkaMilliseconds: Int32 {
        let (seconds, attoseconds) = components
        let milliseconds = seconds * 1000 + attoseconds / 1_000_000_000_000_000
        return Int32(clamping: max(0, milliseconds))
    }
}
