public import Logging

/// A connection opened on first use and opened again after any failure, for background work
/// that must outlive a lost session or a database restart without holding a connection it
/// cannot use: a failed call drops the connection, and the next `use` reconnects.
public struct ReconnectingConnection: Sendable {
    public let url: String
    public let options: PostgresConnection.Options
    public let logger: Logger
    private var connection: PostgresConnection?

    public init(url: String, options: PostgresConnection.Options = .init(), logger: Logger) {
        self.url = url
        self.options = options
        self.logger = logger
    }

    /// Runs `body` on the open connection, connecting first if there is none. Any error from
    /// connecting or from `body` is rethrown after the connection is dropped.
    public mutating func use<Value>(_ body: (PostgresConnection) async throws -> Value) async throws -> Value {
        do {
            let current: PostgresConnection
            if let connection {
                current = connection
            } else {
                current = try await PostgresConnection.connect(url, options: options, logger: logger)
                connection = current
            }
            return try await body(current)
        } catch {
            connection = nil
            throw error
        }
    }
}
