import FlyingFox
import FlyingSocks
import Foundation
public import Logging
import Outbox
import Synchronization
public import Prometheus
public import ServiceLifecycle

/// Serves `/metrics` (Prometheus text format), `/health/live` and `/health/ready` for the
/// process it runs in, and, given a ``StatusEndpoint``, the status page at `/` and its data at
/// `/api/status`. Readiness is whatever the owner says: each check returns `nil` when all is
/// well, or the problem, which the response lists with status 503.
public final class ObservabilityServer: Service, Sendable {
    public typealias ReadinessCheck = @Sendable () async -> String?

    private let server: HTTPServer
    private let logger: Logger
    private let stopping: StopFlag

    /// - Parameters:
    ///   - host: the IPv4 address to listen on; `0.0.0.0` for every interface.
    ///   - port: `0` picks a free port (see `listeningPort`).
    public init(
        host: String, port: UInt16, registry: PrometheusCollectorRegistry, readiness: [ReadinessCheck],
        status: StatusEndpoint? = nil, logger: Logger
    ) async throws {
        self.logger = logger
        let stopping = StopFlag()
        self.stopping = stopping
        server = HTTPServer(
            address: try .inet(ip4: host, port: port), logger: SwiftLogAdapter(logger: logger, stopping: stopping))
        await HTTPRoutes(registry: registry, readiness: readiness, status: status, logger: logger).install(on: server)
    }

    /// The port the server listens on, once it does.
    public var listeningPort: UInt16? {
        get async {
            guard case .ip4(_, let port) = await server.listeningAddress else { return nil }
            return port
        }
    }

    public func run() async throws {
        try await withGracefulShutdownHandler {
            do {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    group.addTask { try await self.server.run() }
                    try await self.server.waitUntilListening()
                    let port = await self.listeningPort ?? 0
                    self.logger.info("observability endpoint listening", metadata: ["port": "\(port)"])
                    try await group.waitForAll()
                }
            } catch where Task.isShuttingDownGracefully || Task.isCancelled {
                // Stopping the server ends its accept loop with an error; that is the stop.
            }
        } onGracefulShutdown: { [server, stopping] in
            stopping.raised.store(true, ordering: .relaxed)
            Task { await server.stop(timeout: 1) }
        }
    }

    /// Waits until the server accepts connections.
    public func waitUntilListening() async throws {
        try await server.waitUntilListening()
    }
}

private struct HTTPRoutes: Sendable {
    let registry: PrometheusCollectorRegistry
    let readiness: [ObservabilityServer.ReadinessCheck]
    let status: StatusEndpoint?
    let logger: Logger

    private func readinessProblems() async -> [String] {
        var problems: [String] = []
        for check in readiness {
            if let problem = await check() { problems.append(problem) }
        }
        return problems
    }

    func install(on server: HTTPServer) async {
        await server.appendRoute("GET /metrics") { [registry] _ in
            HTTPResponse(
                statusCode: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: Data(registry.emitToBuffer()))
        }
        await server.appendRoute("GET /health/live") { _ in
            HTTPResponse(statusCode: .ok, body: Data("live\n".utf8))
        }
        await server.appendRoute("GET /health/ready") { _ in
            let problems = await readinessProblems()
            guard problems.isEmpty else {
                return HTTPResponse(statusCode: .serviceUnavailable, body: Data((problems.joined(separator: "\n") + "\n").utf8))
            }
            return HTTPResponse(statusCode: .ok, body: Data("ready\n".utf8))
        }
        guard let status else { return }
        await server.appendRoute("GET /") { request in
            guard status.permits(request) else { return StatusEndpoint.unauthorized }
            return HTTPResponse(
                statusCode: .ok,
                headers: [.contentType: "text/html; charset=utf-8", .cacheControl: "no-store",
                          HTTPHeader("Content-Security-Policy"): StatusPage.contentSecurityPolicy],
                body: Data(StatusPage.html.utf8))
        }
        await server.appendRoute("GET /api/status") { request in
            guard status.permits(request) else { return StatusEndpoint.unauthorized }
            do {
                return HTTPResponse(
                    statusCode: .ok, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                    body: try await status.report(await readinessProblems()))
            } catch {
                logger.warning("status unavailable", metadata: ["error": "\(error)"])
                return HTTPResponse(
                    statusCode: .serviceUnavailable, headers: [.contentType: "application/json", .cacheControl: "no-store"],
                    body: (try? OperatorJSON.encode(["error": "status unavailable: \(error)"])) ?? Data())
            }
        }
    }
}

private final class StopFlag: Sendable {
    let raised = Atomic(false)
}

/// Sends FlyingFox's own log lines to swift-log, one level down, since nothing it says
/// concerns the events being relayed; and once the server is stopping, at debug: it reports
/// the end of its accept loop and of open connections at a stop as errors.
private struct SwiftLogAdapter: FlyingSocks.Logging {
    let logger: Logger
    let stopping: StopFlag

    private func problem(_ level: Logger.Level, _ message: String) {
        logger.log(level: stopping.raised.load(ordering: .relaxed) ? .debug : level, "\(message)")
    }

    func logDebug(_ debug: @autoclosure () -> String) { logger.trace("\(debug())") }
    func logInfo(_ info: @autoclosure () -> String) { logger.debug("\(info())") }
    func logWarning(_ warning: @autoclosure () -> String) { logger.debug("\(warning())") }
    func logError(_ error: @autoclosure () -> String) { problem(.notice, error()) }
    func logCritical(_ critical: @autoclosure () -> String) { problem(.warning, critical()) }
}
