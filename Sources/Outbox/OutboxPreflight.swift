public import Postgres

/// The catalog questions `check` asks of a database before capture and relay run on it: the
/// conditions under which capture stops silently (a disabled event trigger,
/// `session_replication_role = replica`) or the relay cannot work, none of which raises an error
/// anywhere else. The answers are plain values; `check` words the verdicts and the fixes.
public struct OutboxPreflight: Sendable {
    public let connection: PostgresConnection
    /// The outbox schema, unquoted.
    public let schema: String

    public init(connection: PostgresConnection, schema: String) {
        self.connection = connection
        self.schema = schema
    }

    /// A missing schema is a wrong `--schema` (or no install at all), which makes every later
    /// answer meaningless.
    public func schemaExists() async throws(PostgresError) -> Bool {
        try await connection.query(
            "SELECT count(*) AS n FROM pg_catalog.pg_namespace WHERE nspname = $1", [schema])[0]["n"] != "0"
    }

    /// A login and whether it holds `outbox_relay`, whose grants the relay's statements rest on.
    public struct RelayGrant: Sendable {
        public var role: String
        /// The role quoted as an identifier, for the `GRANT` a fix names.
        public var quotedRole: String
        public var holdsOutboxRelay: Bool
    }

    /// `role`'s grant, or the connected role's when nil; nil when no such role exists.
    public func relayGrant(of role: String?) async throws(PostgresError) -> RelayGrant? {
        let rows = try await connection.query(
            """
            SELECT r.rolname::text AS role,
                   pg_catalog.pg_has_role(r.oid, 'outbox_relay', 'MEMBER') AS member
              FROM pg_catalog.pg_roles r WHERE r.rolname = COALESCE($1, current_user)
            """, [role])
        guard let row = rows.first else { return nil }
        let name = row["role"] ?? "?"
        return RelayGrant(
            role: name, quotedRole: try await connection.quoteIdentifier(name),
            holdsOutboxRelay: try row.require(Bool.self, column: "member"))
    }

    /// One of the capture's two event triggers as the catalog has it.
    public struct EventTrigger: Sendable {
        public var name: String
        public var exists: Bool
        /// `evtenabled = 'D'`: the trigger never fires, and nothing reports it.
        public var isDisabled: Bool
        /// The schema of the function it calls: another install's when it is not ``schema``.
        public var functionSchema: String?
    }

    /// Both of the capture's event triggers, in name order, whether they exist or not.
    public func eventTriggers() async throws(PostgresError) -> [EventTrigger] {
        try await connection.query(
            """
            SELECT t.name, e.evtenabled::text AS enabled, n.nspname AS schema
              FROM pg_catalog.unnest(ARRAY['outbox_bridge_capture_ddl', 'outbox_bridge_capture_drop']) t(name)
              LEFT JOIN pg_catalog.pg_event_trigger e ON e.evtname = t.name
              LEFT JOIN pg_catalog.pg_proc p ON p.oid = e.evtfoid
              LEFT JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
             ORDER BY t.name
            """
        ).map { row in
            EventTrigger(
                name: row["name"] ?? "?", exists: row["enabled"] != nil, isDisabled: row["enabled"] == "D",
                functionSchema: row["schema"])
        }
    }

    /// Whether `LISTEN` works on this connection (a transaction-mode pooler refuses it), and
    /// PostgreSQL's error when it does not.
    public struct ListenProbe: Sendable {
        /// The channel quoted as an identifier, as the relay's `LISTEN` names it.
        public var quotedChannel: String
        public var failure: PostgresError?
    }

    /// Listens on `channel` and stops again at once.
    public func probeListen(on channel: String) async throws(PostgresError) -> ListenProbe {
        let quotedChannel = try await connection.quoteIdentifier(channel)
        do {
            try await connection.execute(script: "LISTEN \(quotedChannel); UNLISTEN \(quotedChannel);")
            return ListenProbe(quotedChannel: quotedChannel, failure: nil)
        } catch {
            return ListenProbe(quotedChannel: quotedChannel, failure: error)
        }
    }

    /// The database and role settings of `session_replication_role = replica` that cover this
    /// database: `replica` skips every event trigger without an error, so each one silently stops
    /// capture for every session it covers. One entry per setting, the statement that resets
    /// it (nil should the catalog no longer name its role or database).
    public func replicaRoleSettings() async throws(PostgresError) -> [String?] {
        try await connection.query(
            """
            SELECT CASE WHEN s.setdatabase = 0 THEN 'ALTER ROLE ' || pg_catalog.quote_ident(r.rolname)
                        WHEN s.setrole = 0 THEN 'ALTER DATABASE ' || pg_catalog.quote_ident(d.datname)
                        ELSE 'ALTER ROLE ' || pg_catalog.quote_ident(r.rolname) || ' IN DATABASE ' || pg_catalog.quote_ident(d.datname)
                   END || ' RESET session_replication_role' AS fix
              FROM pg_catalog.pg_db_role_setting s
              LEFT JOIN pg_catalog.pg_roles r ON r.oid = s.setrole
              LEFT JOIN pg_catalog.pg_database d ON d.oid = s.setdatabase
             WHERE (s.setdatabase = 0 OR d.datname = pg_catalog.current_database())
               AND EXISTS (SELECT 1 FROM pg_catalog.unnest(s.setconfig) c WHERE pg_catalog.lower(c) = 'session_replication_role=replica')
            """
        ).map { $0["fix"] }
    }

    /// Whether `schema_changes_pending_idx` exists: without it every claim scans the whole
    /// outbox, processed history included.
    public func hasPendingIndex() async throws(PostgresError) -> Bool {
        try await connection.relationExists("schema_changes_pending_idx", inSchema: schema)
    }
}
