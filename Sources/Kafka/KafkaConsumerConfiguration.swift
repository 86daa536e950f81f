/// How a group consumer reaches Kafka and where it starts. Anything not modelled here goes
/// through ``properties`` unchanged.
public struct KafkaConsumerConfiguration: Sendable {
    /// `host:port` pairs for the first metadata request (librdkafka `bootstrap.servers`).
    public var bootstrapServers: [String]

    /// The consumer group whose committed offsets this consumer resumes from
    /// (librdkafka `group.id`).
    public var groupID: String

    /// librdkafka properties passed through as given; they override the defaults below.
    public var properties: [String: String]

    /// Defaults:
    /// - `enable.auto.commit=false`: offsets are committed only by ``KafkaConsumer/commit(_:)``
    ///   after the application has processed a message, so a crash re-delivers instead of
    ///   skipping (librdkafka's default is `true`).
    /// - `auto.offset.reset=earliest`: a new group starts at the oldest retained record so no
    ///   schema change is missed (librdkafka's default is `latest`).
    public static let defaultProperties: [String: String] = [
        "enable.auto.commit": "false",
        "auto.offset.reset": "earliest",
    ]

    public init(bootstrapServers: [String], groupID: String, properties: [String: String] = [:]) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
        self.properties = properties
    }

    /// - Parameter bootstrapServers: a comma-separated list as librdkafka and kcat take it.
    public init(bootstrapServers: String, groupID: String, properties: [String: String] = [:]) {
        self.init(bootstrapServers: bootstrapServers.splitServerList(), groupID: groupID, properties: properties)
    }

    var librdkafkaProperties: [String: String] {
        Self.defaultProperties
            .merging(["bootstrap.servers": bootstrapServers.joined(separator: ","), "group.id": groupID]) { _, new in new }
            .merging(properties) { _, user in user }
    }
}
