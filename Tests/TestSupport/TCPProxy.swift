import Foundation
import Synchronization

/// A TCP proxy on loopback that a test controls, to give the relay the network faults
/// production has: it forwards, adds latency, or stops forwarding without closing anything (a
/// blackhole: the peer's kernel still acknowledges, so neither side sees an error, exactly like
/// a half-open connection behind a NAT or a frozen server).
///
/// Each accepted connection gets its own upstream connection and two pump threads. The proxy
/// runs on plain threads with `poll()`, so it keeps working while the code under test blocks.
public final class TCPProxy: Sendable {
    /// One proxied connection, named by the local port of its upstream side: that is the
    /// `client_port` PostgreSQL shows for the session in `pg_stat_activity`.
    public struct Connection: Sendable, Hashable {
        public let upstreamLocalPort: Int

        public init(upstreamLocalPort: Int) {
            self.upstreamLocalPort = upstreamLocalPort
        }
    }

    private struct State {
        var stopped = false
        /// Everything, new connections included, goes quiet.
        var blackholeAll = false
        var blackholed: Set<Connection> = []
        var open: Set<Connection> = []
        var latency: Duration = .zero
        var accepted = 0
    }

    /// The port to connect to instead of the target's.
    public let port: Int
    private let targetPort: Int
    private let listener: Int32
    private let state = Mutex(State())

    /// Listens on an ephemeral loopback port and forwards to `127.0.0.1:targetPort`.
    public init(targetPort: Int) throws {
        self.targetPort = targetPort
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { throw TestEnvironmentError("proxy: socket() failed: errno \(errno)") }
        var address = Self.loopback(port: 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, Foundation.listen(descriptor, 64) == 0 else {
            close(descriptor)
            throw TestEnvironmentError("proxy: cannot listen: errno \(errno)")
        }
        listener = descriptor
        port = Self.localPort(of: descriptor)
        let thread = Thread { [self] in acceptLoop() }
        thread.name = "test.tcp-proxy.accept"
        thread.start()
    }

    deinit {
        close(listener)
    }

    /// Stops accepting and closes every connection.
    public func stop() {
        state.withLock { $0.stopped = true }
    }

    /// Delay added before each chunk is forwarded, in both directions.
    public func setLatency(_ latency: Duration) {
        state.withLock { $0.latency = latency }
    }

    /// Stops forwarding on every connection, and on every connection accepted from now on,
    /// until `restore()`.
    public func blackholeEverything() {
        state.withLock { $0.blackholeAll = true }
    }

    /// Stops forwarding on these connections only; new connections work, as after a NAT
    /// dropped its state for the old ones.
    public func blackhole(_ connections: some Sequence<Connection>) {
        state.withLock { $0.blackholed.formUnion(connections) }
    }

    /// Forwards everything again, resuming blackholed connections where they stopped.
    public func restore() {
        state.withLock { state in
            state.blackholeAll = false
            state.blackholed = []
        }
    }

    /// Connections currently open through the proxy.
    public var openConnections: Set<Connection> { state.withLock { $0.open } }

    /// How many connections the proxy has accepted so far.
    public var acceptedCount: Int { state.withLock { $0.accepted } }

    private func acceptLoop() {
        while !state.withLock({ $0.stopped }) {
            var descriptor = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&descriptor, 1, 100) > 0 else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: targetPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard connected == 0 else {
                close(client)
                close(upstream)
                continue
            }
            let connection = Connection(upstreamLocalPort: Self.localPort(of: upstream))
            state.withLock { state in
                state.open.insert(connection)
                state.accepted += 1
            }
            let link = Link(client: client, upstream: upstream)
            for (from, to) in [(client, upstream), (upstream, client)] {
                let thread = Thread { [self] in
                    pump(from: from, to: to, of: connection)
                    if link.finishOneDirection() {
                        state.withLock { _ = $0.open.remove(connection) }
                    }
                }
                thread.name = "test.tcp-proxy.pump"
                thread.start()
            }
        }
    }

    /// Copies bytes one way until either side closes or the proxy stops, holding them back
    /// while the connection is blackholed.
    private func pump(from source: Int32, to destination: Int32, of connection: Connection) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        func settings() -> (stopped: Bool, quiet: Bool, latency: Duration) {
            state.withLock { state in
                (state.stopped, state.blackholeAll || state.blackholed.contains(connection), state.latency)
            }
        }
        while true {
            if settings().stopped { return }
            var descriptor = pollfd(fd: source, events: Int16(POLLIN), revents: 0)
            let readable = poll(&descriptor, 1, 20) > 0
            // Decided after the wait, so bytes that arrive once the blackhole is on stay put.
            let (stopped, quiet, latency) = settings()
            if stopped { return }
            // Read nothing while quiet: the bytes stay in the kernel's buffers, acknowledged
            // and undelivered.
            guard readable, !quiet else {
                if quiet { Thread.sleep(forTimeInterval: 0.02) }
                continue
            }
            let count = read(source, &buffer, buffer.count)
            if count <= 0 { return }
            if latency > .zero {
                Thread.sleep(forTimeInterval: latency.timeInterval)
            }
            var sent = 0
            while sent < count {
                // MSG_NOSIGNAL: a peer that closed must end this pump, not the test process (SIGPIPE).
                let written = buffer.withUnsafeBytes { send(destination, $0.baseAddress! + sent, count - sent, Int32(MSG_NOSIGNAL)) }
                if written <= 0 { return }
                sent += written
            }
        }
    }

    /// Both sockets of one connection; the second direction to finish closes them.
    private final class Link: Sendable {
        let client: Int32
        let upstream: Int32
        private let finished = Atomic<Int>(0)

        init(client: Int32, upstream: Int32) {
            self.client = client
            self.upstream = upstream
        }

        /// Ends one direction: shuts both sockets down, so the other direction ends too and
        /// each peer sees the connection close; the last one closes them. `true` for the last.
        func finishOneDirection() -> Bool {
            shutdown(client, Int32(SHUT_RDWR))
            shutdown(upstream, Int32(SHUT_RDWR))
            guard finished.add(1, ordering: .sequentiallyConsistent).newValue == 2 else { return false }
            close(client)
            close(upstream)
            return true
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }

    private static func localPort(of socket: Int32) -> Int {
        var address = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(socket, $0, &length) }
        }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}

extension Duration {
    fileprivate var timeInterval: TimeInterval {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}
