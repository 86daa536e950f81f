internal import CRdKafka

extension RDKafkaClient {
    /// Builds a throwaway client of `kind` from `properties`, without `bootstrap.servers` so it
    /// contacts nobody, and destroys it: a name or value librdkafka rejects, or a combination
    /// it refuses (`acks=1` with idempotence), is found before the real client exists.
    /// Creating and destroying a client starts and joins librdkafka's threads: call it off
    /// Swift's cooperative pool.
    /// - Returns: the property rejected (or `nil` for a refused combination) with librdkafka's
    ///   reason, or `nil` when all is accepted.
    static func rejection(of properties: [String: String], kind: Kind) -> (property: String?, reason: String)? {
        guard let conf = rd_kafka_conf_new() else { return (nil, "rd_kafka_conf_new returned no configuration") }
        // The throwaway client's own warnings (no bootstrap.servers) would go to stderr.
        rd_kafka_conf_set_log_cb(conf) { _, _, _, _ in }
        var reason = [CChar](repeating: 0, count: 512)
        func text() -> String { String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        for (name, value) in properties.sorted(by: { $0.key < $1.key }) where name != "bootstrap.servers"
        && rd_kafka_conf_set(conf, name, value, &reason, reason.count) != RD_KAFKA_CONF_OK {
            rd_kafka_conf_destroy(conf)
            return (name, text())
        }
        guard let handle = rd_kafka_new(kind.rdKafkaType, conf, &reason, reason.count) else {
            rd_kafka_conf_destroy(conf)
            return (nil, text())
        }
        rd_kafka_destroy(handle)
        return nil
    }
}
