/// Consumer-group timing for consumers of librdkafka's mock cluster (2.0.2), which the tests'
/// brokers are.
///
/// The mock coordinator answers a group's first JoinGroup only after 3 s, and holds a
/// rebalance of a group that had members for `session.timeout.ms` minus 1 s before admitting a
/// member that replaces one that left (44 s with librdkafka's default session). A short session
/// keeps those rebalances quick. But once a member's session passes while its join is still
/// held, the coordinator drops the member without ever answering the join, and the consumer
/// waits in `wait-join` for minutes. With a 4 s session, stalling the process that hosts the mock
/// for a little over 1 s during a first join was enough, and a busy parallel test run stalls it
/// for several seconds (reproduced by pausing it: 6 s, three times, wedged the consumer in two
/// runs out of three). 10 s leaves 7 s for stalls during a first join; a replacing rebalance
/// then takes 9 s.
public enum MockConsumerGroup {
    public static let sessionTimeoutMilliseconds = 10_000
    public static let heartbeatIntervalMilliseconds = 500

    /// As librdkafka properties, for a consumer's configuration.
    public static var properties: [String: String] {
        ["session.timeout.ms": String(sessionTimeoutMilliseconds),
         "heartbeat.interval.ms": String(heartbeatIntervalMilliseconds)]
    }

    /// As `--consumer-property` options, for a consumer command's arguments.
    public static var consumerPropertyArguments: [String] {
        properties.sorted { $0.key < $1.key }.flatMap { ["--consumer-property", "\($0.key)=\($0.value)"] }
    }
}
