import Foundation
import Kafka
import Outbox

extension EventRouter {
    /// The record that carries an event that can never be delivered to `topic`, with the reason
    /// and where it was headed in headers.
    func deadLetterRecord(for deadLetter: Resolution.DeadLetter, topic: String) -> KafkaRecord {
        let event = deadLetter.event
        var record = self.record(for: event)
        record.topic = topic
        record.headers += [
            KafkaHeader(name: "dead_letter_reason", value: deadLetter.reason),
            KafkaHeader(name: "dead_letter_original_topic", value: self.topic(for: event)),
            KafkaHeader(name: "dead_letter_attempts", value: String(event.attempts + 1)),
            KafkaHeader(name: "outbox_id", value: String(event.id)),
        ]
        if deadLetter.error.code == .messageSizeTooLarge {
            // The event is what the broker would not take, so the dead letter carries a summary
            // that always fits; the outbox row keeps the whole event.
            record.value = OversizeSummary(event: event, reason: deadLetter.reason).json
            record.headers.append(KafkaHeader(name: "dead_letter_payload", value: "summary: the event is too large; see the outbox row"))
        }
        return record
    }
}

/// What a dead letter says about an event too large to send: enough to find the event in the
/// outbox and know why it is not in Kafka, a few hundred bytes at most.
struct OversizeSummary: Encodable {
    let outboxID: Int64
    let eventID: String
    let tenant: String?
    let sizeBytes: Int
    let reason: String

    init(event: OutboxEvent, reason: String) {
        outboxID = event.id
        eventID = event.eventID
        tenant = event.tenantKey
        sizeBytes = event.payload.utf8.count
        self.reason = String(reason.prefix(500))
    }

    var json: [UInt8] {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        return (try? Array(encoder.encode(self))) ?? Array("{\"outbox_id\":\(outboxID)}".utf8)
    }
}
