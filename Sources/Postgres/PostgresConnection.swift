import Dispatch
public import Logging

/// A connection to PostgreSQL for queries and transactions.
///
/// libpq calls block, so they run on the connection's own serial dispatch queue, never on
/// Swift's cooperative pool; the queue also keeps the non-thread-safe `PGconn` confined. Like a
/// `PGconn`, a connection serves one task at a time: statements from concurrent tasks would
/// interleave inside each other's transactions. After `.connectionLost` the caller connects
/// anew.
public final class PostgresConnection: Sendable {
    /// Settings for establishing a connection.
    public struct Options: Sendable {
        /// Sent as libpq's `fallback_application_name`, so it shows in `pg_stat_activity`
        /// unless the URL sets `application_name`. Default `outbox-bridge`.
        public var applicationName: String = "outbox-bridge"
        /// libpq's `connect_timeout` unless the URL sets one, so an unreachable host fails
        /// instead of hanging. Default 10 seconds.
        public var connectTimeoutSeconds: Int = 10

        public init() {}
    }

    private let connection: LibPQConnection
    private let queue: DispatchQueue
    public let logger: Logger

    /// The server process serving this connection, as `pg_backend_pid()` reports it.
    public let backendPID: Int32

    private init(connection: LibPQConnection, queue: DispatchQueue, logger: Logger) {
        self.connection = connection
        self.queue = queue
        self.logger = logger
        self.backendPID = connection.backendPID
    }

    /// Connects with a `postgresql://` URL or a `key=value` conninfo string. An empty string
    /// means libpq's defaults, so `PG*` variables, `.pgpass` and `sslmode` work as usual.
    public static func connect(
        _ conninfo: String,
        options: Options = Options(),
        logger: Logger = Logger(label: "outbox-bridge.postgres")
    ) async throws(PostgresError) -> PostgresConnection {
        let queue = DispatchQueue(label: "outbox-bridge.postgres.connection")
        let connection = try await run(on: queue) { () throws(PostgresError) in
            try LibPQConnection.connect(
                conninfo: conninfo, applicationName: options.applicationName,
                connectTimeoutSeconds: options.connectTimeoutSeconds, logger: logger)
        }
        return PostgresConnection(connection: connection, queue: queue, logger: logger)
    }

    /// Runs one statement; values travel as parameters `$1`, `$2`, … and are never spliced
    /// into the SQL text.
    @discardableResult
    public func query(_ sql: String, _ parameters: [(any PostgresBindable)?] = []) async throws(PostgresError) -> PostgresRows {
        let texts = parameters.map { $0?.postgresText }
        return try await perform { connection throws(PostgresError) in
            try connection.execute(sql, parameters: texts)
        }
    }

    /// Runs a script of several statements (a migration file, say) as one simple query.
    public func execute(script: String) async throws(PostgresError) {
        try await perform { connection throws(PostgresError) in try connection.executeScript(script) }
    }

    /// Quotes an identifier that comes from data (a schema or table name) with libpq's
    /// `PQescapeIdentifier`.
    public func quoteIdentifier(_ identifier: String) async throws(PostgresError) -> String {
        try await perform { connection throws(PostgresError) in try connection.quoteIdentifier(identifier) }
    }

    /// Quotes a string literal with libpq's `PQescapeLiteral`, for scripts that cannot take
    /// parameters; everything else passes values as parameters.
    public func quoteLiteral(_ literal: String) async throws(PostgresError) -> String {
        try await perform { connection throws(PostgresError) in try connection.quoteLiteral(literal) }
    }

    /// Runs `body` inside `BEGIN` … `COMMIT`, rolling back if it throws.
    @discardableResult
    public func transaction<Result>(
        _ body: (PostgresConnection) async throws -> Result
    ) async throws -> Result {
        try await query("BEGIN")
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

    private func perform<T: Sendable>(
        _ work: @escaping @Sendable (LibPQConnection) throws(PostgresError) -> T
    ) async throws(PostgresError) -> T {
        try await Self.run(on: queue) { [connection] () throws(PostgresError) in try work(connection) }
    }

    /// Hops to `queue` for blocking work and resumes the caller with its outcome.
    static func run<T: Sendable>(
        on queue: DispatchQueue,
        _ work: @escaping @Sendable () throws(PostgresError) -> T
    ) async throws(PostgresError) -> T {
        let outcome: Result<T, PostgresError> = await withCheckedContinuation { continuation in
            queue.async { continuation.resume(returning: Result { () throws(PostgresError) in try work() }) }
        }
        return try outcome.get()
    }

    /// Connections currently open in this process (for leak tests).
    public static var openConnectionCount: Int { LibPQConnection.openHandles.current }
}
