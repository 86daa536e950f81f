/// How to reach Kafka and how to produce. The fields cover what the relay relies on;
/// everything else (SASL, SSL, compression, …) goes through ``properties`` unchanged.
public struct KafkaProducerConfiguration: Sendable {
    /// `host:port` pairs tried in order for the first metadata request
    /// (librdkafka `bootstrap.servers`).
    public var bootstrapServers: [String]

    /// librdkafka properties passed through as given; they override the defaults below.
    /// An unknown name fails client creation with an error that names it.
    public var properties: [String: String]

    /// Defaults the relay depends on:
    /// - `enable.idempotence=true`: retries never duplicate or reorder a tenant's events within
    ///   a producer session.
    /// - `acks=all`: an acknowledgement means every in-sync replica has the record, so marking
    ///   the outbox row processed cannot lose it.
    /// - `partitioner=murmur2_random`: the Java client's partitioner, so a tenant key lands on
    ///   the same partition as from any Java producer (librdkafka's own default is
    ///   `consistent_random`, a CRC32 hash that disagrees with Java).
    /// - `linger.ms=5`: batches records arriving together without adding noticeable latency
    ///   (librdkafka's default is also 5 ms in 2.0; stated here so it is not left to chance).
    public static let defaultProperties: [String: String] = [
        "enable.idempotence": "true",
        "acks": "all",
        "partitioner": "murmur2_random",
        "linger.ms": "5",
    ]

    public init(bootstrapServers: [String], properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.properties = properties
    }

    /// - Parameter bootstrapServers: a comma-separated list as librdkafka and kcat take it.
    public init(bootstrapServers: String, properties: [String: String] = [:]) {
        self.init(bootstrapServers: bootstrapServers.splitServerList(), properties: properties)
    }

    var librdkafkaProperties: [String: String] {
        Self.defaultProperties
            .merging(["bootstrap.servers": bootstrapServers.joined(separator: ",")]) { _, new in new }
            .merging(properties) { _, user in user }
    }
}

extension String {
    func splitServerList() -> [String] {
        split(separator: ",").map { $0.trimmingWhitespace() }.filter { !$0.isEmpty }
    }
}

extension Substring {
    fileprivate func trimmingWhitespace() -> String {
        String(drop { $0.isWhitespace }.reversed().drop { $0.isWhitespace }.reversed())
    }
}
