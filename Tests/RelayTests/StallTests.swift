import Foundation
import Kafka
import Postgres
import TestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// No silent stall: a PostgreSQL connection that goes quiet without closing (a blackhole, a
/// frozen backend) or a broker that never answers costs the relay at most one deadline. It
/// abandons the connection, recovers by itself on a new one, and `/health/ready` fails while it
/// is stalled. The relay runs as a login granted only `outbox_relay`, through a TCP proxy the
/// test controls.
@Suite("The relay never stalls silently", .serialized)
struct StallTests {
    /// Bounds short enough for a test, long enough for a busy machine: a call without a reply
    /// is abandoned after 8 s, and readiness fails after 2 s without progress, so it fails for
    /// several seconds of every stall.
    static let faultSettings = fastLeases.merging([
        "DATABASE_CONNECT_TIMEOUT_SECONDS": "5",
        "DATABASE_STATEMENT_TIMEOUT_SECONDS": "6",
        "DATABASE_QUERY_TIMEOUT_SECONDS": "8",
        "READINESS_CLAIM_STALL_SECONDS": "2",
        "READINESS_MARK_DELAY_SECONDS": "2",
        "READINESS_FAILING_FOR_SECONDS": "2",
        "LISTEN_HEARTBEAT_SECONDS": "1",
        "RETENTION_KEEP_PROCESSED": "0",
    ]) { _, new in new }

    /// The deadline plus reconnecting and catching up, with room for a busy machine.
    static let recoveryBound: Duration = .seconds(120)

    /// A relay started as `login` through `proxy`, with its health port.
    struct StartedRelay {
        let process: RelayProcess
        let healthPort: Int

        func ready() async throws -> (status: Int, body: String) {
            try await httpGet(port: healthPort, "/health/ready")
        }
    }

    static func startRelay(
        _ environment: OutboxTestEnvironment, login: RelayLogin, proxy: TCPProxy, extra: [String] = [],
        settings: [String: String] = [:], label: String
    ) async throws -> StartedRelay {
        let url = login.url(environment.database.url, port: proxy.port)
        let process = try RelayProcess.launch(
            relayArguments(environment, extra, databaseURL: url),
            environment: faultSettings.merging(settings) { _, new in new }, label: label)
        try await process.waitForStandardError(containing: "observability endpoint listening")
        let line = try #require(process.standardErrorLines.first { $0.contains("observability endpoint listening") })
        let port = try #require(line.split(separator: " ").first { $0.hasPrefix("port=") }.flatMap { Int($0.dropFirst(5)) })
        return StartedRelay(process: process, healthPort: port)
    }

    static func clusterPort(_ environment: OutboxTestEnvironment) throws -> Int {
        try #require(URLComponents(string: environment.database.url)?.port)
    }

    /// Runs the first round of events through the relay and waits for it to be ready.
    static func warmUp(_ environment: OutboxTestEnvironment, _ sql: PostgresConnection, relay: StartedRelay) async throws {
        try await emit(sql, tenants: 3, eventsPerTenant: 5, firstRound: 0)
        try await environment.waitUntilAllDelivered(sql)
        try await waitUntil("the relay is ready", timeout: .seconds(60)) { try await relay.ready().status == 200 }
    }

    /// Runs `body` with a relay started as a fresh relay login through a proxy of its own, after
    /// a first round of events has gone through it and it is ready; stops both afterwards.
    func withWarmRelay(
        _ label: String,
        _ body: (OutboxTestEnvironment, PostgresConnection, RelayLogin, TCPProxy, StartedRelay) async throws -> Void
    ) async throws {
        try await withEnvironment(label) { environment, sql in
            let login = try await RelayLogin.create(sql)
            let proxy = try TCPProxy(targetPort: try Self.clusterPort(environment))
            defer { proxy.stop() }
            let relay = try await Self.startRelay(
                environment, login: login, proxy: proxy, label: label.replacingOccurrences(of: "_", with: "-"))
            defer { relay.process.stop() }
            try await Self.warmUp(environment, sql, relay: relay)
            try await body(environment, sql, login, proxy, relay)
        }
    }

