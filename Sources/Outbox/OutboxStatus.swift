public import Foundation

/// What an operator asks of a running bridge: is it running, how far behind is it, and why is
/// it stuck. One model for `outbox-bridge status --json` and the HTTP `/api/status` (the status
/// page draws it), so a script can read either.
///
/// Every key is always present: a value that does not apply is `null` (``AlwaysEncoded``) or `[]`
/// rather than left out, so a monitoring script can rely on the keys. Keys are the properties'
/// names in snake case (``OperatorJSON``).
public struct OutboxStatus: Sendable, Codable {
    /// Where a tenant's latest delivered event landed.
    public struct TenantPosition: Sendable, Codable, Equatable {
        public var tenant: String
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var deliveredAt: String
    }

    /// One tenant's pending events (`""` for events emitted without a tenant).
    public struct TenantBacklog: Sendable, Codable, Equatable {
        public var tenant: String
        public var pending: Int
        public var oldestAgeSeconds: Double
    }

    /// A pending event that failed at least once and waits for its next attempt.
    public struct RetryingEvent: Sendable, Codable, Equatable {
        public var id: Int64
        @AlwaysEncoded public var tenant: String?
        public var attempts: Int
        @AlwaysEncoded public var lastError: String?
        /// `nil` when it may be tried again now.
        @AlwaysEncoded public var nextAttemptAt: String?
    }

    /// An event the relay gave up on; it waits for a human (`replay`).
    public struct DeadEvent: Sendable, Codable, Equatable {
        public var id: Int64
        @AlwaysEncoded public var tenant: String?
        @AlwaysEncoded public var command: String?
        public var attempts: Int
        @AlwaysEncoded public var reason: String?

    }

    /// One of the newest deliveries, with the position Kafka acknowledged.
    public struct Delivery: Sendable, Codable, Equatable {
        public var id: Int64
        @AlwaysEncoded public var tenant: String?
        @AlwaysEncoded public var command: String?
        public var topic: String
        public var partition: Int32
        public var offset: Int64
        public var deliveredAt: String
    }

    /// Deliveries per second during one interval, `secondsAgo` being the interval's end.
    public struct RateSample: Sendable, Codable, Equatable {
        public var secondsAgo: Int
        public var eventsPerSecond: Double
    }

    /// A relay instance that sent a heartbeat recently enough to be listed, with the shard
    /// leases it holds now.
    public struct RelayInstance: Sendable, Codable, Equatable {
        public var id: String
        @AlwaysEncoded public var host: String?
        public var startedAt: String
        public var heartbeatAgeSeconds: Double
        public var shards: [Int]
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
    @AlwaysEncoded public var oldestPendingAgeSeconds: Double?
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
    @AlwaysEncoded public var readiness: Readiness?
    /// Events the serving relay process has handed to Kafka and not yet marked; `nil` from the
    /// `status` command, which is not the relay.
    @AlwaysEncoded public var inFlight: Int?
    /// The database's clock when this was read (UTC, ISO 8601).
    public var generatedAt: String
}

/// An optional that a JSON document always carries, as `null` when absent, where the synthesized
/// encoding would leave the key out.
@propertyWrapper
public struct AlwaysEncoded<Value: Codable & Sendable & Equatable>: Codable, Sendable, Equatable {
    public var wrappedValue: Value?

    public init(wrappedValue: Value?) {
        self.wrappedValue = wrappedValue
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        wrappedValue = container.decodeNil() ? nil : try container.decode(Value.self)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(wrappedValue)
    }
}

/// The one JSON form of the operators' documents: `/api/status` and `status --json` alike, and
/// `audit --json`. Keys in snake case (`oldest_pending_age_seconds`), indented and sorted, for
/// people and scripts both.
public enum OperatorJSON {
    public static func encode(_ value: some Encodable) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(value)
    }

    /// Reads an ``OutboxStatus`` back.
    public static func decodeStatus(_ data: Data) throws -> OutboxStatus {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return try decoder.decode(OutboxStatus.self, from: data)
    }
}
