import Foundation
public import Logging

/// A notification delivered by `NOTIFY` or `pg_notify`.
public struct PostgresNotification: Sendable, Hashable {
    public var channel: String
    public var payload: String
    /// The server process of the session that sent it.
    public var backendPID: Int32
}

/// A dedicated connection that `LISTEN`s and delivers notifications as an async sequence.
///
/// A thread of its own waits on the connection's socket with `poll()`, so a notification is
/// read the moment it arrives, with no sleep loop and nothing blocking Swift's cooperative
/// pool. When the socket stays quiet for `heartbeatInterval` the listener sends `SELECT 1`; a
/// half-open connection that does not answer within `heartbeatTimeout` ends the sequence with
/// `.connectionLost`, as does a terminated backend. Notifications are not persisted by
/// PostgreSQL, so a caller that reconnects must also look for work it may have missed.
public final class PostgresListener: Sendable {
    public struct Options: Sendable {
        /// Quiet time after which the listener checks the connection is alive. Default 10 s.
        public var heartbeatInterval: Duration = .seconds(10)
        /// How long the heartbeat may take before the connection counts as lost. Default 5 s.
        public var heartbeatTimeout: Duration = .seconds(5)
        /// Notifications held for a slow consumer before the listener stops reading the
        /// socket, leaving the rest queued in PostgreSQL. Default 10,000.
        public var bufferLimit: Int = 10_000
        /// The least time between two reads that found notifications, once they come closer
        /// together than this: what arrives meanwhile waits in the socket and is read, and
        /// delivered, together. For a consumer that acts at most that often anyway (the relay,
        /// which spaces its claims by its turn interval), this saves the listening thread a
        /// wake-up per notification under load. Notifications further apart are read as they
        /// arrive: waiting out the interval after each would cost a wake-up of its own.
        /// Default 0: each is read as it arrives.
        public var readInterval: Duration = .zero
        /// Connection settings.
        public var connection = PostgresConnection.Options()

        public init() {}
    }

    /// Notifications in the order the server sent them. Iterating ends with an error when
    /// the connection is lost and ends normally after `close()`.
    public let notifications: PostgresNotificationSequence
    /// The server process of the listening session, for `pg_terminate_backend` in tests and
    /// in operations.
    public let backendPID: Int32
    private let wakePipe: WakePipe
    private let buffer: NotificationBuffer

    private init(notifications: PostgresNotificationSequence, backendPID: Int32, wakePipe: WakePipe, buffer: NotificationBuffer) {
        self.notifications = notifications
        self.backendPID = backendPID
        self.wakePipe = wakePipe
        self.buffer = buffer
    }

    deinit {
        close()
    }

    /// Connects and runs `LISTEN` for each channel before returning, so no notification sent
    /// after this returns is missed.
    ///
    /// With `onNotification`, each notification goes to it on the listening thread the moment
    /// it is read, and `notifications` only ends (with the error, when the connection is lost):
    /// for a caller that reacts without a task, so a notification wakes one thread, not two.
    /// `onNotification` must not block.
    public static func connect(
        _ conninfo: String,
        channels: [String],
        options: Options = Options(),
        logger: Logger = Logger(label: "outbox-bridge.postgres.listener"),
        onNotification: (@Sendable (PostgresNotification) -> Void)? = nil
    ) async throws(PostgresError) -> PostgresListener {
        let setupQueue = DispatchQueue(label: "outbox-bridge.postgres.listener.setup")
        let connection = try await PostgresConnection.run(on: setupQueue) { () throws(PostgresError) in
            let connection = try LibPQConnection.connect(
                conninfo: conninfo, defaults: options.connection.conninfoDefaults, logger: logger)
            let deadline = ContinuousClock.now.advanced(by: options.connection.queryTimeout)
            for channel in channels {
                _ = try connection.execute(
                    "LISTEN \(try connection.quoteIdentifier(channel))", parameters: [], deadline: deadline)
            }
            return connection
        }
        let wakePipe = try WakePipe()
        let buffer = NotificationBuffer(limit: options.bufferLimit)
        let loop = ListenLoop(
            connection: connection, wakePipe: wakePipe, buffer: buffer, onNotification: onNotification,
            options: options, logger: logger)
        let thread = Thread {
            Thread.current.name = "pg-listener"  // see SocketReactor.init
            loop.run()
        }
        thread.start()
        return PostgresListener(
            notifications: PostgresNotificationSequence(buffer: buffer),
            backendPID: connection.backendPID, wakePipe: wakePipe, buffer: buffer)
    }

    /// Stops listening and closes the connection; waiting iterators end normally.
    public func close() {
        buffer.close()
        wakePipe.wake()
    }
}

/// The async sequence of a listener's notifications.
public struct PostgresNotificationSequence: AsyncSequence, Sendable {
    public typealias Element = PostgresNotification
    fileprivate let buffer: NotificationBuffer

    public struct AsyncIterator: AsyncIteratorProtocol {
        fileprivate let buffer: NotificationBuffer

        public mutating func next() async throws -> PostgresNotification? {
            try await buffer.next()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(buffer: buffer)
    }
}

/// The listening thread's body: waits on the socket and the wake pipe, reads notifications,
/// and checks liveness when the connection is quiet.
private struct ListenLoop: Sendable {
    let connection: LibPQConnection
    let wakePipe: WakePipe
    let buffer: NotificationBuffer
    let onNotification: (@Sendable (PostgresNotification) -> Void)?
    let options: PostgresListener.Options
    let logger: Logger