    /// Blackholes the proxied connection of the login's session whose statement contains
    /// `marker`, once such a session shows up, and returns it.
    static func blackholeSession(
        running marker: String, login: RelayLogin, proxy: TCPProxy, _ sql: PostgresConnection
    ) async throws -> TCPProxy.Connection {
        var target: TCPProxy.Connection?
        try await waitUntil("a session of the relay runs \(marker)", timeout: .seconds(60)) {
            let backend = try await login.backends(sql).first { $0.query.contains(marker) }
            target = backend.map { TCPProxy.Connection(upstreamLocalPort: $0.clientPort) }
            return target.map { proxy.openConnections.contains($0) } ?? false
        }
        let connection = try #require(target)
        proxy.blackhole([connection])
        return connection
    }

    /// Blackholes one PostgreSQL path of a running relay, commits events, and checks that
    /// readiness fails with `problem`, then that the relay delivers and marks every event on a
    /// new connection while the old one stays blackholed.
    func blackholedPath(statement marker: String, problem: String, label: String) async throws {
        try await withWarmRelay(label) { environment, sql, login, proxy, relay in
            let connectionsBefore = proxy.acceptedCount

            let stalled = try await Self.blackholeSession(running: marker, login: login, proxy: proxy, sql)
            try await emit(sql, tenants: 3, eventsPerTenant: 5, firstRound: 1)
            try await waitUntil("readiness fails while the relay is stalled", timeout: .seconds(60)) {
                let ready = try await relay.ready()
                return ready.status == 503 && ready.body.contains(problem)
            }
            try await environment.waitUntilAllDelivered(sql, timeout: Self.recoveryBound)
            try await waitUntil("ready again", timeout: .seconds(60)) { try await relay.ready().status == 200 }
            #expect(proxy.openConnections.contains(stalled), "the stalled connection was closed by something other than the relay")
            #expect(proxy.acceptedCount > connectionsBefore, "the relay never opened a new connection")
            #expect(relay.process.isRunning)
            _ = try await verifyDelivery(environment, sql, tenants: 3, eventsPerTenant: 10, context: label)
        }
    }

    @Test("a blackholed claim connection: readiness fails, then the relay claims again on a new connection")
    func blackholedClaim() async throws {
        // The claim query is longer than pg_stat_activity keeps (track_activity_query_size): match its start.
        try await blackholedPath(statement: "blocked AS MATERIALIZED", problem: "no progress", label: "stall_claim")
    }

    @Test("a blackholed marker connection: readiness fails, then the acknowledged rows are marked on a new connection")
    func blackholedMarker() async throws {
        try await blackholedPath(statement: "SET processed = true", problem: "waited longer than", label: "stall_mark")
    }

    @Test("a blackholed LISTEN connection is replaced by itself; events committed meanwhile are delivered")
    func blackholedListen() async throws {
        try await withEnvironment("stall_listen") { environment, sql in
            let login = try await RelayLogin.create(sql)
            let proxy = try TCPProxy(targetPort: try Self.clusterPort(environment))
            let listenProxy = try TCPProxy(targetPort: try Self.clusterPort(environment))
            defer {
                proxy.stop()
                listenProxy.stop()
            }
            let relay = try await Self.startRelay(
                environment, login: login, proxy: proxy,
                extra: ["--listen-url", login.url(environment.database.url, port: listenProxy.port)], label: "stall-listen")
            defer { relay.process.stop() }
            try await Self.warmUp(environment, sql, relay: relay)
            let stalled = try #require(listenProxy.openConnections.first)
            listenProxy.blackhole([stalled])

            try await emit(sql, tenants: 3, eventsPerTenant: 5, firstRound: 1)
            // The heartbeat (1 s of quiet, then 5 s for the reply) ends the stalled LISTEN.
            try await waitUntil("the relay listens on a new connection", timeout: Self.recoveryBound) {
                listenProxy.acceptedCount >= 2
            }
            try await environment.waitUntilAllDelivered(sql, timeout: Self.recoveryBound)
            #expect(listenProxy.openConnections.contains(stalled))
            #expect(relay.process.standardError.contains("LISTEN connection lost"))
            try await waitUntil("ready", timeout: .seconds(60)) { try await relay.ready().status == 200 }
            _ = try await verifyDelivery(environment, sql, tenants: 3, eventsPerTenant: 10, context: "stall-listen")
        }
    }

