import Foundation
import Postgres
import TestSupport
import Testing

/// Every call on a connection is bounded: a server that stops answering costs a caller one
/// deadline, never a hang, and the next connection works.
@Suite("PostgreSQL calls have a bound")
struct PostgresDeadlineTests {
    private static func options(queryTimeout: Duration) -> PostgresConnection.Options {
        var options = PostgresConnection.Options()
        options.queryTimeout = queryTimeout
        return options
    }

    /// The cluster URL with its host and port replaced by the proxy's.
    private static func url(through proxy: TCPProxy, database: TestDatabase) -> String {
        var components = URLComponents(string: database.url)!
        components.host = "127.0.0.1"
        components.port = proxy.port
        return components.string!
    }

    private static func clusterPort() throws -> Int {
        try #require(URLComponents(string: try TestDatabase.clusterURL())?.port)
    }

    @Test("a statement on a blackholed connection fails with .timedOut at its deadline; the connection is closed and a new one works")
    func blackholedStatementTimesOut() async throws {
        let database = try await TestDatabase.create("deadline")
        let proxy = try TCPProxy(targetPort: try Self.clusterPort())
        defer { proxy.stop() }
        let url = Self.url(through: proxy, database: database)
        // Long enough for the statements before and after the blackhole on a loaded machine.
        let bound = Self.options(queryTimeout: .seconds(5))
        let connection = try await PostgresConnection.connect(url, options: bound)
        #expect(try await connection.query("SELECT 1 AS one")[0]["one"] == "1")

        proxy.blackholeEverything()
        let clock = ContinuousClock()
        let started = clock.now
        let error = await #expect(throws: PostgresError.self) {
            try await connection.query("SELECT 2 AS two")
        }
        #expect(error?.kind == .timedOut)
        #expect(error?.breaksConnection == true)
        #expect(error?.message.contains("SELECT 2 AS two") == true)
        // The bound is 5 s; a busy machine may add some, never a hang.
        #expect(clock.now - started < .seconds(60))
        let afterwards = await #expect(throws: PostgresError.self) { try await connection.query("SELECT 3") }
        #expect(afterwards?.kind == .closed)

