import FlyingFox
public import Foundation

/// The status page (`/`) and its data (`/api/status`), served beside `/metrics` and `/health/*`.
///
/// Tenant names and error texts are sensitive, so both are served only to clients on the
/// loopback interface, or to any client that sends `Authorization: Bearer <token>` when a token
/// is configured. Everyone else gets a bare 401 whose body says nothing about the bridge.
/// `/metrics` and `/health/*` stay open as before: probes and scrapers carry no token.
public struct StatusEndpoint: Sendable {
    /// The `/api/status` document, given the serving process's readiness problems (empty when
    /// ready).
    public typealias Report = @Sendable (_ readinessProblems: [String]) async throws -> Data

    /// `nil`: loopback clients only.
    public let token: String?
    public let report: Report

    public init(token: String?, report: @escaping Report) {
        self.token = token
        self.report = report
    }

    /// Whether `request` may see the page and its data.
    ///
    /// A loopback client must also have asked for a loopback name: a web page from elsewhere
    /// whose name was rebound to 127.0.0.1 (DNS rebinding) reaches the port from the operator's
    /// own browser, but its requests carry its own name in `Host`.
    func permits(_ request: HTTPRequest) -> Bool {
        if Self.isLoopback(request.remoteAddress), Self.namesLoopback(request.headers[.host]) { return true }
        guard let token, let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return false }
        return Self.constantTimeEqual(Array(header.dropFirst("Bearer ".count).utf8), Array(token.utf8))
    }

    /// The peer's own address, never `X-Forwarded-For`, which any client can write.
    private static func isLoopback(_ address: HTTPRequest.Address?) -> Bool {
        switch address {
        case .ip4(let ip, _)?: ip.hasPrefix("127.")
        case .ip6(let ip, _)?: ip == "::1" || ip.hasPrefix("::ffff:127.")
        case .unix?: true
        case nil: false
        }
    }

    /// `localhost`, `127.x.x.x` or `[::1]`, with or without a port.
    private static func namesLoopback(_ host: String?) -> Bool {
        guard let host = host?.lowercased() else { return false }
        let name = host.hasPrefix("[") ? String(host.prefix { $0 != "]" }) + "]" : String(host.prefix { $0 != ":" })
        return name == "localhost" || name.hasPrefix("127.") || name == "[::1]"
    }

    /// Compares every byte whatever the first difference, so the response time does not tell
    /// an attacker how much of a guessed token was right.
    private static func constantTimeEqual(_ given: [UInt8], _ expected: [UInt8]) -> Bool {
        var difference = UInt8(given.count == expected.count ? 0 : 1)
        for index in expected.indices {
            difference |= expected[index] ^ (index < given.count ? given[index] : 0)
        }
        return difference == 0
    }

    static let unauthorized = HTTPResponse(
        statusCode: .unauthorized, headers: [HTTPHeader("WWW-Authenticate"): "Bearer", .contentType: "text/plain; charset=utf-8"],
        body: Data("unauthorized\n".utf8))
}