    @Test("frozen backends: with every backend of the relay's login stopped, events are delivered and marked on new connections, and marked once")
    func frozenBackends() async throws {
        try await withWarmRelay("stall_frozen") { environment, sql, login, _, _ in

            // Freeze every session of the login at a moment when none is inside a statement or
            // a transaction: a backend frozen holding row locks blocks everyone who needs those
            // rows until it runs again, which no client can change. Loop until that moment.
            var frozen: [Int32] = []
            defer { for pid in frozen { kill(pid, SIGCONT) } }
            try await waitUntil("every backend of the relay's login is frozen while idle", timeout: .seconds(120)) {
                let pids = try await login.backends(sql).map(\.pid)
                for pid in pids { kill(pid, SIGSTOP) }
                let busy = try await login.backends(sql).filter { pids.contains($0.pid) && $0.state != "idle" }
                if busy.isEmpty, !pids.isEmpty {
                    frozen = pids
                    return true
                }
                for pid in pids { kill(pid, SIGCONT) }
                return false
            }

            try await emit(sql, tenants: 3, eventsPerTenant: 5, firstRound: 1)
            try await environment.waitUntilAllDelivered(sql, timeout: Self.recoveryBound)
            let newBackends = try await login.backends(sql).map(\.pid).filter { !frozen.contains($0) }
            #expect(!newBackends.isEmpty, "the relay delivered without new connections")
            let marked = try await environment.outboxRows(sql)

            for pid in frozen { kill(pid, SIGCONT) }
            let thawed = frozen
            frozen = []
            try await waitUntil("the thawed backends have ended", timeout: .seconds(60)) {
                try await login.backends(sql).allSatisfy { !thawed.contains($0.pid) }
            }
            #expect(try await environment.outboxRows(sql) == marked, "a thawed backend changed what was marked")
            _ = try await verifyDelivery(environment, sql, tenants: 3, eventsPerTenant: 10, context: "stall-frozen")
        }
    }

    @Test("a broker that accepts connections and never answers: readiness fails and nothing is marked; delivery resumes when it answers")
    func silentBroker() async throws {
        try await withWarmRelay("stall_broker") { environment, sql, _, _, relay in

            // The mock broker advertises its own address, so a proxy would see only the
            // bootstrap connection; its round-trip time holds every reply back instead, on the
            // connections the producer already has.
            try environment.broker.setRoundTripTime(broker: 1, milliseconds: 600_000)
            let processedBefore = try await processedCount(sql)
            try await emit(sql, tenants: 3, eventsPerTenant: 5, firstRound: 1)
            try await waitUntil("readiness fails while the broker is silent", timeout: .seconds(60)) {
                let ready = try await relay.ready()
                return ready.status == 503 && ready.body.contains("Kafka unreachable")
            }
            #expect(try await processedCount(sql) == processedBefore, "rows were marked while the broker answered nothing")

            try environment.broker.setRoundTripTime(broker: 1, milliseconds: 0)
            try await environment.waitUntilAllDelivered(sql, timeout: Self.recoveryBound)
            try await waitUntil("ready again", timeout: .seconds(60)) { try await relay.ready().status == 200 }
            _ = try await verifyDelivery(environment, sql, tenants: 3, eventsPerTenant: 10, context: "stall-broker")
        }
    }
}
