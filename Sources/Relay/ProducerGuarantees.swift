/// The librdkafka producer settings the relay's marking rests on, and the pass-through
/// properties that would quietly undo them.
///
/// A row is marked processed on the strength of one delivery report. That report means what the
/// README promises only while:
/// - `acks` is `all`: the record is on every in-sync replica, so a leader failure cannot take it
///   back after the row was marked;
/// - idempotence is on: librdkafka's retries never duplicate or reorder a tenant's records;
/// - at most 5 requests are in flight per connection: the most for which the broker keeps an
///   idempotent producer's order;
/// - the partitioner is `murmur2_random`: a tenant's key lands on the partition a Java client
///   (and every earlier record of that tenant) uses.
///
/// ``producerProperties(passThrough:)`` sets these, and the relay's timing, on top of the user's
/// pass-through properties only where the user left them unset; a pass-through property that
/// contradicts a guarantee is refused at start unless it is named in an explicit allowance, so a
/// guarantee is never switched off by a copied snippet or a typo.
public enum ProducerGuarantees {
    /// The librdkafka settings the relay's producer runs with unless a pass-through property
    /// says otherwise (the guarded ones only with an allowance):
    /// - `enable.idempotence=true`, `acks=all`, `partitioner=murmur2_random`: the guarantees above
    ///   (`max.in.flight` is librdkafka's default of 5, within the idempotent limit);
    /// - `message.timeout.ms=30000`: a record the broker has not acknowledged in 30 s comes back
    ///   as a failure, so its row gets a retry with backoff (and its tenant waits) instead of
    ///   waiting for librdkafka's default of 5 minutes;
    /// - `linger.ms=0`: the relay hands librdkafka whole batches at once, so waiting for more
    ///   records only adds latency (5 ms would be most of the idle commit-to-ack time); records
    ///   still batch up behind requests in flight.
    public static let relayDefaults: [String: String] = [
        "enable.idempotence": "true",
        "acks": "all",
        "partitioner": "murmur2_random",
        "message.timeout.ms": "30000",
        "linger.ms": "0",
    ]

    /// The properties to build the relay's producer with: ``relayDefaults`` under the user's
    /// pass-through properties.
    public static func producerProperties(passThrough: [String: String]) -> [String: String] {
        relayDefaults.merging(passThrough) { _, user in user }
    }

    /// One pass-through property that breaks a guarantee.
    public struct Violation: Sendable, Hashable, CustomStringConvertible {
        /// The property as the user spelled it (an alias such as `request.required.acks`
        /// included).
        public let property: String
        /// librdkafka's own name for it (`acks` for `request.required.acks`).
        public let canonicalProperty: String
        public let value: String
        /// The guarantee it breaks, as one sentence.
        public let guarantee: String

        public var description: String {
            "\(property)=\(value) breaks a guarantee: \(guarantee)"
        }

        /// Whether an allowance (`--allow-unsafe-kafka-property`) names this property, by the
        /// name given or by its canonical name.
        public func isAllowed(by allowed: Set<String>) -> Bool {
            allowed.contains(property) || allowed.contains(canonicalProperty)
        }
    }

    private struct Rule: Sendable {
        /// The canonical librdkafka name first, then its aliases.
        let names: [String]
        let isSafe: @Sendable (String) -> Bool
        let guarantee: String
    }

    private static let rules = [
        Rule(
            names: ["acks", "request.required.acks"],
            isSafe: { ["all", "-1"].contains($0.lowercased()) },
            guarantee: "rows are marked processed only once every in-sync replica has the record (acks must be all or -1)"),
        Rule(
            names: ["enable.idempotence"],
            isSafe: { $0.lowercased() == "true" },
            guarantee: "retries never duplicate or reorder a tenant's events (enable.idempotence must be true)"),
        Rule(
            names: ["partitioner"],
            isSafe: { $0 == "murmur2_random" },
            guarantee: "a tenant's events go to the partition a Java producer would choose, the same for every event (partitioner must be murmur2_random)"),
        Rule(
            names: ["max.in.flight.requests.per.connection", "max.in.flight"],
            isSafe: { Int($0).map { $0 <= 5 } ?? true },
            guarantee: "a tenant's events keep their order across retries (at most 5 requests in flight per connection)"),
    ]

    /// The properties in `properties` that break a guarantee, sorted by name.
    public static func violations(in properties: [String: String]) -> [Violation] {
        properties.sorted(by: { $0.key < $1.key }).compactMap { name, value in
            guard let rule = rules.first(where: { $0.names.contains(name) }), !rule.isSafe(value) else { return nil }
            return Violation(property: name, canonicalProperty: rule.names[0], value: value, guarantee: rule.guarantee)
        }
    }

    /// Whether `name` is a property this table guards, so an allowance that names anything else
    /// can be reported as a typo.
    public static func isGuarded(_ name: String) -> Bool {
        rules.contains { $0.names.contains(name) }
    }
}
