import Foundation

/// A self-pipe that lets another thread interrupt a `poll()` on a connection's socket: the
/// listener's `close()`.
final class WakePipe: Sendable {
    private let readEnd: Int32
    private let writeEnd: Int32

    enum Readiness {
        case socketReady, woken, timedOut, failed(Int32)
    }

    init() throws(PostgresError) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            throw PostgresError(kind: .connectionFailed, message: "cannot create a pipe: errno \(errno)")
        }
        readEnd = fds[0]
        writeEnd = fds[1]
        // `wake` must never block on a full pipe.
        for end in fds {
            _ = fcntl(end, F_SETFL, fcntl(end, F_GETFL) | O_NONBLOCK)
        }
    }

    deinit {
        Foundation.close(readEnd)
        Foundation.close(writeEnd)
    }

    /// Safe from any thread.
    func wake() {
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    /// Waits until `socket` is readable (or, with `writable`, also writable), `wake()` is
    /// called, or `deadline` passes; a wake-up wins over a ready socket.
    func wait(onSocket socket: Int32, writable: Bool, until deadline: ContinuousClock.Instant) -> Readiness {
        Self.wait(onSocket: socket, writable: writable, until: deadline, wakeEnd: readEnd)
    }

    /// Waits like `wait` without a pipe to be woken by: for a thread that owns the socket.
    static func wait(onSocket socket: Int32, writable: Bool, until deadline: ContinuousClock.Instant) -> Readiness {
        wait(onSocket: socket, writable: writable, until: deadline, wakeEnd: -1)
    }

    /// `poll()` ignores a negative descriptor, so `wakeEnd` -1 waits on the socket alone.
    private static func wait(
        onSocket socket: Int32, writable: Bool, until deadline: ContinuousClock.Instant, wakeEnd: Int32
    ) -> Readiness {
        var descriptors = [
            pollfd(fd: socket, events: Int16(writable ? POLLIN | POLLOUT : POLLIN), revents: 0),
            pollfd(fd: wakeEnd, events: Int16(POLLIN), revents: 0),
        ]
        let clock = ContinuousClock()
        var ready: Int32
        // A signal interrupting the wait is neither a timeout nor a failure: wait on.
        repeat {
            ready = poll(&descriptors, 2, clock.now.duration(to: deadline).pollMilliseconds)
        } while ready < 0 && errno == EINTR
        if ready < 0 { return .failed(errno) }
        if descriptors[1].revents != 0 { return .woken }
        if descriptors[0].revents != 0 { return .socketReady }
        return .timedOut
    }
}
