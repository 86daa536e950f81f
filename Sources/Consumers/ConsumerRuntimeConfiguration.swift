/// How a ``ConsumerRuntime`` joins its group, retries, and where it dead-letters. One struct for
/// every consumer (`sdk-sync`, `warehouse-sync`, …); each command fills in its own group name.
public struct ConsumerRuntimeConfiguration: Sendable {
    /// Kafka bootstrap servers, comma separated (librdkafka `bootstrap.servers`). No default:
    /// a consumer has nothing to join without brokers.
    public var brokers: String
    /// The consumer group (librdkafka `group.id`). Every instance with the same group shares the
    /// topic's partitions, and a new instance resumes from the group's committed offsets.
    /// No default; commands use their own name (`sdk-sync`, `warehouse-sync`).
    public var groupID: String
    /// Topics to consume. Default: `["schema-changes"]`, the relay's default topic.
    public var topics: [String] = ["schema-changes"]
    /// Where records that cannot be applied go, with the reason in headers. Default: `nil`,
    /// meaning ``effectiveDeadLetterTopic`` = `<groupID>.dead-letter`, so each consumer's rejects
    /// are kept apart from the relay's and from other consumers'.
    public var deadLetterTopic: String?
    /// Attempts at one record before a handler's `.retriable` failure is given up and the record
    /// dead-lettered (the first try counts). Default: 5.
    public var maxAttempts: Int = 5
    /// Wait before the second attempt; it doubles with each further attempt. Default: 500 ms.
    public var retryBackoff: Duration = .milliseconds(500)
    /// The longest wait between attempts. Default: 30 s.
    public var maxRetryBackoff: Duration = .seconds(30)
    /// The longest one poll blocks when no record is waiting. A record that arrives wakes the
    /// poll at once, so this only bounds how quickly shutdown and lag refreshes are noticed.
    /// Default: 250 ms.
    public var pollTimeout: Duration = .milliseconds(250)
    /// How long a graceful shutdown may take: finishing the current record, committing it,
    /// leaving the group and flushing dead letters. Waits on Kafka that are still blocked when
    /// shutdown starts are abandoned at once; leaving and flushing get half of this each.
    /// Default: 15 s.
    public var shutdownTimeout: Duration = .seconds(15)
    /// How often the high watermarks behind ``ConsumerRuntime/lag`` are fetched from the broker.
    /// Default: 5 s.
    public var lagRefreshInterval: Duration = .seconds(5)
    /// librdkafka properties for the consumer and the dead-letter producer, passed through
    /// unchanged (SASL, SSL, session timeouts, …). The consumer's own defaults
    /// (`enable.auto.commit=false`, `auto.offset.reset=earliest`, see
    /// `KafkaConsumerConfiguration.defaultProperties`) apply unless overridden here; overriding
    /// `enable.auto.commit` breaks at-least-once and is not supported. Default: none.
    public var kafkaProperties: [String: String] = [:]
    /// librdkafka properties for the consumer only (on top of ``kafkaProperties``), such as
    /// `session.timeout.ms` or `partition.assignment.strategy`, which the producer would only
    /// warn about. Default: none.
    public var consumerProperties: [String: String] = [:]
    /// The source databases (the events' `database`) whose events this consumer applies; the
    /// others are logged, counted and committed past. Default: empty, meaning the first database
    /// the consumer sees after it starts, and only that one.
    public var sourceDatabases: [String] = []
    /// How long an event that follows a missing `tenant_seq` is held back, waiting for the
    /// tenant's recorded sequence to catch up, before it is dead-lettered with the gap as the
    /// reason. The partition waits meanwhile. Default: 60 s.
    public var sequenceGapTimeout: Duration = .seconds(60)
    /// A `schema-state` topic to build the handler's state from when it holds none, before
    /// consuming ``topics`` from where that state ends (`--bootstrap-from`). The handler must be
    /// a ``BootstrappableHandler``. Default: `nil`, start from the group's committed offsets
    /// or the topic's first record.
    public var bootstrapTopic: String?

    public init(brokers: String, groupID: String) {
        self.brokers = brokers
        self.groupID = groupID
    }

    /// ``deadLetterTopic``, or `<groupID>.dead-letter` when it is not set.
    public var effectiveDeadLetterTopic: String {
        deadLetterTopic ?? "\(groupID).dead-letter"
    }

    /// The wait after `failedAttempts` failures: ``retryBackoff`` doubled per further failure,
    /// capped at ``maxRetryBackoff``.
    public func retryDelay(afterFailedAttempts failedAttempts: Int) -> Duration {
        let doublings = min(max(failedAttempts - 1, 0), 20)
        return min(retryBackoff * Double(1 << doublings), maxRetryBackoff)
    }

    /// Problems that make the configuration unusable, one sentence each; empty when valid.
    public var problems: [String] {
        var problems: [String] = []
        if brokers.isEmpty { problems.append("brokers must not be empty") }
        if groupID.isEmpty { problems.append("the consumer group must not be empty") }
        if topics.isEmpty || topics.contains(where: \.isEmpty) { problems.append("topics must be non-empty names") }
        if effectiveDeadLetterTopic.isEmpty || topics.contains(effectiveDeadLetterTopic) {
            problems.append("the dead-letter topic must be a non-empty topic that is not consumed")
        }
        if maxAttempts < 1 { problems.append("maxAttempts must be at least 1") }
        if retryBackoff <= .zero || maxRetryBackoff < retryBackoff {
            problems.append("retry backoff must be positive and not above the maximum backoff")
        }
        if pollTimeout <= .zero { problems.append("the poll timeout must be positive") }
        if lagRefreshInterval <= .zero { problems.append("the lag refresh interval must be positive") }
        if shutdownTimeout <= .zero { problems.append("the shutdown timeout must be positive") }
        if sequenceGapTimeout < .zero { problems.append("the sequence gap timeout must not be negative") }
        if let bootstrapTopic, bootstrapTopic.isEmpty || topics.contains(bootstrapTopic) {
            problems.append("the bootstrap topic must be a non-empty topic that is not consumed")
        }
        if sourceDatabases.contains(where: \.isEmpty) { problems.append("source database names must not be empty") }
        return problems
    }
}
