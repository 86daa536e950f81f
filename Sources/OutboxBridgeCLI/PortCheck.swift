import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// Whether the HTTP endpoint's address can be bound, checked with the other settings: a port
/// another process holds must stop the bridge at start, not leave it running without `/health`
/// and `/metrics`.
enum PortCheck {
    /// Binds `host:port` (IPv4, `SO_REUSEADDR` as the server sets it) and lets it go again.
    /// - Returns: why it cannot be bound, or `nil`. Port 0 (any free port) always can.
    static func bindProblem(host: String, port: UInt16) -> String? {
        guard port != 0 else { return nil }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        guard inet_pton(AF_INET, host, &address.sin_addr) == 1 else {
            return "\(host) is not an IPv4 address"
        }
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard descriptor >= 0 else { return "no socket to check the port with: \(String(cString: strerror(errno)))" }
        defer { close(descriptor) }
        var reuse: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &reuse, socklen_t(MemoryLayout<Int32>.size))
        let bound = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        return bound ? nil : "cannot listen on \(host):\(port): \(String(cString: strerror(errno)))"
    }
}
