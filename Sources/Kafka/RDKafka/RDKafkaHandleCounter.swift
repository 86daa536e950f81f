import Synchronization

/// Counts live librdkafka handles (`rd_kafka_t` and mock clusters) so a test can prove each one
/// is destroyed exactly once: a leak leaves the count above its baseline, a double destroy
/// would drive it below.
enum RDKafkaHandleCounter {
    static let live = Atomic<Int>(0)

    static func created() {
        live.add(1, ordering: .relaxed)
    }

    static func destroyed() {
        live.subtract(1, ordering: .relaxed)
    }
}
