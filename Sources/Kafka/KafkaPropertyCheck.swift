/// Pass-through librdkafka properties checked as settings, before a client is built.
public enum KafkaPropertyCheck {
    /// The first property librdkafka rejects (an unknown name, a value out of range), as one
    /// sentence naming it; `nil` when librdkafka accepts them all.
    public static func problem(with properties: [String: String]) -> String? {
        RDKafkaClient.firstRejectedProperty(properties).map { "\($0.name) rejected by librdkafka: \($0.reason)" }
    }
}
