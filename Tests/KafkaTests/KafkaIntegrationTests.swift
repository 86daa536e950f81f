import Testing

/// Every Kafka suite nests in this one so they run one at a time: the handle-count test compares
/// a process-wide counter with its baseline, which a concurrently running test would disturb.
/// (A parameterized test still runs its cases concurrently unless it is marked `.serialized` too.)
@Suite(.serialized, .timeLimit(.minutes(1)))
enum KafkaIntegrationTests {}
