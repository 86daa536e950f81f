internal import CRdKafka

extension KafkaErrorCode {
    init(_ code: rd_kafka_resp_err_t) {
        self.init(rawValue: code.rawValue)
    }

    var rdKafkaCode: rd_kafka_resp_err_t {
        rd_kafka_resp_err_t(rawValue: rawValue)
    }

    /// librdkafka's symbolic name without its prefix, e.g. `MSG_SIZE_TOO_LARGE` or `_TIMED_OUT`.
    public var name: String {
        String(cString: rd_kafka_err2name(rdKafkaCode))
    }

    /// Success; used to clear an error set on the development broker.
    public static let noError = Self(RD_KAFKA_RESP_ERR_NO_ERROR)

    // Local to the client (librdkafka's negative codes).
    /// The client was shut down before the operation finished.
    public static let destroyed = Self(RD_KAFKA_RESP_ERR__DESTROY)
    /// A configuration property or argument was rejected.
    public static let invalidArgument = Self(RD_KAFKA_RESP_ERR__INVALID_ARG)
    /// The operation did not finish within its timeout.
    public static let timedOut = Self(RD_KAFKA_RESP_ERR__TIMED_OUT)
    /// A broker connection failed.
    public static let transport = Self(RD_KAFKA_RESP_ERR__TRANSPORT)
    /// No broker could be reached.
    public static let allBrokersDown = Self(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
    /// The producer's local queue (`queue.buffering.max.messages`) is full.
    public static let queueFull = Self(RD_KAFKA_RESP_ERR__QUEUE_FULL)
    /// A record was not acknowledged within `message.timeout.ms`.
    public static let messageTimedOut = Self(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT)
    /// The record was removed from the producer's queue at shutdown.
    public static let purgedFromQueue = Self(RD_KAFKA_RESP_ERR__PURGE_QUEUE)
    /// The record was in flight when the producer shut down; it may or may not have landed.
    public static let purgedInFlight = Self(RD_KAFKA_RESP_ERR__PURGE_INFLIGHT)
    /// The client hit an unrecoverable error; see `rd_kafka_fatal_error`.
    public static let fatal = Self(RD_KAFKA_RESP_ERR__FATAL)
    /// librdkafka knows the topic but not this partition number (a watermark query past the
    /// last partition).
    public static let unknownPartition = Self(RD_KAFKA_RESP_ERR__UNKNOWN_PARTITION)

    // Kafka protocol errors (positive codes).
    public static let offsetOutOfRange = Self(RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE)
    public static let unknownTopicOrPartition = Self(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
    public static let leaderNotAvailable = Self(RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE)
    public static let notLeaderForPartition = Self(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION)
    public static let requestTimedOut = Self(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT)
    public static let messageSizeTooLarge = Self(RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE)
    public static let notEnoughReplicas = Self(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS)
    public static let notEnoughReplicasAfterAppend = Self(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND)
    public static let topicAuthorizationFailed = Self(RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED)
    /// The broker saw a gap in an idempotent producer's sequence numbers: fatal for the producer.
    public static let outOfOrderSequenceNumber = Self(RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER)

    /// Delivery reports carry a bare code, not an `rd_kafka_error_t` that could answer
    /// `rd_kafka_error_is_retriable`, so retriability is decided here: the Kafka protocol errors
    /// the Java client marks `RetriableException`, plus local conditions that clear by themselves
    /// (a record that timed out may succeed when sent again; the outbox tolerates the duplicate).
    var isRetriableByDefault: Bool {
        Self.retriableCodes.contains(self)
    }

    private static let retriableCodes: Set<KafkaErrorCode> = [
        Self(RD_KAFKA_RESP_ERR__TRANSPORT),
        Self(RD_KAFKA_RESP_ERR__TIMED_OUT),
        Self(RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE),
        Self(RD_KAFKA_RESP_ERR__MSG_TIMED_OUT),
        Self(RD_KAFKA_RESP_ERR__QUEUE_FULL),
        Self(RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN),
        Self(RD_KAFKA_RESP_ERR__PURGE_QUEUE),
        Self(RD_KAFKA_RESP_ERR__PURGE_INFLIGHT),
        Self(RD_KAFKA_RESP_ERR_INVALID_MSG),
        Self(RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART),
        Self(RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE),
        Self(RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION),
        Self(RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT),
        Self(RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION),
        Self(RD_KAFKA_RESP_ERR_COORDINATOR_LOAD_IN_PROGRESS),
        Self(RD_KAFKA_RESP_ERR_COORDINATOR_NOT_AVAILABLE),
        Self(RD_KAFKA_RESP_ERR_NOT_COORDINATOR),
        Self(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS),
        Self(RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS_AFTER_APPEND),
        Self(RD_KAFKA_RESP_ERR_KAFKA_STORAGE_ERROR),
        Self(RD_KAFKA_RESP_ERR_FETCH_SESSION_ID_NOT_FOUND),
        Self(RD_KAFKA_RESP_ERR_INVALID_FETCH_SESSION_EPOCH),
        Self(RD_KAFKA_RESP_ERR_LISTENER_NOT_FOUND),
        Self(RD_KAFKA_RESP_ERR_FENCED_LEADER_EPOCH),
        Self(RD_KAFKA_RESP_ERR_UNKNOWN_LEADER_EPOCH),
        Self(RD_KAFKA_RESP_ERR_OFFSET_NOT_AVAILABLE),
        Self(RD_KAFKA_RESP_ERR_PREFERRED_LEADER_NOT_AVAILABLE),
        Self(RD_KAFKA_RESP_ERR_UNSTABLE_OFFSET_COMMIT),
        Self(RD_KAFKA_RESP_ERR_THROTTLING_QUOTA_EXCEEDED),
    ]
}

extension KafkaError {
    /// Takes ownership of `error` and destroys it.
    init(consuming error: OpaquePointer) {
        self.init(
            code: KafkaErrorCode(rd_kafka_error_code(error)),
            message: String(cString: rd_kafka_error_string(error)),
            isRetriable: rd_kafka_error_is_retriable(error) != 0,
            isFatal: rd_kafka_error_is_fatal(error) != 0
        )
        rd_kafka_error_destroy(error)
    }

    init(_ code: rd_kafka_resp_err_t, context: String) {
        let kafkaCode = KafkaErrorCode(code)
        self.init(
            code: kafkaCode,
            message: "\(context): \(String(cString: rd_kafka_err2str(code)))",
            isFatal: kafkaCode == .fatal
        )
    }
}
