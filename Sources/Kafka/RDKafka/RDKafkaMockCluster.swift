internal import CRdKafka
import Logging

/// Owns one `rd_kafka_mock_cluster_t` and the `rd_kafka_t` that hosts it.
///
/// `@unchecked Sendable` because the mock cluster's control functions hand their work to the
/// cluster's own thread and are safe to call from any thread.
final class RDKafkaMockCluster: @unchecked Sendable {
    private let cluster: OpaquePointer
    /// The mock cluster runs on this handle's threads, so it must outlive `cluster`.
    private let host: RDKafkaClient
    /// Serves the host's queue, which carries the mock cluster's log lines.
    private let hostPollThread: PollThread
    let bootstrapServers: String
    private let counterScope: String

    private init(cluster: OpaquePointer, host: RDKafkaClient) {
        self.cluster = cluster
        self.host = host
        hostPollThread = PollThread.start(name: "kafka-mock-poll", polling: host)
        bootstrapServers = String(cString: rd_kafka_mock_cluster_bootstraps(cluster))
        counterScope = RDKafkaHandleCounter.created()
    }

    deinit {
        rd_kafka_mock_cluster_destroy(cluster)
        RDKafkaHandleCounter.destroyed(in: counterScope)
        hostPollThread.requestStop()
    }

    static func make(brokerCount: Int, logger: Logger) throws(KafkaError) -> RDKafkaMockCluster {
        // The host never talks to a broker; it only lends its threads and logging to the mock.
        // Warnings and worse only: at notice level it would report its own missing
        // `bootstrap.servers`, which is expected here.
        let host = try RDKafkaClient.make(.producer, properties: ["log_level": "4"], logger: logger)
        guard let cluster = rd_kafka_mock_cluster_new(host.handle, Int32(brokerCount)) else {
            throw KafkaError(code: .invalidArgument, message: "could not start a mock cluster of \(brokerCount) brokers")
        }
        return RDKafkaMockCluster(cluster: cluster, host: host)
    }

    func createTopic(_ name: String, partitions: Int32, replicationFactor: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_topic_create(cluster, name, partitions, replicationFactor), "create topic \(name)")
    }

    func setBrokerDown(_ brokerID: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_broker_set_down(cluster, brokerID), "take broker \(brokerID) down")
    }

    func setBrokerUp(_ brokerID: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_broker_set_up(cluster, brokerID), "bring broker \(brokerID) up")
    }

    func setRoundTripTime(brokerID: Int32, milliseconds: Int32) throws(KafkaError) {
        try check(rd_kafka_mock_broker_set_rtt(cluster, brokerID, milliseconds), "set round-trip time of broker \(brokerID)")
    }

    func pushRequestErrors(apiKey: Int16, errors: [KafkaErrorCode]) {
        let codes = errors.map(\.rdKafkaCode)
        rd_kafka_mock_push_request_errors_array(cluster, apiKey, codes.count, codes)
    }

    func delayResponses(brokerID: Int32, apiKey: Int16, count: Int, milliseconds: Int32) throws(KafkaError) {
        for _ in 0..<count {
            try check(
                outbox_bridge_mock_broker_push_request_error_rtt(cluster, brokerID, apiKey, RD_KAFKA_RESP_ERR_NO_ERROR, milliseconds),
                "delay responses of broker \(brokerID)")
        }
    }

    func clearRequestErrors(apiKey: Int16) {
        rd_kafka_mock_clear_request_errors(cluster, apiKey)
    }

    func setTopicError(_ topic: String, error: KafkaErrorCode) {
        rd_kafka_mock_topic_set_error(cluster, topic, error.rdKafkaCode)
    }

    private func check(_ result: rd_kafka_resp_err_t, _ action: String) throws(KafkaError) {
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(result, context: "mock cluster: \(action)")
        }
    }
}
