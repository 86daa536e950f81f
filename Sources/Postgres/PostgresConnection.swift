import Dispatch
public import Logging

/// A connection to PostgreSQL for queries and transactions.
///
/// Connecting blocks, so it runs on a dispatch queue, never on Swift's cooperative pool. A
/// statement is sent without blocking and its reply is read by the process's `SocketReactor`
/// thread when it arrives (`StatementExchange`), so no thread waits for the server. Like a
/// `PGconn`, a connection serves one task at a time: statements from concurrent tasks run one
/// after another but would interleave inside each other's transactions.
///
/// Every call is bounded: a statement without a reply by `Options.queryTimeout` is cancelled
/// on the server and the connection closed (`.timedOut`), so a frozen server or a half-open
/// connection never holds a caller. After an error whose `breaksConnection` is true the caller
/// connects anew.
public final class PostgresConnection: Sendable {
    /// Settings for establishing a connection and bounding every call on it. The libpq
    /// settings are defaults: a key the URL or conninfo sets wins.
    public struct Options: Sendable {
        /// Sent as libpq's `fallback_application_name`, so it shows in `pg_stat_activity`
        /// unless the URL sets `application_name`. Default `outbox-bridge`.
        public var applicationName: String = "outbox-bridge"
        /// libpq's `connect_timeout` (per host of a multi-host URL), so an unreachable host
        /// fails instead of hanging. Default 10 seconds.
        public var connectTimeoutSeconds: Int = 10
        /// libpq's `keepalives_idle`: quiet seconds before the kernel probes an idle
        /// connection, so a peer that vanished (failover, NAT or load-balancer drop) is noticed.
        /// Default 10.
        public var keepalivesIdleSeconds: Int = 10
        /// libpq's `keepalives_interval`: seconds between unanswered probes. Default 5.
        public var keepalivesIntervalSeconds: Int = 5
        /// libpq's `keepalives_count`: unanswered probes after which the kernel drops the
        /// connection. Default 3.
        public var keepalivesCount: Int = 3
        /// libpq's `tcp_user_timeout`: how long sent data may stay unacknowledged before the
        /// kernel drops the connection. Default 30 seconds.
        public var tcpUserTimeout: Duration = .seconds(30)
        /// The server's `statement_timeout` inside transactions, set with `SET LOCAL` when the
        /// session has no value of its own (from the URL's `options`, the role, the database
        /// or the server's configuration). Default 30 seconds.
        public var statementTimeout: Duration = .seconds(30)
        /// The server's `idle_in_transaction_session_timeout` inside transactions, set like
        /// `statementTimeout`: a client that vanishes mid-transaction releases its locks after
        /// this. Default 60 seconds.
        public var idleInTransactionTimeout: Duration = .seconds(60)
        /// The client-side deadline of each call: a statement without a reply by then is
        /// cancelled and its connection closed. Longer than `statementTimeout`, so the server's
        /// own timeout normally answers first and the connection survives. Default 45 seconds.
        public var queryTimeout: Duration = .seconds(45)

        public init() {}

        /// libpq keys that the URL or conninfo may override.
        var conninfoDefaults: [(String, String)] {
            [
                ("connect_timeout", String(connectTimeoutSeconds)),
                ("fallback_application_name", applicationName),
                ("keepalives", "1"),
                ("keepalives_idle", String(keepalivesIdleSeconds)),
                ("keepalives_interval", String(keepalivesIntervalSeconds)),
                ("keepalives_count", String(keepalivesCount)),
                ("tcp_user_timeout", String(Int64(tcpUserTimeout.seconds * 1000))),
            ]
        }
    }

    private let statements: StatementExchange
    private let queryTimeout: Duration
    /// `SET LOCAL` statements that open each transaction: the server-side timeouts the
    /// session has no value of its own for. Empty when every one is set already.
    private let transactionSettings: String
    public let logger: Logger

    /// The server process serving this connection, as `pg_backend_pid()` reports it.
    public let backendPID: Int32

