/// Pass-through librdkafka properties checked as settings, before the real client is built.
public enum KafkaPropertyCheck {
    public enum Client: Sendable {
        case producer
        case consumer

        var kind: RDKafkaClient.Kind {
            switch self {
            case .producer: .producer
            case .consumer: .consumer
            }
        }
    }

    /// What librdkafka refuses in `properties` for a `client`: an unknown name, a value out of
    /// range, or a combination (`acks=1` with `enable.idempotence=true`), as one sentence
    /// naming the property where there is one; `nil` when librdkafka accepts them. Include the
    /// defaults the real client gets, so combinations with them are checked too.
    public static func problem(with properties: [String: String], for client: Client) async -> String? {
        let rejection = await BlockingCallQueue(label: "outbox-bridge.kafka.property-check").run {
            RDKafkaClient.rejection(of: properties, kind: client.kind)
        }
        guard let rejection else { return nil }
        guard let property = rejection.property else { return "librdkafka refuses these properties together: \(rejection.reason)" }
        return "\(property) rejected by librdkafka: \(rejection.reason)"
    }
}
