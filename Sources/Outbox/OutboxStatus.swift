/// What an operator asks of a running bridge: is it running, how far behind is it, and why is
/// it stuck. One model for `outbox-bridge status --json` and the HTTP `/api/status` (the status
/// page draws it), so a script can read either.
///
/// Every key is always present: a value that does not apply is `null` or `[]` rather than left
/// out, so a monitoring script can rely on the keys (the synthesized encoding omits `nil`s).
public struct OutboxStatus: Sendable, Codable {
    /// Where a tenant's latest delivered event landed.
    public struct TenantPosition: Sendable, Codable, Equatable {
        public var tenant: String
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var deliveredAt: String

        enum CodingKeys: String, CodingKey {
            case tenant, topic, partition, offset
            case deliveredAt = "delivered_at"
        }
    }

    /// One tenant's pending events (`""` for events emitted without a tenant).
    public struct TenantBacklog: Sendable, Codable, Equatable {
        public var tenant: String
        public var pending: Int
        public var oldestAgeSeconds: Double

        enum CodingKeys: String, CodingKey {
            case tenant, pending
            case oldestAgeSeconds = "oldest_age_seconds"
        }
    }

    /// A pending event that failed at least once and waits for its next attempt.
    public struct RetryingEvent: Sendable, Codable, Equatable {
        public var id: Int64
        public var tenant: String?
        public var attempts: Int
        public var lastError: String?
        /// `nil` when it may be tried again now.
        public var nextAttemptAt: String?

        enum CodingKeys: String, CodingKey {
            case id, tenant, attempts
            case lastError = "last_error"
            case nextAttemptAt = "next_attempt_at"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(tenant, forKey: .tenant)
            try container.encode(attempts, forKey: .attempts)
            try container.encode(lastError, forKey: .lastError)
            try container.encode(nextAttemptAt, forKey: .nextAttemptAt)
        }
    }

    /// An event the relay gave up on; it waits for a human (`replay`).
    public struct DeadEvent: Sendable, Codable, Equatable {
        public var id: Int64
        public var tenant: String?
        public var command: String?
        public var attempts: Int
        public var reason: String?

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(tenant, forKey: .tenant)
            try container.encode(command, forKey: .command)
            try container.encode(attempts, forKey: .attempts)
            try container.encode(reason, forKey: .reason)
        }
    }

    /// One of the newest deliveries, with the position Kafka acknowledged.
    public struct Delivery: Sendable, Codable, Equatable {
        public var id: Int64
        public var tenant: String?
        public var command: String?
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var deliveredAt: String

        enum CodingKeys: String, CodingKey {
            case id, tenant, command, topic, partition, offset
            case deliveredAt = "delivered_at"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(tenant, forKey: .tenant)
            try container.encode(command, forKey: .command)
            try container.encode(topic, forKey: .topic)
            try container.encode(partition, forKey: .partition)
            try container.encode(offset, forKey: .offset)
            try container.encode(deliveredAt, forKey: .deliveredAt)
        }
    }

    /// Deliveries per second during one interval, `secondsAgo` being the interval's end.
    public struct RateSample: Sendable, Codable, Equatable {
        public var secondsAgo: Int
        public var eventsPerSecond: Double

        enum CodingKeys: String, CodingKey {
            case secondsAgo = "seconds_ago"
            case eventsPerSecond = "events_per_second"
        }
    }

    /// A relay instance that sent a heartbeat recently enough to be listed, with the shard
    /// leases it holds now.
    public struct RelayInstance: Sendable, Codable, Equatable {
        public var id: String
        public var host: String?
        public var startedAt: String
        public var heartbeatAgeSeconds: Double
        public var shards: [Int]

        enum CodingKeys: String, CodingKey {
            case id, host, shards
            case startedAt = "started_at"
            case heartbeatAgeSeconds = "heartbeat_age_seconds"
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(id, forKey: .id)
            try container.encode(host, forKey: .host)
            try container.encode(startedAt, forKey: .startedAt)
            try container.encode(heartbeatAgeSeconds, forKey: .heartbeatAgeSeconds)
            try container.encode(shards, forKey: .shards)
        }
    }

    /// Whether the serving process is ready, as its `/health/ready` says, and why not.
    public struct Readiness: Sendable, Codable, Equatable {
        public var ready: Bool
        public var problems: [String]

        public init(problems: [String]) {
            self.ready = problems.isEmpty
            self.problems = problems
        }
    }

    public var pending: Int
    /// `nil` when nothing is pending.
    public var oldestPendingAgeSeconds: Double?
    public var dead: Int
    public var processed: Int
    /// The latest delivery of each tenant.
    public var tenants: [TenantPosition]
    /// The tenants with the most pending events (the top N asked for), most first.
    public var backlog: [TenantBacklog]
    /// Oldest first, up to N.
    public var retrying: [RetryingEvent]
    /// Newest first, up to N.
    public var deadLetters: [DeadEvent]
    /// Newest first, up to N.
    public var recentDeliveries: [Delivery]
    /// Oldest interval first; see ``OutboxOperations/deliveryRate``.
    public var deliveryRate: [RateSample]
    public var instances: [RelayInstance]
    /// Shards no live instance holds: their tenants' events wait until one takes them.
    public var unownedShards: [Int]
    /// Set by a running process serving `/api/status`; `nil` from the `status` command, which
    /// is not the relay and cannot know.
    public var readiness: Readiness?
    /// The database's clock when this was read (UTC, ISO 8601).
    public var generatedAt: String

    enum CodingKeys: String, CodingKey {
        case pending, dead, processed, tenants, backlog, retrying, instances, readiness
        case oldestPendingAgeSeconds = "oldest_pending_age_seconds"
        case deadLetters = "dead_letters"
        case recentDeliveries = "recent_deliveries"
        case deliveryRate = "delivery_rate"
        case unownedShards = "unowned_shards"
        case generatedAt = "generated_at"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(pending, forKey: .pending)
        try container.encode(oldestPendingAgeSeconds, forKey: .oldestPendingAgeSeconds)
        try container.encode(dead, forKey: .dead)
        try container.encode(processed, forKey: .processed)
        try container.encode(tenants, forKey: .tenants)
        try container.encode(backlog, forKey: .backlog)
        try container.encode(retrying, forKey: .retrying)
        try container.encode(deadLetters, forKey: .deadLetters)
        try container.encode(recentDeliveries, forKey: .recentDeliveries)
        try container.encode(deliveryRate, forKey: .deliveryRate)
        try container.encode(instances, forKey: .instances)
        try container.encode(unownedShards, forKey: .unownedShards)
        try container.encode(readiness, forKey: .readiness)
        try container.encode(generatedAt, forKey: .generatedAt)
    }
}
