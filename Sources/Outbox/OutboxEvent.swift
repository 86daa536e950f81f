/// One pending outbox row, with the fields the relay routes and labels it by.
///
/// The JSON document travels as the text PostgreSQL stored, unparsed: the relay never needs
/// more of it than the columns below, which the claim query extracts on the server.
public struct OutboxEvent: Sendable, Hashable {
    /// The outbox row id; ids increase in commit-independent insertion order.
    public var id: Int64
    /// The relay shard the tenant hashes to; see `relay_leases`.
    public var shard: Int
    /// The Kafka key: the tenant id, else the object's schema name; `nil` only for a domain
    /// event emitted without a tenant.
    public var tenantKey: String?
    /// `event_data->>'tenant_id'`, when the event belongs to a tenant.
    public var tenantID: String?
    /// `event_data->>'event_id'`, a UUID that consumers de-duplicate on.
    public var eventID: String
    /// `ddl` for captured schema changes, `domain` for events emitted through `emit()`.
    public var kind: String
    /// The command tag (`ALTER TABLE`) or the domain event's type.
    public var command: String
    /// The schema the object lives in; `nil` for domain events.
    public var schemaName: String?
    /// When the change happened, as an RFC 3339 timestamp.
    public var occurredAt: String
    /// When the row was written, in seconds since 1970 by the database's clock: the start of
    /// the commit-to-ack latency.
    public var createdAt: Double
    /// Delivery attempts that failed so far.
    public var attempts: Int
    /// The event document, as stored.
    public var payload: String

    public init(
        id: Int64, shard: Int, tenantKey: String?, tenantID: String?, eventID: String, kind: String, command: String,
        schemaName: String?, occurredAt: String, createdAt: Double = 0, attempts: Int, payload: String
    ) {
        self.id = id
        self.shard = shard
        self.tenantKey = tenantKey
        self.tenantID = tenantID
        self.eventID = eventID
        self.kind = kind
        self.command = command
        self.schemaName = schemaName
        self.occurredAt = occurredAt
        self.createdAt = createdAt
        self.attempts = attempts
        self.payload = payload
    }
}

/// Where an event landed in Kafka.
public struct OutboxDelivery: Sendable, Hashable {
    public var eventID: Int64
    public var topic: String
    public var partition: Int32
    public var offset: Int64

    public init(eventID: Int64, topic: String, partition: Int32, offset: Int64) {
        self.eventID = eventID
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
}

/// A failed attempt to deliver an event, to be retried no earlier than `retryAfterSeconds`.
public struct OutboxFailure: Sendable, Hashable {
    public var eventID: Int64
    /// The row's `attempts` when it was claimed. The failure is counted only while the row
    /// still shows this number, so writing the same failure twice counts it once.
    public var previousAttempts: Int
    public var error: String
    public var retryAfterSeconds: Double

    public init(eventID: Int64, previousAttempts: Int, error: String, retryAfterSeconds: Double) {
        self.eventID = eventID
        self.previousAttempts = previousAttempts
        self.error = error
        self.retryAfterSeconds = retryAfterSeconds
    }
}

/// An event given up on: its dead letter landed at `deadLetter`, and its row is marked dead.
public struct OutboxDeadLetter: Sendable, Hashable {
    /// The row's `attempts` when it was claimed; the final attempt is counted only while the
    /// row still shows this number.
    public var previousAttempts: Int
    public var reason: String
    public var deadLetter: OutboxDelivery

    public init(previousAttempts: Int, reason: String, deadLetter: OutboxDelivery) {
        self.previousAttempts = previousAttempts
        self.reason = reason
        self.deadLetter = deadLetter
    }
}

/// Everything the relay learnt about a group of rows, written back in one statement.
public struct OutboxOutcomes: Sendable, Hashable {
    public var delivered: [OutboxDelivery]
    public var failures: [OutboxFailure]
    public var deadLetters: [OutboxDeadLetter]

    public init(delivered: [OutboxDelivery] = [], failures: [OutboxFailure] = [], deadLetters: [OutboxDeadLetter] = []) {
        self.delivered = delivered
        self.failures = failures
        self.deadLetters = deadLetters
    }

    public var isEmpty: Bool { delivered.isEmpty && failures.isEmpty && deadLetters.isEmpty }
}
