internal import CRdKafka

extension RDKafkaClient {
    /// Sets `properties` on a throwaway configuration, so a name or value librdkafka rejects is
    /// found before any client (and any connection) exists.
    /// - Returns: the first property rejected, in name order, with librdkafka's reason.
    static func firstRejectedProperty(_ properties: [String: String]) -> (name: String, reason: String)? {
        guard let conf = rd_kafka_conf_new() else { return nil }
        defer { rd_kafka_conf_destroy(conf) }
        var reason = [CChar](repeating: 0, count: 512)
        for (name, value) in properties.sorted(by: { $0.key < $1.key })
        where rd_kafka_conf_set(conf, name, value, &reason, reason.count) != RD_KAFKA_CONF_OK {
            return (name, String(decoding: reason.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self))
        }
        return nil
    }
}
