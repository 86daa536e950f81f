import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A fixed loopback port that forwards each connection to one broker of the development
/// cluster, so `dev-broker --port` keeps the same bootstrap list from one start to the next.
///
/// librdkafka's mock cluster (2.0.2) listens on ports the kernel picks. A client needs only its
/// bootstrap connection to be stable: the metadata it reads through it lists the brokers'
/// current ports, and it connects to those directly. The forwarder copies bytes both ways on
/// threads of its own (blocking `poll`, never the cooperative pool) and owns its listening
/// socket, which `close()` shuts (the accepting thread holds the forwarder until then).
final class BootstrapForwarder: Sendable {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    let port: UInt16
    private let listener: Int32
    private let target: (host: String, port: UInt16)
    private let closed = Atomic<Bool>(false)

    /// Listens on 127.0.0.1:`port` and forwards to `broker` (`host:port`).
    init(port: UInt16, broker: String) throws(Failure) {
        guard let colon = broker.lastIndex(of: ":"), let targetPort = UInt16(broker[broker.index(after: colon)...]) else {
            throw Failure(description: "cannot forward to broker address \(broker)")
        }
        target = (String(broker[..<colon]), targetPort)
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw Failure(description: "cannot open a socket: \(String(cString: strerror(errno)))") }
        var reuse: Int32 = 1
        setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: port)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.bind(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard bound == 0, listen(socket, 64) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(socket)
            throw Failure(description: "--port \(port): cannot listen on 127.0.0.1:\(port): \(reason)")
        }
        self.port = port
        self.listener = socket
        let thread = Thread { [self] in acceptConnections() }
        thread.name = "dev-broker bootstrap forwarder"
        thread.start()
    }

    /// Stops accepting; connections already forwarded end when either side closes.
    func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        shutdown(listener, Int32(SHUT_RDWR))
        Glibc.close(listener)
    }

    private func acceptConnections() {
        while !closed.load(ordering: .acquiring) {
            let client = accept(listener, nil, nil)
            guard client >= 0 else {
                if errno == EINTR { continue }
                return
            }
            guard let upstream = connectToTarget() else {
                Glibc.close(client)
                continue
            }
            let thread = Thread { Self.pump(client, upstream) }
            thread.name = "dev-broker bootstrap connection"
            thread.start()
        }
    }

    private func connectToTarget() -> Int32? {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return nil }
        var address = Self.loopback(port: target.port)
        if target.host != "127.0.0.1", target.host != "localhost" {
            guard inet_pton(AF_INET, target.host, &address.sin_addr) == 1 else {
                Glibc.close(socket)
                return nil
            }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            Glibc.close(socket)
            return nil
        }
        return socket
    }

    /// Copies bytes between the two sockets until either side closes, then closes both.
    private static func pump(_ first: Int32, _ second: Int32) {
        defer {
            Glibc.close(first)
            Glibc.close(second)
        }
        var descriptors = [pollfd(fd: first, events: Int16(POLLIN), revents: 0), pollfd(fd: second, events: Int16(POLLIN), revents: 0)]
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            guard poll(&descriptors, 2, -1) >= 0 else {
                if errno == EINTR { continue }
                return
            }
            for (index, descriptor) in descriptors.enumerated() where descriptor.revents != 0 {
                let source = descriptor.fd
                let sink = index == 0 ? second : first
                let count = read(source, &buffer, buffer.count)
                guard count > 0, writeAll(buffer, count: count, to: sink) else { return }
            }
        }
    }

    private static func writeAll(_ buffer: [UInt8], count: Int, to socket: Int32) -> Bool {
        var written = 0
        while written < count {
            let result = buffer.withUnsafeBytes { send(socket, $0.baseAddress! + written, count - written, Int32(MSG_NOSIGNAL)) }
            guard result > 0 else { return false }
            written += result
        }
        return true
    }

    private static func loopback(port: UInt16) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return address
    }
}