    private init(
        connection: LibPQConnection, reactor: SocketReactor, queryTimeout: Duration, transactionSettings: String, logger: Logger
    ) {
        self.statements = StatementExchange(connection: connection, reactor: reactor)
        self.queryTimeout = queryTimeout
        self.transactionSettings = transactionSettings
        self.logger = logger
        self.backendPID = connection.backendPID
    }

    /// Connects with a `postgresql://` URL or a `key=value` conninfo string. An empty string
    /// means libpq's defaults, so `PG*` variables, `.pgpass` and `sslmode` work as usual.
    ///
    /// The server-side timeouts are applied per transaction with `SET LOCAL`, never to the
    /// session: behind PgBouncer in transaction mode a session `SET` would stay on a server
    /// connection other clients get next, and the `options` startup parameter is refused or
    /// ignored by poolers. A transaction is pinned to one server connection and `SET LOCAL`
    /// ends with it, so this works directly and behind a pooler alike. Single statements
    /// outside a transaction are bounded by `queryTimeout`, which cancels them on the server.
    public static func connect(
        _ conninfo: String,
        options: Options = Options(),
        logger: Logger = Logger(label: "outbox-bridge.postgres")
    ) async throws(PostgresError) -> PostgresConnection {
        let reactor = try SocketReactor.shared.get()
        let queue = DispatchQueue(label: "outbox-bridge.postgres.connection")
        let (connection, transactionSettings) = try await run(on: queue) { () throws(PostgresError) in
            let connection = try LibPQConnection.connect(
                conninfo: conninfo, defaults: options.conninfoDefaults, logger: logger)
            let unset = try connection.execute(
                """
                SELECT name FROM pg_catalog.pg_settings
                WHERE name IN ('statement_timeout', 'idle_in_transaction_session_timeout') AND source = 'default'
                """, parameters: [], deadline: .now.advanced(by: options.queryTimeout))
            let timeouts = [
                "statement_timeout": options.statementTimeout,
                "idle_in_transaction_session_timeout": options.idleInTransactionTimeout,
            ]
            let settings = unset.compactMap { row -> String? in
                guard let name = row["name"], let value = timeouts[name] else { return nil }
                return "SET LOCAL \(name) = \(Int64((value.seconds * 1000).rounded(.up)))"
            }
            return (connection, settings.map { "; " + $0 }.joined())
        }
        return PostgresConnection(
            connection: connection, reactor: reactor, queryTimeout: options.queryTimeout,
            transactionSettings: transactionSettings, logger: logger)
    }

