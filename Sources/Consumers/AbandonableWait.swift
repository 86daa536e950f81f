import Synchronization

/// Why ``abandonable(within:_:)`` stopped waiting before its operation finished.
enum AbandonedWait: Error, Sendable {
    /// The waiting task was cancelled.
    case cancelled
    /// The time allowed passed.
    case timedOut(Duration)
}

/// Runs `operation` in a task of its own and waits for its result, but stops waiting (and
/// cancels it) when the waiting task is cancelled or `limit` passes.
///
/// For waits on calls that cannot be interrupted: a librdkafka call that blocks its queue while
/// the broker is unreachable, a handler's query to a frozen database. Abandoning the wait does
/// not stop the call; it lets a consumer that is shutting down stop within its bound, leaving the
/// call to finish (or not) while the process exits. Only a consumer that is leaving may abandon
/// a poll or a commit: it neither processes nor commits anything afterwards, so an abandoned
/// record is simply delivered again to whoever takes the partition over.
func abandonable<Value: Sendable>(
    within limit: Duration? = nil, _ operation: @escaping @Sendable () async throws -> Value
) async throws -> Value {
    let outcome = OneShotOutcome<Value>()
    let work = Task {
        do {
            outcome.resolve(.success(try await operation()))
        } catch {
            outcome.resolve(.failure(error))
        }
    }
    let timer = limit.map { limit in
        Task {
            try await Task.sleep(for: limit)
            outcome.resolve(.failure(AbandonedWait.timedOut(limit)))
        }
    }
    defer { timer?.cancel() }
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            outcome.await(continuation)
        }
    } onCancel: {
        outcome.resolve(.failure(AbandonedWait.cancelled))
        work.cancel()
    }
}

/// The first of several outcomes, handed to one continuation whichever arrives first.
private final class OneShotOutcome<Value: Sendable>: Sendable {
    private struct State {
        var result: Result<Value, any Error>?
        var continuation: CheckedContinuation<Value, any Error>?
    }

    private let state = Mutex(State())

    func resolve(_ result: Result<Value, any Error>) {
        let continuation: CheckedContinuation<Value, any Error>? = state.withLock { state in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume(with: result)
    }

    func await(_ continuation: CheckedContinuation<Value, any Error>) {
        let result: Result<Value, any Error>? = state.withLock { state in
            guard let result = state.result else {
                state.continuation = continuation
                return nil
            }
            return result
        }
        if let result { continuation.resume(with: result) }
    }
}
