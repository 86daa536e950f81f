import Foundation
import Synchronization

/// A dedicated thread that keeps a client's events (delivery reports, logs, errors) flowing. It
/// sleeps in `poll()` on the client's event descriptor, which librdkafka signals as soon as an
/// event is queued, and then serves every queued event at once: a report wakes it exactly once,
/// and an idle client never wakes it at all (the former 100 ms `rd_kafka_poll` loop woke it ten
/// times a second). The thread keeps the client alive until it stops, so the handle is destroyed
/// only after it no longer waits on the client's descriptor.
final class PollThread: Sendable {
    private struct State {
        var stopRequested = false
        var exited = false
        var exitWaiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())
    private let client: RDKafkaClient

    private init(client: RDKafkaClient) {
        self.client = client
    }

    static func start(name: String, polling client: RDKafkaClient) -> PollThread {
        let loop = PollThread(client: client)
        let thread = Thread { [client] in
            while !loop.isStopRequested {
                // Serve before waiting: the pipe is written only when the queue turns non-empty,
                // so whatever was queued before it was set up, or while serving, is served here.
                while client.poll(timeoutMilliseconds: 0) > 0 {}
                client.waitForEvents()
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
        client.interruptEventWait()
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
            client.interruptEventWait()
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