    /// Runs one statement; values travel as parameters `$1`, `$2`, … and are never spliced
    /// into the SQL text.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) async throws(PostgresError) -> PostgresRows {
        try await query(PostgresStatement(sql), parameters)
    }

    /// Runs `statement` like `query(_:_:)`: by name if it was prepared on this connection.
    @discardableResult
    public func query(
        _ statement: PostgresStatement, _ parameters: [(any PostgresBindable)?] = []
    ) async throws(PostgresError) -> PostgresRows {
        try await perform(.parameterized(statement, parameters.map { $0?.postgresText }))
    }

    /// Runs one statement like `query(_:_:)`, for a caller driven by replies rather than by a
    /// task: `reply` hears the outcome on the thread that reads it (the process's
    /// `SocketReactor`), with no hop through Swift's cooperative pool, and must not block. The
    /// statement keeps its place in the connection's order and its deadline.
    public func query(
        _ statement: PostgresStatement, _ parameters: [(any PostgresBindable)?] = [],
        reply: @escaping @Sendable (Result<PostgresRows, PostgresError>) -> Void
    ) {
        statements.submit(
            .parameterized(statement, parameters.map { $0?.postgresText }),
            deadline: ContinuousClock.now.advanced(by: queryTimeout), reply: reply)
    }

    /// Parses and plans `sql` once and keeps it on this connection's session as `name`, so
    /// that each later `query` with the returned statement sends only the name and the
    /// parameters, and the server reuses the plan. Only for a direct connection: a pooler in
    /// transaction mode may hand the next call a server connection that never saw it.
    public func prepare(_ sql: String, as name: String) async throws(PostgresError) -> PostgresStatement {
        try await perform(.prepare(name: name, sql: sql))
        return PostgresStatement(sql, preparedAs: name)
    }

    /// Calls `handler` once `deadline` passes, on the thread that reads replies for
    /// `query(_:_:reply:)`: a caller driven by replies spaces its statements with it, without a
    /// timer thread of its own to wake. `handler` must not block.
    @discardableResult
    public static func onReplyThread(
        at deadline: ContinuousClock.Instant, run handler: @escaping @Sendable () -> Void
    ) throws(PostgresError) -> ReplyThreadTimer {
        let reactor = try SocketReactor.shared.get()
        return ReplyThreadTimer(reactor: reactor, registration: reactor.schedule(at: deadline, handler: handler))
    }

    /// Runs a script of several statements (a migration file, say) as one simple query.
    public func execute(script: String) async throws(PostgresError) {
        try await perform(.script(script))
    }

    /// Quotes an identifier that comes from data (a schema or table name) with libpq's
    /// `PQescapeIdentifier`.
    public func quoteIdentifier(_ identifier: String) async throws(PostgresError) -> String {
        try await perform(.quote(identifier, asLiteral: false)).cells[0] ?? ""
    }

    /// Quotes a string literal with libpq's `PQescapeLiteral`, for scripts that cannot take
    /// parameters; everything else passes values as parameters.
    public func quoteLiteral(_ literal: String) async throws(PostgresError) -> String {
        try await perform(.quote(literal, asLiteral: true)).cells[0] ?? ""
    }

    /// Runs `body` inside `BEGIN` … `COMMIT`, rolling back if it throws. The transaction
    /// starts with the server-side timeouts (see `connect`), in the same round trip as `BEGIN`.
    @discardableResult
    public func transaction<Result>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await execute(script: "BEGIN" + transactionSettings)
        do {
            let result = try await body(self)
            try await query("COMMIT")
            return result
        } catch {
            // A broken connection has no transaction left to roll back; report the first error.
            _ = try? await query("ROLLBACK")
            throw error
        }
    }

    /// Runs `statement` with the call's deadline, counted from now. A task cancelled while its
    /// statement waits for the reply ends the wait: the statement is cancelled on the server
    /// and the connection closed (`.closed`).
    @discardableResult
    private func perform(_ statement: StatementExchange.Statement) async throws(PostgresError) -> PostgresRows {
        try await statements.run(statement, deadline: ContinuousClock.now.advanced(by: queryTimeout)).get()
    }

    /// Hops to `queue` for blocking work (connecting) and resumes the caller with its outcome.
    static func run<T: Sendable>(
        on queue: DispatchQueue,
        _ work: @escaping @Sendable () throws(PostgresError) -> T
    ) async throws(PostgresError) -> T {
        try await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Result { () throws(PostgresError) in try work() }) }
        }.get()
    }
}

/// A statement's text and, once `PostgresConnection.prepare` kept it on a connection, the name
/// it goes by there. Unprepared, its text travels with every call and the server parses and
/// plans it each time (for the relay's claim that was 2 ms of 2.5); prepared, only on the
/// connection that prepared it.
public struct PostgresStatement: Sendable {
    public let sql: String
    let preparedName: String?

    /// An unprepared statement: parsed and planned on every call, and safe behind any pooler.
    public init(_ sql: String) {
        self.init(sql, preparedAs: nil)
    }

    fileprivate init(_ sql: String, preparedAs preparedName: String?) {
        self.sql = sql
        self.preparedName = preparedName
    }
}

/// A handler set to run by `PostgresConnection.onReplyThread(at:run:)`, which can be taken back.
public struct ReplyThreadTimer: Sendable {
    fileprivate let reactor: SocketReactor
    fileprivate let registration: SocketReactor.Registration

    /// Takes the handler back before it runs, without waking the thread; `false` when it runs
    /// or has run.
    @discardableResult
    public func cancel() -> Bool {
        reactor.remove(registration)
    }
}
