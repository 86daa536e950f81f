import Foundation

/// A self-pipe that lets another thread interrupt a `poll()` on a connection's socket: the
/// listener's `close()`, or a cancelled task whose statement is still waiting for its reply.
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
        // `drain` must never block on an empty pipe, nor `wake` on a full one.
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

    /// Forgets wake-ups sent before now.
    func drain() {
        var bytes = [UInt8](repeating: 0, count: 64)
        while read(readEnd, &bytes, bytes.count) > 0 {}
    }

    /// Waits until `socket` is readable (or, with `writable`, also writable), `wake()` is
    /// called, or `deadline` passes; a wake-up wins over a ready socket.
    func wait(onSocket socket: Int32, writable: Bool, until deadline: ContinuousClock.Instant) -> Readiness {
        var descriptors = [
            pollfd(fd: socket, events: Int16(writable ? POLLIN | POLLOUT : POLLIN), revents: 0),
            pollfd(fd: readEnd, events: Int16(POLLIN), revents: 0),
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
