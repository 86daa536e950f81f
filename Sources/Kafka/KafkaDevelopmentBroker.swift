public import Logging

/// An in-memory Kafka cluster (librdkafka's mock cluster) listening on loopback, for trying the
/// relay out and for tests. Nothing survives the process; it is not a Kafka to rely on.
///
/// Any Kafka client, not only this module's, can connect through ``bootstrapServers``.
///
/// The fault controls (broker down, round-trip time, request errors) are `package`: tests and the
/// benchmark in this package use them; they are not part of the product's API.
///
/// Topics that a client uses before they are created here are auto-created with the mock's
/// default of 4 partitions (librdkafka 2.0.2) and a replication factor of
/// min(3, broker count); use ``createTopic(_:partitions:replicationFactor:)`` for exact counts.
public final class KafkaDevelopmentBroker: Sendable {
    /// Partitions the mock gives a topic it auto-creates (librdkafka 2.0.2).
    public static let autoCreatedTopicPartitions = 4

    private let cluster: RDKafkaMockCluster

    /// Comma-separated `host:port` list of the brokers, as `bootstrap.servers` takes it.
    public var bootstrapServers: String {
        cluster.bootstrapServers
    }

    /// Broker ids run from 1 to `brokers`.
    public init(brokers: Int = 3, logger: Logger = Logger(label: "outbox-bridge.kafka.dev-broker")) throws(KafkaError) {
        guard brokers >= 1 else {
            throw KafkaError(code: .invalidArgument, message: "a development cluster needs at least 1 broker, not \(brokers)")
        }
        cluster = try RDKafkaMockCluster.make(brokerCount: brokers, logger: logger)
    }

    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        guard partitions >= 1, replicationFactor >= 1 else {
            throw KafkaError(
                code: .invalidArgument,
                message: "topic \(name) needs at least 1 partition and 1 replica, not \(partitions) and \(replicationFactor)"
            )
        }
        try cluster.createTopic(name, partitions: Int32(partitions), replicationFactor: Int32(replicationFactor))
    }

    /// Drops the broker's connections and refuses new ones; its partitions get no new leader,
    /// as when a broker of a single-replica topic is lost.
    package func setBrokerDown(_ brokerID: Int32) throws(KafkaError) {
        try cluster.setBrokerDown(brokerID)
    }

    package func setBrokerUp(_ brokerID: Int32) throws(KafkaError) {
        try cluster.setBrokerUp(brokerID)
    }

    /// Delays every response of the broker, to imitate a slow or distant cluster.
    package func setRoundTripTime(broker brokerID: Int32, milliseconds: Int32) throws(KafkaError) {
        try cluster.setRoundTripTime(brokerID: brokerID, milliseconds: milliseconds)
    }

    /// Answers the next `errors.count` requests of this kind, on any broker, with these errors
    /// in order; later requests are served normally.
    package func pushRequestErrors(apiKey: KafkaAPIKey, errors: [KafkaErrorCode]) {
        cluster.pushRequestErrors(apiKey: apiKey.rawValue, errors: errors)
    }

    /// Serves the next `count` requests of this kind that reach broker `brokerID` as usual (a
    /// produce request's records are stored at once) but answers each only after
    /// `milliseconds`; other requests are answered at once.
    package func delayResponses(broker brokerID: Int32, apiKey: KafkaAPIKey, count: Int, milliseconds: Int32) throws(KafkaError) {
        try cluster.delayResponses(brokerID: brokerID, apiKey: apiKey.rawValue, count: count, milliseconds: milliseconds)
    }

    /// Forgets errors pushed for this kind of request that have not been used yet.
    package func clearRequestErrors(apiKey: KafkaAPIKey) {
        cluster.clearRequestErrors(apiKey: apiKey.rawValue)
    }

    /// Makes metadata requests report this error for the topic until reset with `.noError`.
    package func setTopicError(_ topic: String, error: KafkaErrorCode) {
        cluster.setTopicError(topic, error: error)
    }
}

/// Kafka protocol request kinds, for injecting errors into one kind of request.
package enum KafkaAPIKey: Int16, Sendable {
    case produce = 0
    case fetch = 1
    case listOffsets = 2
    case metadata = 3
    case offsetCommit = 8
    case offsetFetch = 9
    case findCoordinator = 10
    case joinGroup = 11
    case heartbeat = 12
    case leaveGroup = 13
    case syncGroup = 14
    case apiVersions = 18
    case initProducerID = 22
}
