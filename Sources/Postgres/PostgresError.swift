/// An error from PostgreSQL or from libpq.
///
/// `description` names the failure kind, the SQLSTATE and the primary message only, so that
/// logging an error does not leak row data that a server's DETAIL may quote; `debugDescription`
/// adds detail and hint.
public struct PostgresError: Error, Sendable, CustomStringConvertible, CustomDebugStringConvertible {
    /// What went wrong, at the level a caller decides on: reconnect, fix the query, or give up.
    public enum Kind: Sendable, Hashable {
        /// The connection could not be established (bad URL, unreachable host, authentication).
        case connectionFailed
        /// An established connection broke: the server went away or a heartbeat went unanswered.
        /// The caller reconnects; nothing on this connection can be used any more.
        case connectionLost
        /// The server rejected a statement; `sqlState` says why.
        case server
        /// A value could not be converted to or from its text form.
        case decoding
        /// A statement got no reply before its deadline (`PostgresConnection.Options.queryTimeout`):
        /// the server was asked to cancel it and the connection was closed. The caller
        /// reconnects, as after `.connectionLost`.
        case timedOut
        /// The connection can no longer be used: it was abandoned after a deadline passed.
        case closed
    }

    public var kind: Kind
    /// The five-character SQLSTATE for `.server` errors (for example `23505` for a unique violation).
    public var sqlState: String?
    public var message: String
    public var detail: String?
    public var hint: String?

    public init(kind: Kind, sqlState: String? = nil, message: String, detail: String? = nil, hint: String? = nil) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
        self.detail = detail
        self.hint = hint
    }

    public var description: String {
        switch kind {
        case .connectionFailed: "PostgreSQL connection failed: \(message)"
        case .connectionLost: "PostgreSQL connection lost: \(message)"
        case .server: "PostgreSQL error \(sqlState ?? "?????"): \(message)"
        case .decoding: "PostgreSQL value error: \(message)"
        case .timedOut: "PostgreSQL timed out: \(message)"
        case .closed: "PostgreSQL connection closed: \(message)"
        }
    }

    /// Whether the connection that raised this error must be replaced: it broke, timed out or
    /// was closed, as opposed to a statement the server rejected.
    public var breaksConnection: Bool {
        switch kind {
        case .connectionFailed, .connectionLost, .timedOut, .closed: true
        case .server, .decoding: false
        }
    }

    public var debugDescription: String {
        var text = description
        if let detail { text += "\nDETAIL: \(detail)" }
        if let hint { text += "\nHINT: \(hint)" }
        return text
    }
}

extension PostgresError {
    /// SQLSTATE values the project reacts to by name.
    public enum SQLState {
        public static let syntaxError = "42601"
        public static let uniqueViolation = "23505"
        public static let insufficientPrivilege = "42501"
        public static let undefinedTable = "42P01"
        public static let adminShutdown = "57P01"
        public static let lockNotAvailable = "55P03"
        public static let queryCanceled = "57014"
    }
}
