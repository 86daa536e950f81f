import Testing

/// Every Kafka suite nests in this one so they run one at a time: several measure how quickly
/// librdkafka reacts (round-trip delays, message timeouts), which a busy neighbour would skew.
@Suite(.serialized)
enum KafkaIntegrationTests {}
