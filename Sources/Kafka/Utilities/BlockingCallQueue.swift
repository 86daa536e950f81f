import Dispatch

/// A serial queue for librdkafka calls that block (flush, metadata, consumer poll, commit,
/// close), so they never hold a thread of Swift's cooperative pool. Serial also keeps a
/// client's calls in the order they were made.
struct BlockingCallQueue: Sendable {
    private let queue: DispatchQueue

    init(label: String) {
        queue = DispatchQueue(label: label)
    }

    func run<Value: Sendable, Failure: Error>(
        _ body: @escaping @Sendable () throws(Failure) -> Value
    ) async throws(Failure) -> Value {
        let result: Result<Value, Failure> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: Result { () throws(Failure) -> Value in try body() })
            }
        }
        return try result.get()
    }

    /// Runs `body` without waiting for it: used from `deinit`, which cannot await.
    func detach(_ body: @escaping @Sendable () -> Void) {
        queue.async(execute: body)
    }
}
