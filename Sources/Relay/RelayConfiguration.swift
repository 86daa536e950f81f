public import Postgres

/// Everything the relay needs to know, one struct tree. Defaults are the values
/// `config/bridge.yaml` documents; the command line, environment and YAML file override them.
public struct RelayConfiguration: Sendable {
    /// The database holding the outbox, as a `postgresql://` URL or `key=value` conninfo; claims
    /// and marks go through it, so it may point at a connection pooler, as long as `listenURL`
    /// or `pollOnly` says so (see `databaseURLIsDirect`). Default: empty, which means libpq's
    /// defaults (`PG*` variables).
    public var databaseURL: String = ""
    /// A direct connection for `LISTEN`, for when `databaseURL` points at a pooler in
    /// transaction mode (which drops notifications). Default: `nil`, use `databaseURL`.
    public var listenURL: String?
    /// Keepalives, server-side timeouts and the client-side deadline of every PostgreSQL
    /// connection the relay opens (claim, mark, leases, LISTEN, gauges, retention). Defaults:
    /// see `PostgresConnection.Options`; keys the URL sets win.
    public var database = PostgresConnection.Options()
    /// Never `LISTEN`; rely on polling alone, for setups with no direct connection at all.
    /// Default: `false`.
    public var pollOnly: Bool = false
    /// Whether `databaseURL` reaches the server directly, as the settings tell: a `listenURL`
    /// of its own or `pollOnly` is how a deployment says it goes through a pooler in
    /// transaction mode. Only then are the claim and the outcome write prepared statements.
    var databaseURLIsDirect: Bool { listenURL == nil && !pollOnly }
    /// The schema the capture SQL was installed into. Default: `platform`.
    public var schema: String = "platform"
    /// The `NOTIFY` channel the capture triggers wake the relay on. Default: `outbox_bridge`.
    public var channel: String = "outbox_bridge"

    /// The topic each event goes to; `{tenant}`, `{schema}` and `{command}` are replaced per
    /// event. Default: `schema-changes`.
    public var topicTemplate: String = "schema-changes"
    /// Where events that can never be delivered go, with the reason in headers. Default:
    /// `schema-changes.dead-letter`.
    public var deadLetterTopic: String = "schema-changes.dead-letter"
    /// The CloudEvents `ce_source` header. Default: `outbox-bridge`.
    public var cloudEventsSource: String = "outbox-bridge"

    /// Rows claimed, published and marked together. Memory use follows this, not the backlog.
    /// Default: 1,000.
    public var batchSize: Int = 1000
    /// Batches that may await acknowledgement at once. With more than one, the relay claims
    /// and publishes the next batch while the broker acknowledges the last, and one tenant's
    /// slow or failing records do not hold up the others' marking. A crash can publish at most
    /// this many batches twice. Default: 4 (in one benchmark run the drain reached 0.58 of the
    /// PostgreSQL-only limit with 1, 0.69 with 2 and 0.85 with 4).
    public var maxInFlightBatches: Int = 4
    /// How often the relay looks for pending rows when no notification woke it; notifications
    /// are lost while disconnected, so this bounds how late such an event can be. Default: 1 s.
    public var pollInterval: Duration = .seconds(1)
    /// The least time between the starts of two claims, and of two outcome writes. While events
    /// keep arriving, what comes in meanwhile waits for the next round trip and goes in it
    /// together, instead of costing a round trip per event; an idle relay's last round trip is
    /// further back than this, so a notification still starts a claim at once. Zero: a round
    /// trip starts as soon as anything is due. Default: 5 ms (at 1,000 events/s it cut the
    /// relay's CPU by about a quarter against 0, for about 1 ms more commit-to-ack on average;
    /// docs/reactor-steps.md, part 6).
    public var turnInterval: Duration = .milliseconds(5)
    /// The least time between the starts of two outcome writes while the relay has room to
    /// claim a whole batch more. Acknowledged events are in Kafka already; writing their
    /// positions back a little later changes nothing for consumers, and one write then carries
    /// the outcomes of many turns instead of costing a round trip (and a wake-up) for each.
    /// When the rows awaiting acks or their write leave less room than a batch, writes are
    /// spaced by `turnInterval` alone, so a drain is never held back. Default: 25 ms (see
    /// docs/reactor-steps.md, part 7).
    public var writeInterval: Duration = .milliseconds(25)
    /// Failed attempts after which an event goes to the dead-letter topic. Default: 10.
    public var maxAttempts: Int = 10
    /// Wait before the first retry of a failed event; it doubles with each attempt. Default: 1 s.
    public var retryBackoff: Duration = .seconds(1)
    /// The longest wait between retries. Default: 60 s.
    public var maxRetryBackoff: Duration = .seconds(60)
    /// How long a relay instance owns its tenant shards without renewing them; another instance
    /// takes over a dead instance's shards after this. Default: 5 s.
    public var leaseDuration: Duration = .seconds(5)
    /// Quiet time after which the `LISTEN` connection is checked with a query. Default: 10 s.
    public var listenHeartbeat: Duration = .seconds(10)
    /// When `/health/ready` fails.
    public var readiness = RelayHealth.Bounds()

    /// Kafka bootstrap servers, comma separated. Default: empty, which starts the in-memory
    /// development broker.
    public var brokers: String = ""
    /// librdkafka properties passed through unchanged (SASL, SSL, compression, linger, …).
    /// Default: none beyond the producer's own defaults.
    public var kafkaProperties: [String: String] = [:]

    public init() {}

    /// The wait before retrying an event that has failed `attempts` times.
    func retryDelay(afterAttempts attempts: Int) -> Duration {
        let doubled = retryBackoff * Double(1 << min(max(attempts - 1, 0), 20))
        return min(doubled, maxRetryBackoff)
    }
}