        proxy.restore()
        let fresh = try await PostgresConnection.connect(url, options: bound)
        #expect(try await fresh.query("SELECT 4 AS four")[0]["four"] == "4")
        // The abandoned session ends on the server once its socket's shutdown gets through.
        try await Self.waitUntilEnded(connection.backendPID, try await database.connect())
    }

    @Test("a frozen backend (SIGSTOP) costs one deadline; once it runs again its session ends")
    func frozenBackendTimesOut() async throws {
        let database = try await TestDatabase.create("frozen")
        let connection = try await PostgresConnection.connect(database.url, options: Self.options(queryTimeout: .seconds(2)))
        let admin = try await database.connect()
        let pid = connection.backendPID
        guard kill(pid, SIGSTOP) == 0 else { throw TestEnvironmentError("cannot stop backend \(pid): errno \(errno)") }
        defer { kill(pid, SIGCONT) }
        let error = await #expect(throws: PostgresError.self) {
            try await connection.query("SELECT 1")
        }
        #expect(error?.kind == .timedOut)
        kill(pid, SIGCONT)
        try await Self.waitUntilEnded(pid, admin)
    }

    @Test("a statement still running at its deadline is cancelled on the server, not left running")
    func runningStatementIsCancelled() async throws {
        let database = try await TestDatabase.create("cancelled")
        let connection = try await PostgresConnection.connect(database.url, options: Self.options(queryTimeout: .seconds(2)))
        let admin = try await database.connect()
        let error = await #expect(throws: PostgresError.self) {
            try await connection.query("SELECT pg_catalog.pg_sleep(600)")
        }
        #expect(error?.kind == .timedOut)
        // Its socket is shut down, but a sleeping backend reads nothing: only the cancel
        // request ends the sleep, well before its ten minutes.
        try await Self.waitUntilEnded(connection.backendPID, admin)
    }

    @Test("cancelling the task whose statement waits for its reply ends the wait before the deadline, and the statement on the server")
    func cancelledTaskEndsTheWait() async throws {
        let database = try await TestDatabase.create("task_cancel")
        let connection = try await PostgresConnection.connect(database.url, options: Self.options(queryTimeout: .seconds(600)))
        let admin = try await database.connect()
        let sleeping = Task { try await connection.query("SELECT pg_catalog.pg_sleep(600)") }
        try await waitUntil("the statement is running") {
            try await admin.query(
                "SELECT count(*) AS n FROM pg_catalog.pg_stat_activity WHERE pid = $1 AND query LIKE '%pg_sleep%' AND state = 'active'",
                [Int(connection.backendPID)]
            )[0].require(Int.self, column: "n") == 1
        }
        sleeping.cancel()
        let error = await #expect(throws: PostgresError.self) { try await sleeping.value }
        #expect(error?.kind == .closed)
        try await Self.waitUntilEnded(connection.backendPID, admin)
    }

    private static func waitUntilEnded(_ pid: Int32, _ admin: PostgresConnection) async throws {
        try await waitUntil("backend \(pid) has ended", timeout: .seconds(60)) {
            try await admin.query(
                "SELECT count(*) AS n FROM pg_catalog.pg_stat_activity WHERE pid = $1", [Int(pid)]
            )[0].require(Int.self, column: "n") == 0
        }
    }

    @Test("transactions run with the server-side statement timeout, and nothing of it outlives the transaction")
    func statementTimeoutInsideTransactions() async throws {
        var options = PostgresConnection.Options()
        // Values no statement of this test comes near on a loaded machine (300 ms cancelled the
        // settings query itself in a busy run's first seconds); pg_sleep(30) still hits one.
        options.statementTimeout = .seconds(3)
        options.idleInTransactionTimeout = .seconds(45)
        let connection = try await PostgresConnection.connect(try TestDatabase.clusterURL(), options: options)
        let inside = try await connection.transaction { connection in
            try await connection.query(
                "SELECT current_setting('statement_timeout') AS statement, current_setting('idle_in_transaction_session_timeout') AS idle")
        }
        #expect(inside[0]["statement"] == "3s")
        #expect(inside[0]["idle"] == "45s")
        let error = await #expect(throws: PostgresError.self) {
            try await connection.transaction { connection in try await connection.query("SELECT pg_catalog.pg_sleep(30)") }
        }
        #expect(error?.sqlState == PostgresError.SQLState.queryCanceled)
        let outside = try await connection.query("SELECT current_setting('statement_timeout') AS statement")
        #expect(outside[0]["statement"] == "0")
        #expect(try await connection.query("SELECT 1 AS one")[0]["one"] == "1")
    }

    @Test("a statement_timeout the URL sets wins over the default")
    func urlTimeoutWins() async throws {
        var components = URLComponents(string: try TestDatabase.clusterURL())!
        components.queryItems = [URLQueryItem(name: "options", value: "-c statement_timeout=4321")]
        let connection = try await PostgresConnection.connect(components.string!)
        let inside = try await connection.transaction { connection in
            try await connection.query("SELECT current_setting('statement_timeout') AS statement")
        }
        #expect(inside[0]["statement"] == "4321ms")
    }

    @Test("behind PgBouncer in transaction mode the timeouts stay inside each transaction: other clients never see them")
    func timeoutsDoNotLeakThroughPgBouncer() async throws {
        let database = try await TestDatabase.create("bouncer_timeouts")
        let bouncer = try await PgBouncer.start(database: database)
        defer { bouncer.stop() }
        var options = PostgresConnection.Options()
        options.statementTimeout = .milliseconds(1234)
        let bounded = try await PostgresConnection.connect(bouncer.url, options: options)
        let other = try await PostgresConnection.connect(bouncer.url)
        for _ in 0..<5 {
            let inside = try await bounded.transaction { connection in
                try await connection.query("SELECT current_setting('statement_timeout') AS statement")
            }
            #expect(inside[0]["statement"] == "1234ms")
            let seen = try await other.query("SELECT current_setting('statement_timeout') AS statement")
            #expect(seen[0]["statement"] == "0")
        }
    }
}
