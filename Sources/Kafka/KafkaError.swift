/// A failure reported by librdkafka or by this wrapper, always in librdkafka's vocabulary so a
/// log line or an alert can be matched against librdkafka's and Kafka's own documentation.
///
/// The relay decides from ``isRetriable`` whether an outbox row stays pending for another
/// attempt, and from ``isFatal`` whether the producer must be rebuilt.
public struct KafkaError: Error, Sendable, CustomStringConvertible {
    /// The librdkafka error code (`rd_kafka_resp_err_t`); negative values are local to the client,
    /// positive ones come from the Kafka protocol.
    public let code: KafkaErrorCode
    /// librdkafka's explanation, or this wrapper's when it detected the problem itself.
    public let message: String
    /// Whether the same operation may succeed if tried again later.
    public let isRetriable: Bool
    /// Whether the client that raised this can no longer be used (for example a fenced
    /// idempotent producer).
    public let isFatal: Bool

    public init(code: KafkaErrorCode, message: String, isRetriable: Bool? = nil, isFatal: Bool = false) {
        self.code = code
        self.message = message
        self.isRetriable = isRetriable ?? code.isRetriableByDefault
        self.isFatal = isFatal
    }

    public var description: String {
        "\(code): \(message)"
    }
}

/// A librdkafka error code (`rd_kafka_resp_err_t`), open-ended so a code added by a newer
/// librdkafka still round-trips with its raw value.
public struct KafkaErrorCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    public var description: String {
        "\(name) (\(rawValue))"
    }
}