    func run() {
        let clock = ContinuousClock()
        var heartbeatDue = clock.now.advanced(by: options.heartbeatInterval)
        var heartbeatDeadline: ContinuousClock.Instant?
        var lastRead: ContinuousClock.Instant?
        var nextRead = clock.now
        while true {
            // Within `readInterval` of the last read the socket is left alone: only `close()`
            // or the interval's end wakes the thread.
            let spacing = clock.now < nextRead
            let readiness = wakePipe.wait(
                onSocket: spacing ? -1 : connection.socket, writable: false,
                until: spacing ? nextRead : heartbeatDeadline ?? heartbeatDue)
            switch readiness {
            case .woken:
                return
            case .failed(let error):
                buffer.finish(throwing: PostgresError(kind: .connectionLost, message: "poll failed: \(error)"))
                return
            case .timedOut where spacing:
                continue
            case .timedOut where heartbeatDeadline != nil:
                buffer.finish(throwing: PostgresError(
                    kind: .connectionLost, message: "no reply to the heartbeat within \(options.heartbeatTimeout)"))
                return
            case .timedOut:
                do {
                    try connection.sendQuery("SELECT 1")
                } catch {
                    buffer.finish(throwing: error)
                    return
                }
                heartbeatDeadline = clock.now.advanced(by: options.heartbeatTimeout)
            case .socketReady:
                guard connection.consumeInput() else {
                    buffer.finish(throwing: connection.connectionLostError)
                    return
                }
                if heartbeatDeadline != nil, !connection.isBusy {
                    do {
                        try connection.finishPendingResults()
                    } catch {
                        buffer.finish(throwing: error)
                        return
                    }
                    heartbeatDeadline = nil
                }
                heartbeatDue = clock.now.advanced(by: options.heartbeatInterval)
                let notifications = connection.drainNotifications()
                if !notifications.isEmpty {
                    let now = clock.now
                    if let lastRead, lastRead.duration(to: now) < options.readInterval {
                        nextRead = now.advanced(by: options.readInterval)
                    }
                    lastRead = now
                }
                for notification in notifications {
                    if let onNotification {
                        onNotification(notification)
                    } else {
                        guard buffer.push(notification) else { return }
                    }
                }
            }
        }
    }
}

/// Hands notifications from the listening thread to one async consumer, holding at most
/// `limit`; when full, the thread waits, so a slow consumer leaves work queued in PostgreSQL
/// instead of in this process's memory. Guarded by `condition`.
///
/// No continuation is resumed while `condition` is held: resuming takes the task's status lock,
/// and a concurrent cancel holds that lock while its handler waits for `condition`.
private final class NotificationBuffer: @unchecked Sendable {
    private typealias Waiter = CheckedContinuation<PostgresNotification?, any Error>

    private let condition = NSCondition()
    private let limit: Int
    private var items: [PostgresNotification] = []
    private var head = 0
    private var waiter: Waiter?
    private var ending: Result<Void, PostgresError>?

    init(limit: Int) {
        self.limit = max(1, limit)
    }

    /// Delivers one notification, waiting while the buffer is full; `false` once closed.
    func push(_ notification: PostgresNotification) -> Bool {
        condition.lock()
        while items.count - head >= limit, ending == nil {
            condition.wait()
        }
        guard ending == nil else {
            condition.unlock()
            return false
        }
        let waiter = self.waiter
        self.waiter = nil
        if waiter == nil {
            items.append(notification)
        }
        condition.unlock()
        waiter?.resume(returning: notification)
        return true
    }

    func finish(throwing error: PostgresError) {
        end(with: .failure(error))
    }

    func close() {
        end(with: .success(()))
    }

    private func end(with outcome: Result<Void, PostgresError>) {
        condition.lock()
        guard ending == nil else {
            condition.unlock()
            return
        }
        ending = outcome
        condition.broadcast()
        let waiter = self.waiter
        self.waiter = nil
        condition.unlock()
        waiter?.resume(with: outcome.map { nil })
    }

    func next() async throws -> PostgresNotification? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: Waiter) in
                let ready = take(orInstall: continuation)
                if let ready {
                    continuation.resume(with: ready)
                }
            }
        } onCancel: {
            condition.lock()
            let waiter = self.waiter
            self.waiter = nil
            condition.unlock()
            waiter?.resume(throwing: CancellationError())
        }
    }

    /// The next notification, the end, or the cancellation if one of them is ready; otherwise
    /// installs `waiter` and returns nil.
    private func take(orInstall waiter: Waiter) -> Result<PostgresNotification?, any Error>? {
        condition.lock()
        defer { condition.unlock() }
        // Cancellation first, so a cancelled consumer stops even while notifications keep
        // coming (they stay buffered), and one cancelled before its waiter is installed, when
        // `onCancel` found nothing to resume, does not wait forever.
        if Task.isCancelled {
            return .failure(CancellationError())
        }
        if head < items.count {
            let notification = items[head]
            head += 1
            if head == items.count {
                items.removeAll(keepingCapacity: true)
                head = 0
            } else if head >= limit {
                // A consumer that never quite catches up must not grow the array.
                items.removeFirst(head)
                head = 0
            }
            condition.signal()
            return .success(notification)
        }
        if let ending {
            return ending.map { nil }.mapError { $0 }
        }
        self.waiter = waiter
        return nil
    }
}
